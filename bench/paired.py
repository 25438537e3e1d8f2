"""Ratios to raw SQLite measured in interleaved rounds, for a machine whose load drifts.

One pass of the main table measures each system minutes apart; on a shared machine the
load (and the disk's fsync latency) changes in between. Here this project and raw SQLite
alternate, round after round, on the workloads whose ratio the targets name (per-job
enqueue, per-job claim + ack in 1 and 2 processes); the ratio of each round is taken and
the median of those ratios reported.
"""

from __future__ import annotations

import statistics
from typing import Any

from . import workloads

WORKLOADS = ("enqueue", "drain_1", "drain_2")


def _measure(workload: str, key: str, workdir: str, jobs: int) -> float:
    if workload == "enqueue":
        return workloads.enqueue_per_job(key, workdir, jobs)["jobs_per_s"]
    processes = int(workload.split("_")[1])
    result = workloads.drain(key, workdir, jobs, processes)
    if result["duplicates"] or result["losses"]:
        raise AssertionError(f"{key} {workload}: {result}")
    return float(result["jobs_per_s"])


def run(workdir: str, *, rounds: int, jobs: dict[str, int], ours_key: str = "pq-{mode}",
        raw_key: str = "raw-{mode}") -> dict[str, Any]:
    """``{mode: {workload: {project, raw, ratio, ratios, jobs}}}`` over ``rounds`` rounds
    (``ours_key``/``raw_key``: the systems compared, e.g. ``pg-{mode}``/``raw-pg-{mode}``)."""
    out: dict[str, Any] = {}
    for mode in ("normal", "full"):
        ours, raw = ours_key.format(mode=mode), raw_key.format(mode=mode)
        out[mode] = {}
        for workload in WORKLOADS:
            pairs = []
            for index in range(rounds):
                order = (ours, raw) if index % 2 == 0 else (raw, ours)
                got = {key: _measure(workload, key, workdir, jobs[mode]) for key in order}
                pairs.append((got[ours], got[raw]))
            ratios = [a / b for a, b in pairs]
            out[mode][workload] = {
                "project": statistics.median(a for a, _ in pairs),
                "raw": statistics.median(b for _, b in pairs),
                "ratio": statistics.median(ratios),
                "ratios": ratios,
                "jobs": jobs[mode],
            }
            print(f"  {mode:>6} {workload:<8} ratio {out[mode][workload]['ratio']:.2f} "
                  f"({', '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    return out


def table(paired: dict[str, Any]) -> str:
    lines = ["interleaved rounds, median jobs/s (median ratio of the rounds):"]
    for mode, entries in paired.items():
        for workload, e in entries.items():
            lines.append(f"  {mode:>6} {workload:<8} project {e['project']:9,.0f}  "
                         f"raw {e['raw']:9,.0f}  ratio {e['ratio']:.2f}  "
                         f"({len(e['ratios'])} rounds of {e['jobs']:,} jobs)")
    return "\n".join(lines)
