"""A job's timeline, from its stored events and its row, for every backend.

Only some transitions write an event row (a failure, an expired lease, a cancel request, a
cancel, a dead-lettering, a redrive): a claim and an ack write none, so the hot path stays
one statement each. What they did is read back instead:

* ``enqueued``: the job's ``created_at`` (kept across redrives);
* ``claimed``: one per attempt, at ``at - run_time`` of each stored event that ended an
  attempt (``failed``, ``lease_expired``, ``cancelled``, ``dead_lettered`` carry the worker
  and run time when they did), and for the attempt running or acked now from the row's
  ``started_at`` and ``claimed_by``;
* ``acked``: a done job's ``finished_at``, with the worker and run time of its last attempt.

A claim given back by ``requeue`` (not counted as an attempt) leaves nothing to read.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..models import Job, JobEvent, JobState


def _place_claim(timeline: list[JobEvent], claim: JobEvent) -> None:
    """Append ``claim``, before a cancel request of its own attempt noted after it (the only
    stored event that happens while an attempt runs)."""
    index = len(timeline)
    while (index > 0 and timeline[index - 1].event == "cancel_requested"
           and timeline[index - 1].at >= claim.at):
        index -= 1
    timeline.insert(index, claim)


def timeline(job: Job | None, stored: Sequence[JobEvent]) -> list[JobEvent]:
    """The whole history of a job, oldest first: ``stored`` (its event rows, in the order
    written) with what its row ``job`` (None once it is gone) says besides."""
    events: list[JobEvent] = []
    if job is not None:
        events.append(JobEvent(job_id=job.id, queue=job.queue, at=job.created_at,
                               event="enqueued", attempt=0, detail=None))
    for event in stored:
        if event.run_time is not None:
            _place_claim(events, JobEvent(
                job_id=event.job_id, queue=event.queue, at=event.at - event.run_time,
                event="claimed", attempt=event.attempt, detail=None, worker=event.worker))
        events.append(event)
    if job is None or job.state not in (JobState.LEASED, JobState.DONE):
        return events
    started = job.started_at  # None for a job claimed before schema 7
    if started is not None:
        _place_claim(events, JobEvent(job_id=job.id, queue=job.queue, at=started,
                                      event="claimed", attempt=job.attempts, detail=None,
                                      worker=job.claimed_by))
    if job.state is JobState.DONE and job.finished_at is not None:
        events.append(JobEvent(job_id=job.id, queue=job.queue, at=job.finished_at,
                               event="acked", attempt=job.attempts, detail=None,
                               worker=job.claimed_by,
                               run_time=None if started is None else job.run_time))
    return events
