"""``python manage.py pq_worker``: run the Django tasks of a persistent_queue task backend.

The worker is persistent_queue's (``pq worker``: leases renewed, timeouts, cancellation, warm
stop on the first SIGTERM/SIGINT, cold on the second) with the Django task registry. It reads
the backend's database, queues and durability from ``TASKS``. Exit codes as ``pq worker``'s:
0 stopped cleanly, 1 the database failed, 2 bad configuration, 3 cold stop.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from persistent_queue.contrib.django.worker import APP, HANDLER, worker_setup
from persistent_queue.errors import InvalidArgument, QueueError
from persistent_queue.logs import setup_logging
from persistent_queue.queue import Queue
from persistent_queue.storage.postgres.url import mask_url
from persistent_queue.worker import EXIT_ERROR, EXIT_USAGE, Worker, WorkerConfig


class Command(BaseCommand):  # type: ignore[misc]
    """The ``pq_worker`` command."""

    help = "Run the tasks of a persistent_queue task backend until SIGTERM/SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default="default",
                            help="Alias of the task backend in TASKS (default: default).")
        parser.add_argument("--queues", default=None,
                            help="Comma-separated queues in priority order (default: the "
                                 "backend's QUEUES, sorted).")
        parser.add_argument("--db", default=None,
                            help="Database file or postgresql:// URL (default: the backend's).")
        parser.add_argument("--concurrency", type=int, default=1, help="Tasks run at once.")
        parser.add_argument("--executor", choices=["thread", "process"], default="thread",
                            help="Where tasks run: threads, or child processes.")
        parser.add_argument("--wait", type=float, default=1.0,
                            help="Long-poll length of one claim, in seconds.")
        parser.add_argument("--visibility-timeout", type=float, default=None,
                            help="Lease length in seconds (default: the queue's).")
        parser.add_argument("--max-jobs", type=int, default=None,
                            help="Exit after this many tasks.")
        parser.add_argument("--log-dir", default=None,
                            help="Where processed_log.csv and error_log.txt go (default: "
                                 "none).")
        parser.add_argument("--log-level", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        setup_logging(options["log_level"], json_lines=False)
        try:
            found = worker_setup(options["backend"])
            queues = (tuple(name.strip() for name in options["queues"].split(","))
                      if options["queues"] else found.queues)
            if not queues:
                raise InvalidArgument(f"task backend {options['backend']!r} lists no QUEUES "
                                      "(any queue name): give --queues")
            settings = WorkerConfig(queues=queues, handler=HANDLER, app=APP,
                                    concurrency=options["concurrency"],
                                    executor=options["executor"], wait=options["wait"],
                                    visibility_timeout=options["visibility_timeout"],
                                    max_jobs=options["max_jobs"], log_dir=options["log_dir"])
        except QueueError as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(EXIT_USAGE)
        db = options["db"] or found.db
        try:
            q = Queue(db, durability="normal" if found.durability == "normal" else "full")
        except QueueError as exc:
            self.stderr.write(f"error: cannot open {mask_url(db)}: {exc}")
            sys.exit(EXIT_ERROR)
        with q:
            try:
                code = Worker(q, settings).run_with_signals()
            except InvalidArgument as exc:
                self.stderr.write(f"error: {exc}")
                code = EXIT_USAGE
            except QueueError as exc:
                self.stderr.write(f"error: {exc}")
                code = EXIT_ERROR
        sys.exit(code)
