"""Print the results as a table (with ratios to raw SQLite in the same mode) and draw charts."""

from __future__ import annotations

import json
import os
from typing import Any

from .systems import SYSTEMS, baseline_of

THROUGHPUT = [
    ("enqueue", "enqueue/s"),
    ("enqueue_batch", "batch enq/s"),
    ("drain_1", "drain 1p/s"),
    ("drain_2", "drain 2p/s"),
    ("drain_8", "drain 8p/s"),
    ("claim_ack_batch", "batch claim+ack/s"),
]


def _rate(entry: dict[str, Any] | None) -> float | None:
    return None if not entry or entry.get("errors") else entry.get("jobs_per_s")


def _cell(value: float | None, base: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}"
    if base:
        text += f" ({value / base:.2f}x)"
    return text


def table(systems: dict[str, dict[str, Any]]) -> str:
    """A plain-text table: jobs/s with (ratio to raw SQLite in the same mode)."""
    header = ["system"] + [label for _, label in THROUGHPUT] + [
        "dup/loss (all drains)", "e2s p50/p99 ms", "idle CPU %", "consumer RSS MB"]
    rows = [header]
    for key, result in systems.items():
        base = systems.get(baseline_of(key), {})
        row = [result["name"]]
        for workload, _ in THROUGHPUT:
            base_rate = None if key.startswith("raw") else _rate(base.get(workload))
            row.append(_cell(_rate(result.get(workload)), base_rate))
        drains = [result[w] for w in ("drain_1", "drain_2", "drain_8")
                  if result.get(w) and "acked" in result[w]]
        row.append("/".join(str(sum(d[f] for d in drains)) for f in ("duplicates", "losses"))
                   if drains else "-")
        mixed = result.get("mixed")
        mixed = mixed if mixed and "p50_ms" in mixed else None
        row.append(f"{mixed['p50_ms']:.1f}/{mixed['p99_ms']:.1f}" if mixed else "-")
        idle = result.get("idle")
        idle = idle if idle and "cpu_percent" in idle else None
        row.append(f"{idle['cpu_percent']:.2f}" if idle else "-")
        rss = [d["peak_rss_mb"] for d in drains]
        row.append(f"{max(rss):.0f}" if rss else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def history_table(history: dict[str, Any]) -> str:
    lines = [f"claim latency, {history['ready']:,} ready jobs, {history['samples']:,} claims "
             f"(p50 / p99 / max ms):"]
    for label, title in (("empty", "no history"), ("history", f"{history['done']:,} done")):
        for mode in ("normal", "full"):
            r = history.get(f"{label}_{mode}")
            if r:
                lines.append(f"  {title:>16}, {mode:>6}: {r['p50_ms']:.3f} / {r['p99_ms']:.3f}"
                             f" / {r['max_ms']:.3f}")
    return "\n".join(lines)


def write_json(results: dict[str, Any], out_dir: str, name: str = "results.json") -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, sort_keys=True)
    return path


def charts(results: dict[str, Any], out_dir: str) -> list[str]:
    """Bar charts of throughput and latency; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = results["systems"]
    keys = [k for k in SYSTEMS if k in systems]
    names = [systems[k]["name"] for k in keys]
    written = []

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, (workload, label) in zip(axes.flat, THROUGHPUT, strict=True):
        values = [_rate(systems[k].get(workload)) or 0 for k in keys]
        colors = ["tab:blue" if k.startswith(("pq", "pg")) else "tab:gray" if k.startswith("raw")
                  else "tab:orange" for k in keys]
        ax.barh(names, values, color=colors)
        ax.set_title(label.replace("/s", " (jobs/s)"))
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        for i, v in enumerate(values):
            if v:
                ax.text(v, i, f" {v:,.0f}", va="center", fontsize=7)
    fig.suptitle(f"Throughput, {results['meta']['jobs']:,} jobs of ~200 bytes "
                 "(blue: this project, gray: raw SQLite / psycopg, orange: peers)")
    fig.tight_layout()
    path = os.path.join(out_dir, "throughput.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    mixed_keys = [k for k in keys if "p50_ms" in (systems[k].get("mixed") or {})]
    p50 = [systems[k]["mixed"]["p50_ms"] for k in mixed_keys]
    p99 = [systems[k]["mixed"]["p99_ms"] for k in mixed_keys]
    ys = range(len(mixed_keys))
    axes[0].barh([y - 0.2 for y in ys], p50, height=0.4, label="p50")
    axes[0].barh([y + 0.2 for y in ys], p99, height=0.4, label="p99")
    axes[0].set_yticks(list(ys), [systems[k]["name"] for k in mixed_keys], fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_title("enqueue-to-start latency (ms), paced producer + 2 waiting consumers")
    axes[0].legend()
    history = results.get("history")
    if history:
        labels, values = [], []
        for label in ("empty", "history"):
            for mode in ("normal", "full"):
                r = history.get(f"{label}_{mode}")
                if r:
                    title = "0 done" if label == "empty" else f"{history['done']:,} done"
                    labels.append(f"{title}, {mode}")
                    values.append(r["p99_ms"])
        axes[1].barh(labels, values, color="tab:blue")
        axes[1].invert_yaxis()
        axes[1].set_title("this project: claim latency p99 (ms)")
    fig.tight_layout()
    path = os.path.join(out_dir, "latency.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written
