"""Pure helpers for the consoles: parsing form input, formatting, and pandas DataFrames.

Nothing here imports Streamlit, so it is tested like any other library code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ..errors import InvalidInput
from ..models import (
    Alert,
    DeadLetter,
    Job,
    JobEvent,
    JobState,
    QueueInfo,
    QueueStats,
    ThroughputPoint,
    WorkerInfo,
)


def parse_json(text: str, *, what: str = "payload") -> Any:
    """Decode JSON typed in a form; ``InvalidInput`` with the line and column if malformed."""
    if not text.strip():
        raise InvalidInput(f"the {what} is empty: enter JSON such as {{}} or \"text\"")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the {what} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno}") from None


def parse_headers(text: str) -> dict[str, Any]:
    """Headers typed as a JSON object or as ``key=value`` lines (values stay strings)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        value = parse_json(text, what="header object")
        if not isinstance(value, dict):
            raise InvalidInput("headers must be a JSON object")
        return value
    headers: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"header line {number} is not key=value: {line!r}")
        headers[key.strip()] = value.strip()
    return headers


def parse_ids(text: str, *, what: str = "depends on") -> list[int]:
    """Job ids typed as ``3, 4 5``; ``InvalidInput`` naming the first bad one."""
    ids = []
    for part in text.replace(",", " ").split():
        if not part.isdigit() or int(part) < 1:
            raise InvalidInput(f"{what}: {part!r} is not a job id")
        ids.append(int(part))
    return ids


def timestamp(value: float | None) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS`` UTC, or an empty string."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """A short human duration: ``42s``, ``3m 05s``, ``2h 07m``, ``3d 04h``."""
    if seconds is None or math.isnan(seconds):
        return "-"
    sign = "-" if seconds < 0 else ""
    left = int(abs(seconds))
    if left < 60:
        return f"{sign}{left}s"
    if left < 3600:
        return f"{sign}{left // 60}m {left % 60:02d}s"
    if left < 86400:
        return f"{sign}{left // 3600}h {left % 3600 // 60:02d}m"
    return f"{sign}{left // 86400}d {left % 86400 // 3600:02d}h"


def run_time(seconds: float | None) -> str:
    """An attempt's run time: ``0.42 s`` under a minute, else a :func:`duration`; ``""`` if
    None."""
    if seconds is None:
        return ""
    return f"{seconds:.2f} s" if seconds < 60 else duration(seconds)


def size(count: int) -> str:
    """Bytes as ``KiB``/``MiB``/``GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def preview(value: Any, width: int = 80) -> str:
    """A one-line JSON preview cut at ``width`` characters."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def payload_matches(job: Job | DeadLetter, needle: str) -> bool:
    """Whether ``needle`` occurs (case-insensitively) in the job's JSON payload."""
    text = json.dumps(job.payload, ensure_ascii=False, sort_keys=True)
    return needle.casefold() in text.casefold()


def jobs_frame(jobs: Sequence[Job], now: float) -> pd.DataFrame:
    """One row per job, newest data first as given."""
    rows = [{
        "id": job.id, "queue": job.queue, "state": job.state.value, "priority": job.priority,
        "attempts": f"{job.attempts}/{job.max_attempts}",
        "created": timestamp(job.created_at),
        "available in": duration(job.available_at - now)
        if job.state is JobState.READY and job.available_at > now else "",
        "lease left": duration(job.lease_expires_at - now)
        if job.lease_expires_at and job.state is JobState.LEASED else "",
        "headers": preview(job.headers, 40) if job.headers else "",
        "payload": preview(job.payload), "last error": job.last_error or "",
    } for job in jobs]
    return pd.DataFrame(rows, columns=["id", "queue", "state", "priority", "attempts", "created",
                                       "available in", "lease left", "headers", "payload",
                                       "last error"])


def history_frame(events: Sequence[JobEvent]) -> pd.DataFrame:
    """A job's timeline, oldest first: what happened, in which attempt, on which worker, and
    how long the attempt had run when it ended."""
    rows = [{"at": timestamp(e.at), "event": e.event, "attempt": e.attempt,
             "worker": e.worker or "", "run time": run_time(e.run_time),
             "detail": e.detail or ""} for e in events]
    return pd.DataFrame(rows, columns=["at", "event", "attempt", "worker", "run time",
                                       "detail"])


