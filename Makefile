# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DB     ?= $(or $(PQ_DB),data/queue.db)

.PHONY: help venv setup init run stop status api test test-fast soak lint typecheck clean bench bench-quick bench-endtoend bench-http docs docs-test

help:
	@echo "make setup      create .venv and the database (then: source .venv/bin/activate)"
	@echo "make run        set up and start the whole system under supervisord"
	@echo "                (ports: make run PQ_API_PORT=8000 PQ_OPS_PORT=8501 PQ_ADMIN_PORT=8502)"
	@echo "make status     the processes' states (while supervisord runs)"
	@echo "make stop       stop supervisord and every process; returns once all have ended"
	@echo "make api        serve the HTTP API alone on 127.0.0.1:8000 (pq api; PQ_API_PORT)"
	@echo "make ops-console / admin-console   one console on 127.0.0.1:8501 / 8502 (PQ_OPS_PORT / PQ_ADMIN_PORT)"
	@echo "make test       set up and run the test suite"
	@echo "make docs       build the documentation site into site/ (mkdocs build --strict)"
	@echo "make docs-test  run every command of README.md and docs/ (tests/e2e/test_docs.py)"
	@echo "make soak       the reliability suite in its long mode (docs/RELIABILITY.md)"
	@echo "make lint       ruff and mypy"
	@echo "make bench      benchmark against raw SQLite and the peers (bench/README.md)"
	@echo "make bench-endtoend  whole systems end to end: pq worker vs Celery, RQ, dramatiq, huey, procrastinate"
	@echo "make bench-http      pq api under wrk: enqueue and batch enqueue over HTTP against the library"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all,test,docs]'
	touch $(STAMP)

venv: $(STAMP)

init: venv
	$(PY) -m persistent_queue --db '$(DB)' init

SUPERVISOR := $(VENV)/bin/supervisorctl -c supervisor/supervisord.conf

# The virtualenv and the database with the demo queues and data/input.txt. After it (and
# `source .venv/bin/activate`) `supervisord -c supervisor/supervisord.conf` works as written.
setup: venv
	$(PY) scripts/setup_db.py --db '$(DB)' --demo

# The ports of the API and the consoles (`make run PQ_API_PORT=8010`, or from the environment).
PQ_API_PORT   ?= 8000
PQ_OPS_PORT   ?= 8501
PQ_ADMIN_PORT ?= 8502
PORTS := PQ_API_PORT=$(PQ_API_PORT) PQ_OPS_PORT=$(PQ_OPS_PORT) PQ_ADMIN_PORT=$(PQ_ADMIN_PORT)

# Foreground: Ctrl-C stops every process cleanly (consumers finish their jobs first). Says
# which port is busy (and how to pick another) rather than starting a program that fails.
run: setup
	@$(PORTS) $(PY) scripts/check_ports.py
	PQ_DB='$(DB)' $(PORTS) $(VENV)/bin/supervisord -n -c supervisor/supervisord.conf

status:
	$(SUPERVISOR) status

# Waits until supervisord (foreground or background) has exited, so `make stop && make run`
# works; says so and succeeds when nothing runs.
stop:
	@if [ -x $(PY) ]; then $(PY) scripts/stop_supervisord.py -c supervisor/supervisord.conf; \
	else echo "supervisord is not running: nothing to stop (no $(VENV) yet)"; fi

api: init
	$(VENV)/bin/pq --db '$(DB)' api --port $(PQ_API_PORT)

# The whole suite, which includes tests/e2e/test_docs.py: the site builds with --strict and
# every shell and Python block of README.md and docs/ runs as written.
test: venv
	$(PY) -m pytest

docs: venv
	$(PY) -m mkdocs build --strict

docs-test: venv
	$(PY) -m pytest tests/e2e/test_docs.py

# The reliability suite with the long figures of docs/RELIABILITY.md (hours, not minutes).
soak: venv
	PQ_SOAK=1 $(PY) -m pytest tests/reliability -s -p no:cacheprovider -o timeout=7200

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
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[api]' -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m bench.profile
	$(BENCH_VENV)/bin/python -m bench.pg_profile
	$(BENCH_VENV)/bin/python -m bench.wakeups
	$(BENCH_VENV)/bin/python -m bench.worker_overhead
	$(MAKE) --no-print-directory bench-http
	$(MAKE) --no-print-directory bench-endtoend

# pq api under wrk (32 keep-alive connections): single and batch enqueue against the library.
bench-http: $(BENCH_STAMP)
	@if command -v wrk >/dev/null; then $(BENCH_VENV)/bin/python -m bench.http $(HTTP_ARGS); \
	else echo "wrk not found: the HTTP benchmark is skipped. Install it: apt-get install -y wrk \
	(Debian/Ubuntu, as root)"; fi

# Whole systems (bench/endtoend.py): this project's workers beside huey, dramatiq, Celery, RQ
# and procrastinate, with the Redis server and PostgreSQL cluster the bench starts itself.
# Without redis-server the Redis rows are skipped (each named, with why).
bench-endtoend: $(BENCH_STAMP)
	@command -v redis-server >/dev/null || echo "redis-server not found: the dramatiq, Celery \
	and RQ rows are skipped. Install it: apt-get install -y redis-server (Debian/Ubuntu, as root)"
	$(BENCH_VENV)/bin/python -m bench.endtoend $(ENDTOEND_ARGS)

bench-quick: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench --quick --out bench/results/quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site

.PHONY: ops-console admin-console
ops-console: init
	$(VENV)/bin/pq --db '$(DB)' console ops --port $(PQ_OPS_PORT)

admin-console: init
	$(VENV)/bin/pq --db '$(DB)' console admin --port $(PQ_ADMIN_PORT)
