"""``pq worker`` (also ``consumer.py``): claim jobs from queues and run each with its task
(``--app``) or the handler (``--handler``).

Every flag can also come from a ``PQ_*`` environment variable (shown in ``--help``); a flag
wins over the environment. Exit codes: 0 stopped cleanly (warm stop), 1 the database failed,
2 bad configuration, 3 cold stop (jobs in hand were given back).
"""

from __future__ import annotations

import sys

import click
from click.core import ParameterSource

from ..config import DEFAULT_DB_PATH
from ..errors import InvalidArgument, MissingDependency, QueueError
from ..logs import setup_logging
from ..queue import Queue
from ..storage.postgres.url import mask_url
from ..worker import EXIT_ERROR, EXIT_USAGE, Worker, WorkerConfig, load_app, load_handler
from .process_options import HELP, import_from_cwd, inherited


@click.command(context_settings=HELP)
@click.option("--db", envvar="PQ_DB", default=DEFAULT_DB_PATH,
              show_default=mask_url(DEFAULT_DB_PATH), show_envvar=True,
              help="Database file or postgresql:// URL.")
@click.option("--queue", "queue_name", envvar="PQ_QUEUE", default=None, show_envvar=True,
              help="Queue to consume (or --queues).")
@click.option("--queues", "queue_list", envvar="PQ_QUEUES", default=None, show_envvar=True,
              help="Comma-separated queues to consume, in priority order: a claim takes from "
                   "the first listed queue that has work.")
@click.option("--app", envvar="PQ_APP", default=None, show_envvar=True,
              help="module:attr naming a Queue whose @q.task functions this worker runs "
                   "(jobs naming a task); other jobs go to --handler.")
@click.option("--django", "django_settings", envvar="PQ_DJANGO", default=None,
              show_envvar=True,
              help="A Django project's settings module: run its django.tasks tasks (its "
                   "persistent_queue task backend 'default' gives --db and --queues when "
                   "they are not given).")
@click.option("--handler", envvar="PQ_HANDLER", default="persistent_queue.handlers:echo",
              show_default=True, show_envvar=True,
              help="module:callable taking a Job (the current directory is importable).")
@click.option("--concurrency", envvar="PQ_CONCURRENCY", type=int, default=1,
              show_default=True, show_envvar=True,
              help="Jobs run at once (threads, or child processes with --executor process).")
@click.option("--executor", envvar="PQ_EXECUTOR", type=click.Choice(["thread", "process"]),
              default="thread", show_default=True, show_envvar=True,
              help="Where handlers run: threads of this process, or child processes that can "
                   "be killed at a job's timeout or on its cancellation.")
@click.option("--max-tasks-per-child", envvar="PQ_MAX_TASKS_PER_CHILD", type=int,
              default=None, show_envvar=True,
              help="--executor process: replace a child process after this many jobs.")
@click.option("--cancel-grace", envvar="PQ_CANCEL_GRACE", type=float, default=5.0,
              show_default=True, show_envvar=True,
              help="Seconds a cancelled handler has to stop by itself before it is killed "
                   "(process) or left behind (thread).")
@click.option("--visibility-timeout", envvar="PQ_VISIBILITY_TIMEOUT", type=float,
              default=None, show_envvar=True,
              help="Lease length in seconds [default: the queue's setting].")
@click.option("--wait", envvar="PQ_WAIT", type=float, default=1.0, show_default=True,
              show_envvar=True, help="Long-poll length of one claim, in seconds.")
@click.option("--log-dir", envvar="PQ_LOG_DIR", default="logs", show_default=True,
              show_envvar=True, help="Where processed_log.csv and error_log.txt go.")
@click.option("--max-jobs", envvar="PQ_MAX_JOBS", type=int, default=None, show_envvar=True,
              help="Exit after this many jobs.")
@click.option("--durability", envvar="PQ_DURABILITY", type=click.Choice(["full", "normal"]),
              default="full", show_default=True, show_envvar=True, help="fsync policy.")
