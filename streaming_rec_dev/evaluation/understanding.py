"""Query understanding measured in-process: the harness's MovieLens text queries, and a
generated shop (streaming_rec_dev/datasets/shop.py), each asked with parsing on and off.

    python -m streaming_rec_dev.evaluation.understanding --dataset ml-1m [--shop]

The worker's Recommender is built by the composition root with the settings the live
harness uses (docs/quality/tuned-<dataset>.json), fed the catalog with the worker's item
text and the popular-now counts of the training split, then asked the known-item and
attribute queries of queries.py from fresh users (no taste: the live harness asks them
the same way), once with ``understand`` off (the figures before this feature) and once
on. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from streaming_rec.bootstrap import build_recommender
from streaming_rec.config import load_settings
from streaming_rec.core.catalog import ItemMeta
from streaming_rec.core.requests import Request
from streaming_rec.core.service import Recommender
from streaming_rec_dev.datasets import shop
from streaming_rec_dev.datasets.movielens import Movie, load_movies, load_ratings
from streaming_rec_dev.evaluation import queries
from streaming_rec_dev.evaluation.offline import CatalogVectors
from streaming_rec_dev.evaluation.replay import eval_settings
from streaming_rec_dev.evaluation.split import interactions, leave_last_out


def ask(
    service: Recommender, texts: Sequence[tuple[str, str]], understand: bool, k: int = 10
) -> dict[str, list[str]]:
    """{qid: item ids} for (qid, text) pairs, each from a fresh user."""
    out: dict[str, list[str]] = {}
    requests = [
        Request(qid, f"fresh-{qid}", text=text, k=k, understand=understand) for qid, text in texts
    ]
    for start in range(0, len(requests), 64):
        for answer in service.recommend(requests[start : start + 64]):
            out[answer.request_id] = [s.item_id for s in answer.items]
    return out


def movielens(dataset: str, popularity: bool = True) -> dict[str, Any]:
    """Known-item MRR/recall and attribute precision, parsing off and on."""
    values = eval_settings(dataset, False, {})
    settings = load_settings(**values)
    movies = load_movies(dataset)
    t = time.monotonic()
    catalog = CatalogVectors(settings, movies)
    embed_s = time.monotonic() - t
    service = build_recommender(settings, embedder=catalog.embedder)
    service.apply_items([(m, v, None) for m, v in zip(catalog.metas, catalog.vectors, strict=True)])
    if popularity:
        split = leave_last_out(interactions(load_ratings(dataset)))
        service.observe_popularity((r.item_id, r.event, r.ts) for r in split.train)
    known = queries.known_item_queries(movies, 200)
    attribute = queries.attribute_queries(movies, 50)
    texts = [(q.qid, q.text) for q in known] + [(q.qid, q.text) for q in attribute]
    by_id = {m.item_id: m for m in movies}
    out: dict[str, Any] = {"dataset": dataset, "settings": values, "embed_s": round(embed_s, 1)}
    for name, understand in (("off", False), ("on", True)):
        answers = ask(service, texts, understand)
        out[name] = {
            "known_item": queries.score_known_item(known, answers)["all"],
            "attribute": queries.score_attribute(attribute, answers, by_id),
        }
    return out


def shop_catalog(service: Recommender, products: Sequence[shop.Product]) -> None:
    """Embed and index ``products`` the way a worker does."""
    from streaming_rec.core.catalog import item_text

    texts = [item_text(p.title, p.description, p.categories) for p in products]
    vectors = service.embed_items(texts)
    service.apply_items(
        [
            (
                ItemMeta(p.item_id, p.title, p.categories, p.attributes, p.published_at),
                v,
                None,
            )
            for p, v in zip(products, vectors, strict=True)
        ]
    )


def shop_figures(service: Recommender, now: float, seed: int = 11) -> dict[str, Any]:
    """The generated shop's hard-constraint precision and semantic relevance, off and on."""
    products = shop.catalog(seed=seed, now=now)
    shop_catalog(service, products)
    asked = shop.queries(products, seed=seed, now=now)
    out: dict[str, Any] = {"products": len(products), "queries": len(asked)}
    by_id = {p.item_id: p for p in products}
    for name, understand in (("off", False), ("on", True)):
        answers = ask(service, [(q.qid, q.text) for q in asked], understand)
        out[name] = shop.score(asked, answers, by_id)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-1m", "ml-100k", "none"])
    parser.add_argument("--shop", action="store_true", help="also the generated shop")
    parser.add_argument("--no-popularity", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {}
    if args.dataset != "none":
        report["movielens"] = movielens(args.dataset, not args.no_popularity)
    if args.shop:
        service = build_recommender(load_settings())
        report["shop"] = shop_figures(service, time.time())
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()


__all__ = ["Movie", "ask", "main", "movielens", "shop_figures"]
