"""Run commands and report each one's own rusage (stdlib only: keep this process small).

Linux carries a process's peak RSS across ``exec``: a tool started straight from
the benchmark (which holds 1,000 generated feeds) would report the benchmark's
size as its own. The benchmark therefore starts this launcher first, while it is
still small, and asks it to run each pass: one JSON request a line on stdin
(``{"argv": [...], "log": PATH}``), one JSON answer a line on stdout
(``{"wall": s, "cpu": s, "peak_rss_kb": n, "exit": code}``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        with open(request["log"], "ab") as out:
            started = time.perf_counter()
            process = subprocess.Popen(request["argv"], stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
        answer = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_rss_kb": usage.ru_maxrss, "exit": os.waitstatus_to_exitcode(status)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
