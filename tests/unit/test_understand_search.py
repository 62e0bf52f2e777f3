"""Filters inside the search (no model, no broker): the numpy masks agree with the plain
predicate, a selective filter still fills k on both paths (exact scan and filtered HNSW),
an empty match says so, recency ranks by time, parsing can be turned off, client filters
win, and the wire's filters round-trip through the core's."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from streaming_rec.core import retrieve
from streaming_rec.core.catalog import Catalog, ItemMeta
from streaming_rec.core.filters import Condition, ItemFilter
from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.index import ExactIndex
from streaming_rec.core.popularity import Popularity
from streaming_rec.core.ranker import RankingWeights
from streaming_rec.core.requests import Request
from streaming_rec.core.service import Recommender
from streaming_rec.core.user_state import UpdateRule
from streaming_rec.flows.understood import filter_from_wire, filter_to_wire
from streaming_rec.schemas import Filters

pytestmark = pytest.mark.unit
DIM = 16
NOW = 1_780_000_000.0


class HashEmbedder:
    """A stand-in encoder: each word adds a fixed random direction."""

    name = "hash"
    dim = DIM

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row] += np.random.default_rng(abs(hash(word)) % 2**32).standard_normal(DIM)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out / norms


def shop_service(
    n: int = 800, exact_scan_max: int = 2000, recency_weight: float = 0.3
) -> Recommender:
    rng = random.Random(3)
    embedder = HashEmbedder()
    rec = Recommender(
        embedder,
        HnswIndex(DIM, max_elements=n),
        RankingWeights(prior_weight=0.0, candidates=50),
        UpdateRule({"click": 1.0}),
        Popularity(3600.0, rerank_every_s=0),
        0,
        exact_scan_max=exact_scan_max,
        recency_weight=recency_weight,
    )
    metas = []
    for i in range(n):
        category = ("Laptops", "Phones", "Books", "Kitchen")[i % 4]
        price = float(rng.randint(10, 3000))
        attributes = {"price": price, "discount": rng.choice([0.0, 0.0, 0.2]), "rare": i < 15}
        metas.append(ItemMeta(f"i{i}", f"item {i}", (category,), attributes, NOW - i * 3600.0))
    vectors = embedder.encode([f"{m.categories[0]} thing {m.item_id}" for m in metas])
    rec.apply_items([(m, v, None) for m, v in zip(metas, vectors, strict=True)])
    return rec


def test_masks_agree_with_the_plain_predicate() -> None:
    rng = random.Random(1)
    catalog = Catalog()
    for i in range(300):
        attrs: dict[str, object] = {"price": rng.randint(0, 100), "ok": rng.random() < 0.5}
        if rng.random() < 0.7:
            attrs["brand"] = rng.choice(["Acme", "acme", "Zed", "Yo"])
        cats = tuple(rng.sample(["A", "B", "C", "D"], rng.randint(0, 2)))
        when = None if rng.random() < 0.2 else float(rng.randint(0, 1000))
        catalog.put(ItemMeta(f"x{i}", "t", cats, attrs, when))
    for i in range(0, 300, 7):  # replaced and removed items leave no trace in the masks
        catalog.put(ItemMeta(f"x{i}", "t", ("D",), {"price": 5, "ok": True}, 1.0))
    catalog.remove([f"x{i}" for i in range(0, 300, 11)])
    filters = [
        ItemFilter(categories=(frozenset({"a", "b"}),), exclude_categories=frozenset({"c"})),
        ItemFilter(attributes=(Condition("price", "gte", 20), Condition("price", "lt", 60))),
        ItemFilter(attributes=(Condition("brand", "eq", "ACME"), Condition("ok", "eq", True))),
        ItemFilter(attributes=(Condition("brand", "none_of", values=("zed", "yo")),)),
        ItemFilter(attributes=(Condition("brand", "one_of", values=("Yo", 5)),)),
        ItemFilter(published_after=100.0, published_before=500.0),
        ItemFilter(categories=(frozenset({"a"}), frozenset({"b"}))),
    ]
    for flt in filters:
        mask = catalog.facets.mask(flt)
        got = set(catalog.facets.ids(mask))
        want = {
            i
            for i in catalog.ids()
            if (m := catalog.get(i)) and flt.matches(m.categories, m.attributes, m.published_at)
        }
        assert got == want, flt


@pytest.mark.parametrize("exact_scan_max", [0, 2000])  # filtered HNSW, then the exact scan
def test_a_selective_filter_still_fills_k(exact_scan_max: int) -> None:
    rec = shop_service(exact_scan_max=exact_scan_max)
    client = ItemFilter(attributes=(Condition("rare", "eq", True),))  # 15 of 800 items
    [answer] = rec.recommend([Request("r", "u", text="some thing", k=10, filter=client)])
    assert answer.matching == 15 and len(answer.items) == 10
    assert all(int(s.item_id[1:]) < 15 for s in answer.items)


def test_both_paths_return_the_same_items_for_a_selective_filter() -> None:
    requests = [Request("r", "u", text="laptops under $200 thing", k=10)]
    exact = shop_service(exact_scan_max=2000).recommend(requests)[0]
    approx = shop_service(exact_scan_max=0).recommend(requests)[0]
    assert exact.matching == approx.matching and exact.matching and exact.matching < 800
    assert [s.item_id for s in exact.items] == [s.item_id for s in approx.items]


def test_the_exact_scan_drops_excluded_ids_as_the_filtered_search_does() -> None:
    plain = [Request("r", "u", text="laptops under $200 thing", k=10)]
    first = [s.item_id for s in shop_service(exact_scan_max=2000).recommend(plain)[0].items]
    exclude = frozenset(first[:3])
    requests = [Request("r", "u", text="laptops under $200 thing", k=10, exclude=exclude)]
    exact = shop_service(exact_scan_max=2000).recommend(requests)[0]
    approx = shop_service(exact_scan_max=0).recommend(requests)[0]
    got = [s.item_id for s in exact.items]
    assert not exclude & set(got) and got[: len(first) - 3] == first[3:]
    assert got == [s.item_id for s in approx.items]


def test_parsed_filters_hold_and_the_reply_shows_them() -> None:
    rec = shop_service()
    [answer] = rec.recommend([Request("r", "u", text="discounted laptops under $1000", k=10)])
    assert answer.understood is not None
    assert {f.label for f in answer.understood.facets} == {"discount", "Laptops", "price ≤ 1000"}
    for s in answer.items:
        meta = rec.catalog.get(s.item_id)
        assert meta is not None and meta.categories == ("Laptops",)
        assert meta.attributes["price"] <= 1000 and meta.attributes["discount"] > 0


def test_no_match_is_an_empty_answer_that_says_so() -> None:
    rec = shop_service()
    [answer] = rec.recommend([Request("r", "u", text="books over $5000", k=10)])
    assert answer.items == [] and answer.matching == 0 and answer.understood is not None


def test_understand_off_and_client_filters_win() -> None:
    rec = shop_service()
    [off] = rec.recommend([Request("r", "u", text="laptops under $100", understand=False)])
    assert off.understood is None and off.matching is None
    client = ItemFilter(attributes=(Condition("price", "gte", 2500),))
    [mine] = rec.recommend(
        [
            Request(
                "r2",
                "u",
                text="laptops under $100",
                categories=frozenset({"phones"}),
                filter=client,
            )
        ]
    )
    assert mine.items
    for s in mine.items:
        meta = rec.catalog.get(s.item_id)
        assert meta is not None and meta.categories == ("Phones",)
        assert meta.attributes["price"] >= 2500


def test_recency_ranks_by_time() -> None:
    rec = shop_service(recency_weight=2.0)  # the stand-in encoder's scores spread widely
    [latest] = rec.recommend([Request("r", "u", text="the latest books", k=10)])
    assert latest.understood is not None and latest.understood.recency
    times = [rec.catalog.get(s.item_id).published_at for s in latest.items]  # type: ignore[union-attr]
    books = sorted(
        (
            m.published_at
            for i in rec.catalog.ids()
            if (m := rec.catalog.get(i)) and "Books" in m.categories
        ),
        reverse=True,
    )
    assert np.mean(times) >= books[len(books) // 5]  # from the newest fifth on average
    [only] = rec.recommend([Request("r2", "u", text="最新", k=5)])  # nothing left to embed
    assert only.strategy == "popular" and [s.item_id for s in only.items] == [
        f"i{i}" for i in range(5)
    ]


def test_wire_filters_round_trip_through_the_core() -> None:
    wire = Filters(
        categories=[],
        category_groups=[["Laptops", "Phones"], ["Refurbished"]],
        exclude_categories=["Gaming"],
        attributes={"price": {"gte": 100, "lte": 1000}, "brand": {"one_of": ["Dell"]}},
        published_after=1_700_000_000,
    )
    core = filter_from_wire(wire)
    assert core.categories == (frozenset({"laptops", "phones"}), frozenset({"refurbished"}))
    assert Condition("brand", "one_of", values=("Dell",)) in core.attributes
    back = filter_to_wire(core)
    assert filter_from_wire(back) == core


class CountingIndex(ExactIndex):
    """ExactIndex that counts how often it is searched with a filter callback."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.filtered_searches = 0

    def search(self, query: Any, k: int, allow: Any = None) -> list[Any]:
        self.filtered_searches += allow is not None
        return super().search(query, k, allow)


def test_an_unfiltered_search_post_filters_and_falls_back_when_too_many_fail() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    index = CountingIndex(8)
    ids = [f"i{j}" for j in range(300)]
    index.upsert(ids, vectors)
    query = rng.normal(size=8).astype(np.float32)
    best = [h.item_id for h in index.search(query, 300)]
    excluded = frozenset(best[:15])

    def allow(item_id: str) -> bool:
        return item_id not in excluded

    index.filtered_searches = 0
    hits = retrieve.post_filtered(index, query, 20, allow, margin=len(excluded))
    assert [h.item_id for h in hits] == best[15:35]  # what the filtered search returns
    assert index.filtered_searches == 0  # no callback per visited node
    short = retrieve.post_filtered(index, query, 20, allow, margin=5)  # margin too small
    assert [h.item_id for h in short] == best[15:35]
    assert index.filtered_searches == 1
    few = retrieve.post_filtered(index, query, 10, allow, margin=len(excluded))  # margin > n
    assert [h.item_id for h in few] == best[15:25]
    assert index.filtered_searches == 2  # straight to the filtered search
