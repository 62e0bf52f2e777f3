"""Part 5, index scale (no Kafka, no model): HnswIndex on synthetic clustered unit vectors.

Data: 1000 isotropic Gaussian clusters in 384 dims (random unit centres, noise of norm 0.9:
two points of one cluster have cosine ≈ 0.55), normalised; queries are held-out draws from
the same clusters.
Per scale: build time (batched upserts, 2 threads), RSS growth, snapshot size / save / load
time, search p50 and recall@10 against exact numpy search at ef 32/64/128/256, and the
search as the service calls it (k = candidates, a Python allow filter).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import RUN_ID, SEED, Context, log, pct, read_json, rss_mb, write_json

DIM, CLUSTERS = 384, 1000
NOISE = 0.9  # norm of a point's offset from its cluster centre (before normalising)
M, THREADS, BATCH = 16, 2, 10_000
EF_CONSTRUCTION = 200  # the product default (SREC_HNSW_EF_CONSTRUCTION); --ef-construction
EFS = (32, 64, 128, 256)
N_QUERIES = 300


def parse_scale(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * mult)


class Clusters:
    def __init__(self, seed: int = SEED) -> None:
        rng = np.random.default_rng(seed)
        self.centers = _unit(rng.standard_normal((CLUSTERS, DIM), dtype=np.float32))

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = self.centers[rng.integers(0, CLUSTERS, n)]
        out += rng.standard_normal((n, DIM), dtype=np.float32) * np.float32(NOISE / np.sqrt(DIM))
        return _unit(out)


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def exact_top(data: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k rows by inner product, in chunks of the data."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for lo in range(0, len(data), 100_000):
        scores = queries @ data[lo : lo + 100_000].T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(scores, part, 1)
        all_s, all_i = np.hstack([best_s, s]), np.hstack([best_i, part + lo])
        keep = np.argsort(-all_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, keep, 1), np.take_along_axis(all_i, keep, 1)
    return best_i


def release_freed_heap() -> None:
    """glibc keeps freed memory for reuse; give it back so RSS growth measures new memory."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def one_scale(n: int, clusters: Clusters, ef_construction: int) -> dict[str, Any]:
    from tqdm import tqdm

    from streaming_rec.core.hnsw import HnswIndex

    log(f"index scale {n:,}: drawing vectors")
    data = clusters.draw(n, SEED + n)
    queries = clusters.draw(N_QUERIES, SEED - 1)
    truth = exact_top(data, queries)
    t0 = time.perf_counter()
    for q in queries[:20]:
        scores = data @ q
        np.argpartition(-scores, 9)[:10]
    exact_ms = (time.perf_counter() - t0) * 1000.0 / 20

    release_freed_heap()  # so that the growth below is the index, not reused free memory
    rss0 = rss_mb()
    index = HnswIndex(DIM, max_elements=n, m=M, ef_construction=ef_construction, threads=THREADS)
    started = time.perf_counter()
    for lo in tqdm(range(0, n, BATCH), desc=f"build {n:,}", unit="batch", file=sys.stderr):
        hi = min(n, lo + BATCH)
        index.upsert([f"i{j}" for j in range(lo, hi)], data[lo:hi])
    build_s = time.perf_counter() - started
    rss_growth = rss_mb() - rss0
    log(f"built {n:,} in {build_s:.1f} s, RSS +{rss_growth:.0f} MiB")

    searches = {}
    for ef in EFS:
        index.ef_search = ef
        for q in queries[:20]:
            index.search(q, 10)
        times, hits = [], 0
        for q, want in zip(queries, truth, strict=True):
            t = time.perf_counter()
            got = index.search(q, 10)
            times.append((time.perf_counter() - t) * 1000.0)
            hits += len({int(h.item_id[1:]) for h in got} & set(want.tolist()))
        searches[str(ef)] = {
            "search_ms": pct(times, 50, 99),
            "recall_at_10": round(hits / (10 * len(queries)), 4),
        }
        log(
            f"{n:,} ef {ef}: p50 {searches[str(ef)]['search_ms']['p50']} ms, "
            f"recall@10 {searches[str(ef)]['recall_at_10']}"
        )

    # as Recommender._answer calls it: k = candidates (200), ef_search 64, a Python filter
    index.ef_search = 64
    allowed = {f"i{j}" for j in range(n)}
    service_ms = []
    for q in queries[:100]:
        t = time.perf_counter()
        index.search(q, 200, allowed.__contains__)
        service_ms.append((time.perf_counter() - t) * 1000.0)
    del allowed

    tmp = Path(tempfile.mkdtemp(prefix="srec-snap-"))
    try:
        t = time.perf_counter()
        index.save(tmp / "snap")
        save_s = time.perf_counter() - t
        size = dir_size(tmp / "snap")
        t = time.perf_counter()
        loaded = HnswIndex.load(tmp / "snap", dim=DIM)
        load_s = time.perf_counter() - t
        assert len(loaded) == n
        del loaded
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    good = [ef for ef in EFS if searches[str(ef)]["recall_at_10"] >= 0.95]
    best = (
        {"ef": good[0], **searches[str(good[0])]} if good else None
    )  # the cheapest ef reaching recall 0.95
    del index
    return {
        "items": n,
        "run_id": RUN_ID,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "ef_construction": ef_construction,
        "build_s": round(build_s, 2),
        "build_items_per_s": round(n / build_s, 1),
        "rss_growth_mib": round(rss_growth, 1),
        "snapshot_mib": round(size / 2**20, 1),
        "snapshot_save_s": round(save_s, 2),
        "snapshot_load_s": round(load_s, 2),
        "search": searches,
        "cheapest_ef_at_recall_0_95": best,
        "service_shaped_search_ms": {
            **pct(service_ms, 50, 99),
            "how": "HnswIndex.search(q, k=200, allow=python set lookup), ef_search 64 → ef 200",
        },
        "exact_numpy_search_ms_median": round(exact_ms, 2),
    }


def run(
    ctx: Context | None, scales: list[int], ef_construction: int = EF_CONSTRUCTION
) -> dict[str, Any]:
    clusters = Clusters()
    rows = [one_scale(n, clusters, ef_construction) for n in scales]
    # keep the rows of scales this run did not measure (each row names its own run)
    previous = read_json("index_scale")
    old_rows = (previous or {}).get("results", {}).get("scales", [])
    kept = [r for r in old_rows if r["items"] not in scales]
    for r in kept:
        r.setdefault("run_id", previous["run_id"] if previous else "")
        r.setdefault("ef_construction", EF_CONSTRUCTION)
    results = {"scales": sorted(kept + rows, key=lambda r: r["items"])}
    settings = {
        "dim": DIM,
        "clusters": CLUSTERS,
        "cluster_noise_norm": NOISE,
        "cluster_shape": "isotropic Gaussian around random unit centres, then normalised",
        "m": M,
        "ef_construction": "per row (product default 200)",
        "build_threads": THREADS,
        "upsert_batch": BATCH,
        "search_threads": 1,
        "queries": N_QUERIES,
        "k": 10,
        "efs": list(EFS),
        "scales": scales,
        "median_of": "per-query wall time of HnswIndex.search (Python wrapper included)",
    }
    write_json("index_scale", results, settings)
    return results
