"""``pq enqueue | dequeue | ack | nack | result | jobs list | show | history | cancel | delete
| retry``."""

from __future__ import annotations

import click

from ..errors import ResultTimeout
from ..models import JobState
from ..tasks import task_name
from .common import (
    EXIT_EMPTY,
    EXIT_USAGE,
    fail,
    json_option,
    open_queue,
    parse_headers,
    parse_json_arg,
    parse_time,
    print_json,
    table,
    when,
)


@click.command()
@click.argument("queue")
@click.argument("payload")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--delay", type=float, default=0, show_default=True, help="Seconds before it runs.")
@click.option("--run-at", default=None, metavar="TIME",
              help="Not before this time (epoch seconds or ISO 8601, UTC by default).")
@click.option("--max-attempts", type=int, default=None, help="Overrides the queue's setting.")
@click.option("--header", "header_pairs", multiple=True, metavar="KEY=VALUE",
              help="A header (repeatable).")
@click.option("--depends-on", "depends_on", type=int, multiple=True, metavar="JOB_ID",
              help="Wait until this job is acked (repeatable).")
@click.option("--dedup-key", default=None,
              help="Return the unfinished job with this key instead of a new one.")
@click.option("--dedup-window", type=float, default=None,
              help="Also while that job finished less than this many seconds ago.")
@click.option("--timeout", type=float, default=None,
              help="Seconds an attempt may run before its worker stops it "
                   "[default: the queue's].")
@click.option("--group-key", default=None,
              help="The job's group: on a queue with group limits, a group's jobs start in "
                   "enqueue order.")
@click.pass_context
def enqueue(ctx: click.Context, queue: str, payload: str, priority: int, delay: float,
            run_at: str | None, max_attempts: int | None, header_pairs: tuple[str, ...],
            depends_on: tuple[int, ...], dedup_key: str | None,
            dedup_window: float | None, timeout: float | None,
            group_key: str | None) -> None:
    """Enqueue PAYLOAD (JSON, or plain text taken as a string) on QUEUE.

    Prints the job as JSON; ``"deduplicated": true`` means an existing job was returned.
    """
    if dedup_window is not None and dedup_key is None:
        fail("--dedup-window needs --dedup-key", EXIT_USAGE)
    headers = parse_headers(header_pairs)
    at = None if run_at is None else parse_time(run_at, name="--run-at")
    with open_queue(ctx, create=True) as q:
        job = q.enqueue(queue, parse_json_arg(payload), priority=priority, delay=delay,
                        run_at=at, max_attempts=max_attempts, headers=headers or None,
                        depends_on=depends_on or None, dedup_key=dedup_key,
                        dedup_window=dedup_window, timeout=timeout, group_key=group_key)
    print_json(job.to_dict())
    if job.deduplicated:
        click.echo(f"deduplicated: existing job {job.id}", err=True)


@click.command()
@click.argument("queue")
@click.option("--visibility-timeout", type=float, default=None,
              help="Lease length in seconds [default: the queue's].")
@click.option("--wait", type=float, default=0, show_default=True,
              help="Seconds to wait for a job.")
@click.option("--short", is_flag=True, help="Print only '<id> <lease token>'.")
@click.pass_context
def dequeue(ctx: click.Context, queue: str, visibility_timeout: float | None,
            wait: float, short: bool) -> None:
    """Claim the next job of QUEUE and print it with its lease token (exit 3 if none)."""
    with open_queue(ctx) as q:
        job = q.dequeue(queue, visibility_timeout=visibility_timeout, wait=wait)
    if job is None:
        click.echo(f"no job ready in {queue!r}", err=True)
        ctx.exit(EXIT_EMPTY)
    if short:
        click.echo(f"{job.id} {job.lease_token}")
        return
    print_json(job.to_dict())


@click.command()
@click.argument("job_id", type=int)
@click.option("--token", required=True, help="The lease token printed by dequeue.")
@click.pass_context
def ack(ctx: click.Context, job_id: int, token: str) -> None:
    """Mark claimed job JOB_ID done (exit 1 if the lease is no longer yours)."""
    with open_queue(ctx) as q:
        q.ack(job_id, token)
    click.echo(f"job {job_id} acked")


@click.command()
@click.argument("job_id", type=int)
@click.option("--token", required=True, help="The lease token printed by dequeue.")
@click.option("--error", default=None, help="Why it failed (kept in the job's history).")
@click.option("--delay", type=float, default=None, help="Retry after this many seconds.")
@click.pass_context
def nack(ctx: click.Context, job_id: int, token: str, error: str | None,
         delay: float | None) -> None:
    """Record a failed attempt of claimed job JOB_ID (retried or dead-lettered)."""
    with open_queue(ctx) as q:
        outcome = q.nack(job_id, error, delay=delay, lease_token=token)
    print_json(outcome.to_dict())


@click.group()
def jobs() -> None:
    """List and inspect jobs; cancel, delete or retry one."""


