"""Interleaved A/B of worker settings under one open-loop load step.

    python bench/ab.py --label gil-switch --rate 150 --repeat 2 \
        "5 ms=gil_switch_interval_ms=5" "0.5 ms=gil_switch_interval_ms=0.5"

Each variant is ``name=SETTING=VALUE[,SETTING=VALUE]`` (the settings go to the in-process
pipeline and the worker, as ``run_all.py --set``). Runs alternate A, B, A, B, … so that a
drift of the machine (other jobs, the page cache) falls on both; each run is a fresh stack
(broker, topics, ML-1M catalog, one worker), then one Poisson step of ``--rate`` q/s for
``--seconds`` s (bench/e2e.step). Writes docs/bench/ab-<label>.json: every run's row and,
per variant, the median of the runs' p50/p99 latency, worker CPU per answer and mean batch.
On a 2-core machine single runs differ by 1.5x at the edge of capacity: read the pairs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from common import Context, log, set_out_dir, write_json
from e2e import Listener, step


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``name=K=V,K=V`` → (name, {K: V}); ValueError when malformed."""
    name, _, rest = text.partition("=")
    settings = {}
    for pair in filter(None, rest.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"{text!r}: expected name=SETTING=VALUE[,SETTING=VALUE]")
        settings[key.strip()] = value.strip()
    if not name:
        raise ValueError(f"{text!r}: the variant needs a name")
    return name, settings


def one_run(settings: dict[str, str], rate: float, seconds: float) -> dict[str, Any]:
    ctx = Context(model_settings=settings)
    try:
        ctx.client()
        listener = Listener(ctx.settings())
        try:
            return step(listener, ctx.worker.process.pid, rate, seconds, uuid.uuid4().hex[:6])
        finally:
            listener.close()
    finally:
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs=2, help="name=SETTING=VALUE[,SETTING=VALUE]")
    parser.add_argument("--label", required=True, help="the output is ab-<label>.json")
    parser.add_argument("--rate", type=float, default=150.0, help="offered q/s")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant")
    parser.add_argument("--out", default=None, help="output folder (default docs/bench)")
    args = parser.parse_args()
    if args.out:
        set_out_dir(Path(args.out))
    variants = [parse_variant(v) for v in args.variants]
    runs: list[dict[str, Any]] = []
    for i in range(args.repeat):
        for name, settings in variants:
            log(f"run {i + 1}/{args.repeat}: {name} {settings} at {args.rate:g} q/s")
            started = time.monotonic()
            row = one_run(settings, args.rate, args.seconds)
            log(f"{name}: p50 {row['latency_ms']['p50']} p99 {row['latency_ms']['p99']} ms")
            runs.append({"variant": name, "settings": settings, "run": i, **row})
            log(f"({time.monotonic() - started:.0f} s)")
    medians = {}
    for name, _ in variants:
        rows = [r for r in runs if r["variant"] == name]
        medians[name] = {
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in rows),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in rows),
            "worker_cpu_ms_per_answer": statistics.median(
                r["worker_cpu_ms_per_answer"] for r in rows
            ),
            "mean_batch": statistics.median(r["mean_batch"] or 0 for r in rows),
        }
        log(f"{name}: median of {len(rows)} runs {medians[name]}")
    write_json(
        f"ab-{args.label}",
        {"rate_qps": args.rate, "medians": medians, "runs": runs},
        {"variants": dict(variants), "seconds": args.seconds, "repeat": args.repeat},
    )


if __name__ == "__main__":
    main()
