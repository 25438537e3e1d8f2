# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DB     ?= data/queue.db

.PHONY: help venv init run test test-fast lint typecheck clean

help:
	@echo "make run        set up and start the whole system under supervisord"
	@echo "make test       set up and run the test suite"
	@echo "make lint       ruff and mypy"

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: ops-console admin-console
ops-console: init
	PQ_DB=$(DB) $(VENV)/bin/streamlit run ops_console.py --server.port 8501

admin-console: init
	PQ_DB=$(DB) $(VENV)/bin/streamlit run admin_console.py --server.port 8502