@jobs.command("list")
@click.option("--queue", default=None)
@click.option("--state", type=click.Choice([s.value for s in JobState]), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
@click.pass_context
def list_jobs(ctx: click.Context, queue: str | None, state: str | None, limit: int,
              offset: int, as_json: bool) -> None:
    """Jobs, newest first."""
    with open_queue(ctx) as q:
        found = q.list_jobs(queue, state=state, limit=limit, offset=offset)
    if as_json:
        print_json([job.to_dict() for job in found])
        return
    rows = [{"id": j.id, "queue": j.queue, "state": j.state.value, "priority": j.priority,
             "attempts": f"{j.attempts}/{j.max_attempts}", "created": when(j.created_at),
             "payload": str(j.payload)[:40]} for j in found]
    table(rows, ["id", "queue", "state", "priority", "attempts", "created", "payload"])


@jobs.command("show")
@click.argument("job_id", type=int)
@click.pass_context
def show(ctx: click.Context, job_id: int) -> None:
    """One job (live or dead-lettered) with its history, as JSON.

    ``task`` is the name of the task it runs (null for a job that is no task job) and
    ``result`` what the task returned, once done. ``progress``, ``claimed_by`` (the worker),
    ``started_at``, ``run_time`` and ``timeout`` say how its attempt runs or ran; ``history``
    is its timeline (``pq jobs history`` prints it as a table).
    """
    with open_queue(ctx) as q:
        job = q.get_job(job_id)
        history = q.history(job_id)
    print_json({**job.to_dict(), "task": task_name(job),
                "history": [event.to_dict() for event in history]})


@jobs.command("history")
@click.argument("job_id", type=int)
@json_option
@click.pass_context
def history(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Job JOB_ID's timeline, oldest first: enqueued, claimed (by which worker, which
    attempt), failed / acked / cancelled (with the attempt's run time), dead-lettered..."""
    with open_queue(ctx) as q:
        q.get_job(job_id)
        events = q.history(job_id)
    if as_json:
        print_json([event.to_dict() for event in events])
        return
    rows = [{"at": when(e.at), "event": e.event, "attempt": e.attempt, "worker": e.worker,
             "run_time": None if e.run_time is None else f"{e.run_time:.3f}s",
             "detail": (e.detail or "").splitlines()[0][:60] if e.detail else None}
            for e in events]
    table(rows, ["at", "event", "attempt", "worker", "run_time", "detail"])


@jobs.command("cancel")
@click.argument("job_id", type=int)
@click.option("--reason", default=None, help="Why (kept as the job's cancel_reason).")
@click.pass_context
def cancel(ctx: click.Context, job_id: int, reason: str | None) -> None:
    """Cancel job JOB_ID: a queued job at once; a running one is stopped by its worker.

    Exit 1 if the job is done, cancelled or dead-lettered, or no job has that id.
    """
    with open_queue(ctx) as q:
        job = q.cancel(job_id, reason=reason)
    if job.state is JobState.CANCELLED:
        click.echo(f"job {job_id} cancelled")
    else:
        worker = f" ({job.claimed_by})" if job.claimed_by else ""
        click.echo(f"job {job_id} is running: cancellation requested; its worker{worker} "
                   "stops it and it ends cancelled")


@jobs.command("delete")
@click.argument("job_id", type=int)
@click.pass_context
def delete(ctx: click.Context, job_id: int) -> None:
    """Delete job JOB_ID (waiting, ready, done or cancelled) with its history.

    Exit 1 for a leased job (cancel it first), a dead letter (``pq dlq purge``) or an
    unknown id.
    """
    with open_queue(ctx) as q:
        q.delete_job(job_id)
    click.echo(f"job {job_id} deleted")


@jobs.command("retry")
@click.argument("job_id", type=int)
@click.pass_context
def retry(ctx: click.Context, job_id: int) -> None:
    """Make delayed or backing-off job JOB_ID claimable now.

    Exit 1 if it is already claimable or not ready (leased, done, ...), or no job has that
    id.
    """
    with open_queue(ctx) as q:
        q.retry_now(job_id)
    click.echo(f"job {job_id} is ready to run now")


@click.command()
@click.argument("job_id", type=int)
@click.option("--wait", type=float, default=0, show_default=True,
              help="Seconds to wait for the job to finish.")
@click.pass_context
def result(ctx: click.Context, job_id: int, wait: float) -> None:
    """Print job JOB_ID's result as JSON, waiting up to --wait seconds for it.

    Exit 0 with the result, 1 if the job was dead-lettered (its error on stderr) or no job
    has that id, 3 if it is not finished in time.
    """
    with open_queue(ctx) as q:
        try:
            value = q.result(job_id, timeout=wait)
        except ResultTimeout as exc:
            click.echo(str(exc), err=True)
            ctx.exit(EXIT_EMPTY)
    print_json(value)


COMMANDS = [enqueue, dequeue, ack, nack, result, jobs]
