"""The task apps of ``bench/endtoend.py``: one small module per system, each run as its users
run it (its own worker command, its own producer call).

Every module has a no-op task that calls :func:`record` with the job's phase, sequence number
and enqueue timestamp, and a ``producer()`` returning ``(send, close)``: ``send(phase, seq,
t_enq_ns)`` stores one job the way that system's users do. Settings come from the
environment, set by the harness: ``BENCH_E2E_OUT`` (the records file), ``BENCH_E2E_DB`` (a
SQLite path or PostgreSQL URL), ``BENCH_E2E_REDIS`` (a Redis URL), ``BENCH_E2E_DURABILITY``
and ``BENCH_E2E_IDENT`` (``ppid``: a worker that forks a child per job is known by its parent).
"""
