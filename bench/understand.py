"""Query understanding costs: the parser per query, and where the exact scan beats the
filtered HNSW search.

    .venv/bin/python bench/understand.py [--items 100000] [--out docs/bench/understand.json]

1. Parser: every query of the generated shop (English and Chinese) and of the MovieLens
   attribute and known-item sets (when ML-1M is installed) read against its catalog's
   vocabulary, 5 rounds after a warm-up; p50/p99 in µs (the issue's budget: 1 ms p50).
2. Switch: an HNSW index of ``--items`` random unit vectors (384 + 64 dims, M 16,
   ef_construction 100) and a numeric attribute uniform in [0, 1); a filter "≤ s" keeps a
   share s of the items. For each s: the filtered HNSW search of 200 candidates (the
   default SREC_CANDIDATES) and the exact scan of the matches (core/retrieve.search),
   median ms over 50 queries, and the filtered search's recall of the exact top 10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from streaming_rec.core import retrieve
from streaming_rec.core.catalog import Catalog, ItemMeta
from streaming_rec.core.filters import Condition, ItemFilter
from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.understand.parse import Understander
from streaming_rec_dev.datasets import shop


def parser_costs() -> dict[str, object]:
    now = time.time()
    sets: list[tuple[str, Catalog, list[str]]] = []
    products = shop.catalog(now=now)
    catalog = Catalog()
    for p in products:
        catalog.put(ItemMeta(p.item_id, p.title, p.categories, p.attributes, p.published_at))
    sets.append(("shop", catalog, [q.text for q in shop.queries(products, now=now)]))
    try:
        from streaming_rec_dev.datasets.movielens import load_movies
        from streaming_rec_dev.evaluation import queries

        movies = load_movies("ml-1m")
        films = Catalog()
        for m in movies:
            films.put(ItemMeta(m.item_id, m.title, m.genres, {"year": m.year} if m.year else {}))
        texts = [q.text for q in queries.attribute_queries(movies, 50)]
        texts += [q.text for q in queries.known_item_queries(movies, 200)]
        sets.append(("ml-1m", films, texts))
    except Exception as exc:  # ML-1M not installed: the shop alone
        print(f"ml-1m skipped: {exc}", file=sys.stderr)
    out: dict[str, object] = {}
    for name, cat, texts in sets:
        understander = Understander()
        vocab = cat.facets.vocabulary()
        for text in texts:  # warm-up: the matcher is compiled once per vocabulary
            understander.understand(text, vocab, now)
        costs = []
        for _ in range(5):
            for text in texts:
                t = time.perf_counter()
                understander.understand(text, vocab, now)
                costs.append((time.perf_counter() - t) * 1e6)
        costs.sort()
        out[name] = {
            "queries": len(texts),
            "p50_us": round(statistics.median(costs), 1),
            "p99_us": round(costs[int(0.99 * (len(costs) - 1))], 1),
        }
    return out


def switch(items: int, seed: int = 5) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    dim = 448
    vectors = rng.standard_normal((items, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"i{i}" for i in range(items)]
    index = HnswIndex(dim, max_elements=items, m=16, ef_construction=100, threads=2)
    t = time.perf_counter()
    index.upsert(ids, vectors)
    print(f"built {items} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    catalog = Catalog()
    share = rng.random(items)
    for i, item_id in enumerate(ids):
        catalog.put(ItemMeta(item_id, item_id, (), {"s": float(share[i])}))
    facets = catalog.facets
    queries = rng.standard_normal((50, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    rows = []
    for s in (0.0005, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0):
        flt = ItemFilter(attributes=(Condition("s", "lte", s),))
        t = time.perf_counter()
        mask, matching = retrieve.filtered_mask(facets, flt)
        mask_ms = (time.perf_counter() - t) * 1000
        allow = retrieve.allow_function(facets, mask, frozenset(), catalog.__contains__)
        hnsw_ms, exact_ms, recall = [], [], []
        for q in queries:
            t = time.perf_counter()
            approx = index.search(q, 200, allow)
            hnsw_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            exact = retrieve.search(index, facets, q, 200, mask, matching, allow, 10**9)
            exact_ms.append((time.perf_counter() - t) * 1000)
            truth = {h.item_id for h in exact[:10]}
            recall.append(len(truth & {h.item_id for h in approx[:10]}) / max(1, len(truth)))
        rows.append(
            {
                "share": s,
                "matching": float(matching or 0),
                "mask_ms": round(mask_ms, 3),
                "hnsw_filtered_ms": round(statistics.median(hnsw_ms), 3),
                "exact_scan_ms": round(statistics.median(exact_ms), 3),
                "hnsw_recall@10": round(float(np.mean(recall)), 3),
            }
        )
        print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = {"parser": parser_costs(), "switch": {"items": args.items, "rows": switch(args.items)}}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
