"""The end-to-end scenario, run by any interpreter with Django and this package installed
(tests/e2e/test_django_processes.py runs it under Django 6 on Python 3.12).

Run from this directory with ``PQ_DJANGO_DB`` set: it enqueues tasks through django.tasks
(``enqueue``, ``aenqueue``, priorities, a queue name, ``run_after``), runs a real
``python manage.py pq_worker`` process until it has run them, and prints what ``get_result``
and ``aget_result`` report, as one JSON object.
"""

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproject.settings")

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402
from shop.tasks import add, async_add, fail, send_email  # noqa: E402


def main() -> None:
    low = add.using(priority=-10).enqueue(1, 1)
    high = add.using(priority=50).enqueue(2, 2)
    failed = fail.enqueue("boom")
    email = send_email.enqueue("a@b.c")
    run_after = timezone.now() + timedelta(seconds=1)
    deferred = add.using(run_after=run_after).enqueue(3, 3)
    coroutine = asyncio.run(async_add.aenqueue(4, 4))
    before = deferred.status
    worker = subprocess.run(
        [sys.executable, "manage.py", "pq_worker", "--queues", "default,emails",
         "--max-jobs", "6", "--wait", "0.2"], capture_output=True, text=True, timeout=90)
    results = {name: add.get_backend().get_result(r.id) for name, r in [
        ("low", low), ("high", high), ("failed", failed), ("email", email),
        ("deferred", deferred), ("coroutine", coroutine)]}
    fetched = asyncio.run(add.aget_result(high.id))
    print(json.dumps({
        "django": django.__version__,
        "worker_exit": worker.returncode,
        "worker_output": worker.stdout[-2000:] + worker.stderr[-2000:],
        "before": str(before),
        "status": {name: str(r.status) for name, r in results.items()},
        "values": {name: r.return_value for name, r in results.items()
                   if str(r.status) == "SUCCESSFUL"},
        "error_class": [e.exception_class_path for e in results["failed"].errors],
        "error_text": [e.traceback for e in results["failed"].errors],
        "high_before_low": results["high"].started_at < results["low"].started_at,
        "deferred_on_time": results["deferred"].started_at >= run_after,
        "attempts": results["high"].attempts,
        "aget_result": fetched.return_value,
    }))


if __name__ == "__main__":
    main()
