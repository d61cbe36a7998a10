"""`python -m monitor` is the same as the `newsmon` command."""

from monitor.cli import main

if __name__ == "__main__":  # worker processes import this module under another name
    raise SystemExit(main())
