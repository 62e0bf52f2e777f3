"""Run the benchmark parts and write docs/bench/<part>.json and docs/bench/summary.md.

    .venv/bin/python bench/run_all.py                      # everything, index at 100k and 1M
    .venv/bin/python bench/run_all.py --scale 100k         # index at 100k only
    .venv/bin/python bench/run_all.py --only floor,idle    # some parts (modules of their own)
    .venv/bin/python bench/run_all.py --quick              # small and short: a smoke run
    .venv/bin/python bench/run_all.py --set explore_share=0 --set learn_rate=0  # an A/B

The Kafka parts (idle, load, freshness) start a broker of their own (or use
KAFKA_BOOTSTRAP_SERVERS), topics with a unique prefix, the ML-1M catalog and ONE worker,
and stop what they started at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OPTIONS, Context, log, out_dir, set_out_dir
from summary import write_summary

PARTS = ("floor", "hops", "idle", "load", "freshness", "gc", "rank", "index_scale")
ALIASES = {"scale": "index_scale", "e2e": "idle,load"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--scale", default="100k,1m", help="index sizes, e.g. 100k,1m")
    parser.add_argument(
        "--ef-construction",
        type=int,
        default=200,
        help="HNSW build beam for the index-scale part (product default 200)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer queries, shorter steps")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch threads in process and OMP/MKL_NUM_THREADS for the worker (default: "
        "the package's, i.e. all cores)",
    )
    parser.add_argument("--out", default="", help="output folder (default docs/bench)")
    parser.add_argument("--rates", default="", help="load rates (q/s), e.g. 10,50,100")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the in-process pipeline and the worker, e.g. explore_share=0",
    )
    args = parser.parse_args(argv)
    wanted = []
    for name in args.only.split(","):
        for part in ALIASES.get(name.strip(), name.strip()).split(","):
            if part not in PARTS:
                parser.error(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
            wanted.append(part)
    args.parts = [p for p in PARTS if p in wanted]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.out:
        set_out_dir(Path(args.out))
    recorded = ("only", "scale", "quick", "rates", "torch_threads", "ef_construction", "set")
    OPTIONS.update({k: v for k, v in vars(args).items() if k in recorded})
    model_settings = dict(item.split("=", 1) for item in args.set)
    ctx = Context(quick=args.quick, torch_threads=args.torch_threads, model_settings=model_settings)
    started = time.monotonic()
    try:
        for part in args.parts:
            log(f"=== {part} ===")
            if part == "floor":
                import floor

                ctx.results[part] = floor.run(ctx)
            elif part == "hops":
                import hops

                ctx.results[part] = hops.run(ctx)
            elif part == "idle":
                import e2e

                ctx.results[part] = e2e.run_idle(ctx)
            elif part == "load":
                import e2e

                rates = tuple(float(r) for r in args.rates.split(",") if r) or None
                ctx.results[part] = e2e.run_load(ctx, rates)
            elif part == "freshness":
                import freshness

                ctx.results[part] = freshness.run(ctx)
            elif part == "gc":
                import gcpause

                ctx.results[part] = gcpause.run(ctx)
            elif part == "rank":
                import rankcost

                ctx.results[part] = rankcost.run(ctx)
            elif part == "index_scale":
                import index_scale

                ctx.stop_stack()  # the index parts run on a machine without our worker
                scales = [index_scale.parse_scale(s) for s in args.scale.split(",") if s]
                ctx.results[part] = index_scale.run(ctx, scales, args.ef_construction)
    except BaseException:
        if ctx.worker is not None:
            log("worker log tail:\n" + ctx.worker_log_tail())
        raise
    finally:
        ctx.close()
    path = write_summary()
    log(f"wrote {path}; all done in {time.monotonic() - started:.0f} s")
    log(f"outputs in {out_dir()}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
