"""Figures (matplotlib, Agg backend) written next to the JSON in docs/bench/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from common import ROOT, out_dir


def plot_load(steps: list[dict[str, Any]], half: dict[str, Any] | None, bound_ms: float) -> Path:
    """p50 and p99 publish→answer latency against achieved throughput."""
    rows = sorted(steps + ([half] if half else []), key=lambda r: r["achieved_qps"])
    x = [r["achieved_qps"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.plot(x, [r["latency_ms"]["p50"] for r in rows], "o-", label="p50")
    ax.plot(x, [r["latency_ms"]["p99"] for r in rows], "s-", label="p99")
    for r in rows:
        ax.annotate(
            f"{r['offered_qps']:g}",
            (r["achieved_qps"], r["latency_ms"]["p99"]),
            textcoords="offset points",
            xytext=(3, 5),
            fontsize=7,
            color="grey",
        )
    ax.axhline(bound_ms, color="red", lw=0.8, ls="--", label=f"p99 bound {bound_ms:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("achieved throughput (answers/s); grey: offered q/s")
    ax.set_ylabel("publish → answer latency (ms)")
    ax.set_title("Open-loop load, one worker, 2-core machine")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out_dir() / "load.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def plot_compare(runs: dict[str, dict[str, Any]], bound_ms: float, path: Path) -> Path:
    """p99 (solid) and p50 (dashed) latency against offered load for several runs (e.g.
    the ONNX and torch encoders, and the code before), one chart."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for n, (name, load) in enumerate(runs.items()):
        steps = sorted(load["results"]["steps"], key=lambda r: r["offered_qps"])
        x = [r["offered_qps"] for r in steps]
        color = f"C{n}"
        ax.plot(x, [r["latency_ms"]["p99"] for r in steps], "o-", color=color, label=f"{name} p99")
        ax.plot(x, [r["latency_ms"]["p50"] for r in steps], "x--", color=color, label=f"{name} p50")
    ax.axhline(bound_ms, color="red", lw=0.8, ls="--", label=f"p99 aim {bound_ms:g} ms")
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("offered load (q/s, open loop, Poisson)")
    ax.set_ylabel("publish → answer latency (ms)")
    ax.set_title("Latency vs offered load, one worker, 2-core machine")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
