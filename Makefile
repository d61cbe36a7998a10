# The two Quickstart commands: `make run` and `make test`. Both create .venv on first use;
# installing happens again only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config.example.toml

.PHONY: run test lint typecheck unit bench clean

run: $(STAMP)
	$(BIN)/newsmon run --config $(CONFIG)

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check monitor tests $(wildcard benchmarks)

typecheck: $(STAMP)
	$(BIN)/mypy

# Tests run in one worker process per core: most of the suite waits on subprocesses and
# sockets, and every test has its own database (file or PostgreSQL schema) and ports.
unit: $(STAMP)
	$(BIN)/pytest -n auto --dist worksteal

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "newsmon needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache newsmon.db newsmon.db-wal newsmon.db-shm
