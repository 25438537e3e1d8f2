"""The end-to-end benchmark's report: one round's line, the table and the goals' checks.

Each system's entry (``bench/results/endtoend.json``) holds its ``name``, whether it is this
project (``ours``) and whether an acknowledged enqueue survives power loss there (``durable``),
its ``rounds`` and their means.
"""

from __future__ import annotations

from typing import Any


def summary(one: dict[str, Any]) -> str:
    if "error" in one:
        return "ERROR " + one["error"]
    return (f"enqueue {one['enqueue_per_s']:,.0f}/s  drain {one['drain_per_s']:,.0f}/s  "
            f"p50 {one['p50_ms']:.1f} p99 {one['p99_ms']:.1f} ms  "
            f"cpu {one['cpu_s_per_1k']:.2f} s/1k  lost {one['lost']} dup {one['duplicated']}")


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals that the measured systems allow checking."""
    def get(key: str, metric: str) -> float | None:
        value = results.get(key, {}).get(metric)
        return None if value is None else float(value)

    peers = [k for k in results if not results[k]["ours"] and get(k, "drain_per_s")]
    checks: list[dict[str, Any]] = []

    def check(text: str, ours: float | None, target: float | None, factor: float,
              lower_is_better: bool = False) -> None:
        if ours is None or not target:
            return
        ratio = target / ours if lower_is_better else ours / target
        checks.append({"goal": text, "ours": ours, "target": target * factor if not
                       lower_is_better else target, "ratio": ratio, "holds": ratio >= factor})

    if peers:
        best = max(peers, key=lambda k: get(k, "drain_per_s") or 0)
        check(f"drain, normal >= 1.5x best peer ({best})", get("pq-normal", "drain_per_s"),
              get(best, "drain_per_s"), 1.5)
        durable = [k for k in peers if results[k]["durable"]]
        if durable:
            top = max(durable, key=lambda k: get(k, "drain_per_s") or 0)
            check(f"drain, full >= best durable peer ({top})", get("pq-full", "drain_per_s"),
                  get(top, "drain_per_s"), 1.0)
        cpus = [k for k in peers if get(k, "cpu_s_per_1k")]
        low = min(cpus, key=lambda k: get(k, "cpu_s_per_1k") or 0)
        check(f"worker CPU per 1k, normal <= lowest peer ({low})",
              get("pq-normal", "cpu_s_per_1k"), get(low, "cpu_s_per_1k"), 1.0, True)
    check("PostgreSQL drain, full >= 4x procrastinate", get("pg-full", "drain_per_s"),
          get("procrastinate", "drain_per_s"), 4.0)
    check("enqueue->start p50, normal <= 2 ms (push wake-ups)", get("pq-normal", "p50_ms"),
          2.0, 1.0, True)
    check("enqueue->start p99, normal <= 10 ms (push wake-ups)", get("pq-normal", "p99_ms"),
          10.0, 1.0, True)
    return checks


def table(results: dict[str, Any]) -> str:
    peers = [e["drain_per_s"] for e in results.values() if not e["ours"] and e.get("drain_per_s")]
    best = max(peers) if peers else None
    lines = ["| system | enqueue/s | drain/s, workers warm | enqueue→start p50 / p99 ms | "
             "worker CPU s per 1k jobs | lost / duplicated |", "|---|---|---|---|---|---|"]
    for entry in results.values():
        if entry.get("drain_per_s") is None:
            lines.append(f"| {entry['name']} | error: {entry['rounds'][-1]['error']} |||||")
            continue
        ratio = f" ({entry['drain_per_s'] / best:.2f}x)" if best else ""
        lines.append(f"| {entry['name']} | {entry['enqueue_per_s']:,.0f} | "
                     f"{entry['drain_per_s']:,.0f}{ratio} | {entry['p50_ms']:.1f} / "
                     f"{entry['p99_ms']:.1f} | {entry['cpu_s_per_1k']:.2f} | "
                     f"{entry['lost']} / {entry['duplicated']} |")
    return "\n".join(lines)