#: One colour per outcome, the same in every chart: failures red, successes green.
SERIES_COLOURS = {"enqueued": "#4c78a8", "acked": "#54a24b", "processed": "#54a24b",
                  "failed": "#e45756", "dead": "#9e1b32"}

#: What each short column label of :func:`stats_frame` counts (shown as header tooltips).
STATS_HELP = {
    "scheduled": "ready jobs whose time has not come (delayed or backing off)",
    "waiting": "jobs waiting for their dependencies",
    "expired": "leases that ran out (claimable again)",
    "retrying": "jobs waiting for another attempt after a failure",
    "dedup": "enqueues answered with an existing job (same dedup key)",
    "rejected": "enqueues refused because the queue was full (max size)",
    "oldest ready": "how long the oldest claimable job has waited",
    "alerts": "alert thresholds crossed now",
}


def stats_frame(stats: Mapping[str, QueueStats],
                alerts: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Per-queue counts by state (short labels: :data:`STATS_HELP` says what each counts),
    and the alerts firing on each queue when ``alerts`` is given."""
    rows = []
    for name, s in stats.items():
        row: dict[str, Any] = {
            "queue": name, "paused": s.paused, "ready": s.ready, "scheduled": s.scheduled,
            "waiting": s.waiting, "leased": s.leased, "expired": s.expired,
            "done": s.done, "dead": s.dead, "retrying": s.retry_pending,
            "dedup": s.dedup_hits, "rejected": s.rejected_full,
            "oldest ready": duration(s.oldest_ready_age),
        }
        if alerts is not None:
            row["alerts"] = ", ".join(alerts.get(name, ()))
        rows.append(row)
    columns = ["queue", "paused", "ready", "scheduled", "waiting", "leased", "expired",
               "done", "dead", "retrying", "dedup", "rejected", "oldest ready"]
    return pd.DataFrame(rows, columns=columns + (["alerts"] if alerts is not None else []))


def alert_text(alert: Alert) -> str:
    """``depth 12 ≥ 10``, ``oldest_age 5m 02s ≥ 5m 00s``, ``failure_rate 40.0% ≥ 20.0%``."""
    if alert.kind == "oldest_age":
        value, threshold = duration(alert.value), duration(alert.threshold)
    elif alert.kind == "failure_rate":
        value, threshold = f"{alert.value:.1%}", f"{alert.threshold:.1%}"
    else:
        value, threshold = f"{alert.value:g}", f"{alert.threshold:g}"
    return f"{alert.kind} {value} {'≥' if alert.firing else '<'} {threshold}"


def firing(alerts: Iterable[Alert]) -> dict[str, list[str]]:
    """The alerts firing now, as :func:`alert_text`, by queue."""
    found: dict[str, list[str]] = {}
    for alert in alerts:
        if alert.firing:
            found.setdefault(alert.queue, []).append(alert_text(alert))
    return found


def settings_frame(queues: Iterable[QueueInfo]) -> pd.DataFrame:
    """Each queue's settings: attempts, lease, size bound."""
    rows = [{"queue": q.name, "max attempts": q.max_attempts,
             "lease (s)": q.visibility_timeout, "max size": q.max_size} for q in queues]
    return pd.DataFrame(rows, columns=["queue", "max attempts", "lease (s)", "max size"])


def flow_frame(stats: Mapping[str, QueueStats], queues: Iterable[QueueInfo]) -> pd.DataFrame:
    """The queues with limits (flow control): each limit, the jobs in flight, the ready jobs
    the limits hold back now, and the claims they held back so far."""
    rows = []
    for info in queues:
        if (info.concurrency is None and info.rate_limit is None
                and info.group_concurrency is None and info.group_rate_limit is None):
            continue
        s = stats.get(info.name) or QueueStats(queue=info.name)
        rows.append({
            "queue": info.name, "concurrency": info.concurrency, "in flight": s.leased,
            "rate limit": info.rate_limit or "", "group concurrency": info.group_concurrency,
            "group rate limit": info.group_rate_limit or "",
            "throttled now": "yes" if s.held else "no", "held back": s.held,
            "throttled claims": s.throttled,
        })
    return pd.DataFrame(rows, columns=["queue", "concurrency", "in flight", "rate limit",
                                       "group concurrency", "group rate limit", "throttled now",
                                       "held back", "throttled claims"])


def dead_letters_frame(letters: Sequence[DeadLetter]) -> pd.DataFrame:
    """One row per dead letter: a preview of its payload, and why it died."""
    rows = [{"id": d.id, "queue": d.queue, "payload": preview(d.payload, 60),
             "reason": d.reason, "last error": preview_text(d.last_error or "", 80),
             "attempts": d.attempts, "dead at": timestamp(d.dead_at)} for d in letters]
    return pd.DataFrame(rows, columns=["id", "queue", "payload", "reason", "last error",
                                       "attempts", "dead at"])


def preview_text(text: str, width: int) -> str:
    """``text`` on one line, cut at ``width`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def timeline_frame(events: Sequence[JobEvent], job: Job | None = None) -> pd.DataFrame:
    """:func:`history_frame`, ended by the job's result once it is done."""
    frame = history_frame(events)
    if job is not None and job.state is JobState.DONE and job.result is not None:
        last = events[-1] if events else None
        frame.loc[len(frame)] = {
            "at": timestamp(job.finished_at), "event": "result",
            "attempt": last.attempt if last else job.attempts, "worker": job.claimed_by or "",
            "run time": "", "detail": preview(job.result, 200)}
    return frame


#: The most workers a page lists: lost ones pile up until the janitor forgets them, and a
#: page re-sends its tables on every refresh.
WORKERS_SHOWN = 200


def first_workers(workers: Iterable[WorkerInfo], busy: Collection[str] = (),
                  limit: int = WORKERS_SHOWN) -> list[WorkerInfo]:
    """At most ``limit`` workers: those in ``busy`` (running a job) first, then running ones,
    then the rest, each by latest heartbeat."""
    return sorted(workers, key=lambda w: (w.id not in busy, w.state != "running",
                                          -w.heartbeat_at))[:limit]


def workers_frame(workers: Sequence[WorkerInfo], now: float) -> pd.DataFrame:
    """Producers and consumers with the age of their last heartbeat."""
    rows = [{"id": w.id, "kind": w.kind, "state": w.state, "host": w.host, "pid": w.pid,
             "queues": ", ".join(w.queues), "processed": w.processed, "failed": w.failed,
             "last heartbeat": f"{duration(now - w.heartbeat_at)} ago",
             "started": timestamp(w.started_at)} for w in workers]
    return pd.DataFrame(rows, columns=["id", "kind", "state", "host", "pid", "queues",
                                       "processed", "failed", "last heartbeat", "started"])


def throughput_frame(points: Sequence[ThroughputPoint], queue: str | None = None, *,
                     start: float | None = None, end: float | None = None,
                     step: float = 60.0) -> pd.DataFrame:
    """Long-form throughput: one row per (bucket, series) summed over queues (or one queue).

    With ``start`` and ``end``, buckets without any job are filled with zeros, so a chart
    shows quiet minutes as zero instead of drawing a line across them.
    """
    totals: dict[float, dict[str, int]] = {}
    if start is not None and end is not None and step > 0:
        bucket = (start // step) * step
        while bucket <= end:
            totals[bucket] = {"enqueued": 0, "acked": 0, "failed": 0, "dead": 0}
            bucket += step
    for p in points:
        if queue is not None and p.queue != queue:
            continue
        entry = totals.setdefault(p.bucket, {"enqueued": 0, "acked": 0, "failed": 0, "dead": 0})
        entry["enqueued"] += p.enqueued
        entry["acked"] += p.acked
        entry["failed"] += p.failed
        entry["dead"] += p.dead
    rows = [{"time": datetime.fromtimestamp(bucket, UTC), "series": series, "jobs": count}
            for bucket, counts in sorted(totals.items()) for series, count in counts.items()]
    return pd.DataFrame(rows, columns=["time", "series", "jobs"])