@click.option("--log-format", envvar="PQ_LOG_FORMAT", type=click.Choice(["json", "text"]),
              default="json", show_default=True, show_envvar=True, help="stdout log format.")
@click.option("--log-level", envvar="PQ_LOG_LEVEL", default="INFO", show_default=True,
              show_envvar=True)
@click.pass_context
def worker(ctx: click.Context, db: str, queue_name: str | None, queue_list: str | None,
           app: str | None, django_settings: str | None, handler: str, concurrency: int,
           executor: str,
           max_tasks_per_child: int | None, cancel_grace: float,
           visibility_timeout: float | None,
           wait: float, log_dir: str, max_jobs: int | None, durability: str, log_format: str,
           log_level: str) -> None:
    """Claim jobs from QUEUE (or QUEUES, in order) and run each until SIGTERM/SIGINT.

    A job naming a task (stored by some_task.delay()) runs that task of the --app
    Queue; any other job runs HANDLER.
    """
    db = inherited(ctx, "db", db)
    durability = inherited(ctx, "durability", durability)
    setup_logging(log_level, json_lines=log_format == "json")
    import_from_cwd()
    try:
        if django_settings:
            db, app, handler, queue_list = _django(django_settings, db, app, handler,
                                                   queue_name, queue_list)
        queue_name, queues = _chosen_queues(ctx, queue_name, queue_list)
        settings = WorkerConfig(queue=queue_name, queues=queues, handler=handler,
                                concurrency=concurrency, app=app or None,
                                executor=executor,  # type: ignore[arg-type]
                                max_tasks_per_child=max_tasks_per_child,
                                cancel_grace=cancel_grace,
                                visibility_timeout=visibility_timeout, wait=wait,
                                log_dir=log_dir or None, max_jobs=max_jobs)
        function = load_handler(handler)
        tasks = load_app(app) if app else None
    except (QueueError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        q = Queue(db, durability="normal" if durability == "normal" else "full")
    except QueueError as exc:
        click.echo(f"error: cannot open {mask_url(db)}: {exc}", err=True)
        sys.exit(EXIT_USAGE if isinstance(exc, MissingDependency) else EXIT_ERROR)
    with q:
        try:
            code = Worker(q, settings, function, tasks).run_with_signals()
        except InvalidArgument as exc:  # e.g. the handler does not import in a child process
            click.echo(f"error: {exc}", err=True)
            code = EXIT_USAGE
        except QueueError as exc:
            click.echo(f"error: {exc}", err=True)
            code = EXIT_ERROR
    sys.exit(code)


def _django(settings_module: str, db: str, app: str | None, handler: str,
            queue_name: str | None, queue_list: str | None
            ) -> tuple[str, str, str, str | None]:
    """``--django``: the Django task registry as the app; the backend's db and queues."""
    from ..contrib.django.worker import APP, HANDLER, worker_setup

    if app:
        raise InvalidArgument("give --app or --django, not both")
    found = worker_setup(settings_module=settings_module)
    if queue_name is None and not queue_list:
        queue_list = ",".join(found.queues)
    return (found.db if db == DEFAULT_DB_PATH else db, APP,
            HANDLER if handler == "persistent_queue.handlers:echo" else handler, queue_list)


def _chosen_queues(ctx: click.Context, queue_name: str | None,
                   queue_list: str | None) -> tuple[str | None, tuple[str, ...]]:
    """``--queue`` or ``--queues``; a flag typed on the command line beats the environment."""
    queues = tuple(name.strip() for name in queue_list.split(",")) if queue_list else ()
    if queue_name is not None and queues:
        typed = {name for name in ("queue_name", "queue_list")
                 if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
        if typed == {"queue_list"}:
            queue_name = None
        elif typed == {"queue_name"}:
            queues = ()
        else:
            raise InvalidArgument("give --queue or --queues, not both")
    if queue_name is None and not queues:
        raise InvalidArgument("a queue to consume is required: --queue NAME or --queues A,B "
                              "(or PQ_QUEUE / PQ_QUEUES)")
    return queue_name, queues


COMMANDS = [worker]
