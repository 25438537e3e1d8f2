# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DB     ?= data/queue.db

.PHONY: help venv init run test test-fast lint typecheck clean bench bench-quick

help:
	@echo "make run        set up and start the whole system under supervisord"
	@echo "make test       set up and run the test suite"
	@echo "make lint       ruff and mypy"
	@echo "make bench      benchmark against raw SQLite and the peers (bench/README.md)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

init: venv
	$(PY) -m persistent_queue --db $(DB) init

run: init
	$(PY) -m persistent_queue --db $(DB) stats

test: venv
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow and not e2e" -x -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy

typecheck: venv
	$(PY) -m mypy

# The benchmark has its own environment: the peers it measures are not project dependencies.
BENCH_VENV  := bench/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -e . -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m bench.profile

bench-quick: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench --quick --out bench/results/quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
