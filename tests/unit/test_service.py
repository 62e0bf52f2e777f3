"""The recommend service with a tiny deterministic encoder (the real model is exercised by
the integration tests): strategies, filters, exclusions, two-part vectors, popularity."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from streaming_rec.core.catalog import ItemMeta
from streaming_rec.core.filters import ItemFilter
from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.index import ExactIndex
from streaming_rec.core.popularity import Popularity
from streaming_rec.core.ranker import RankingWeights
from streaming_rec.core.requests import Request
from streaming_rec.core.service import Recommender
from streaming_rec.core.user_state import UpdateRule, UserState

pytestmark = pytest.mark.unit

WORDS = ["space", "love", "horse", "ghost"]


class WordEmbedder:
    """One axis per known word: a stand-in encoder whose geometry the test can reason about."""

    name = "words"
    dim = len(WORDS)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for col, word in enumerate(WORDS):
                out[row, col] = text.lower().count(word)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out / norms


def service(
    factor_dim: int = 0, learn_rate: float = 0.0, explore_share: float = 0.0, **weights: float
) -> Recommender:
    embedder = WordEmbedder()
    rec = Recommender(
        embedder,
        ExactIndex(embedder.dim + factor_dim),
        RankingWeights(**{"prior_weight": 0.0, **weights}),
        UpdateRule({"click": 1.0, "dislike": -1.0}),
        Popularity(3600.0, rerank_every_s=0),
        factor_dim,
        learn_rate=learn_rate,
        explore_share=explore_share,
    )
    items = {
        "rocket": ("space", ["Sci-Fi"]),
        "stars": ("space space love", ["Sci-Fi", "Romance"]),
        "kiss": ("love", ["Romance"]),
        "ranch": ("horse", ["Western"]),
        "haunt": ("ghost", ["Horror"]),
    }
    texts = [text for text, _ in items.values()]
    for (item_id, (_, cats)), vector in zip(items.items(), embedder.encode(texts), strict=True):
        rec.apply_items([(ItemMeta(item_id, item_id.title(), tuple(cats)), vector, None)])
    return rec


def ids(answer) -> list[str]:
    return [s.item_id for s in answer.items]


def test_a_text_query_ranks_by_meaning_and_reports_its_stages() -> None:
    [answer] = service().recommend([Request("r1", "u", text="space", k=2)])
    assert answer.strategy == "query" and ids(answer) == ["rocket", "stars"]
    assert answer.items[0].title == "Rocket" and answer.index_size == 5
    assert set(answer.timings) == {"queue_ms", "embed_ms", "search_ms", "rank_ms"}


def test_filters_and_exclusions() -> None:
    rec = service()
    [answer] = rec.recommend([Request("r", "u", "space", k=5, categories=frozenset({"romance"}))])
    assert ids(answer) == ["stars", "kiss"]
    [answer] = rec.recommend([Request("r", "u", "space", k=5, exclude=frozenset({"rocket"}))])
    assert "rocket" not in ids(answer)


def test_a_users_clicks_personalise_an_empty_query_and_are_not_shown_again() -> None:
    rec = service()
    user = rec.apply_feedback(UserState("u"), "ranch", "click", 1.0)
    [answer] = rec.recommend([Request("r", "u", "", k=5, user=user)])
    assert answer.strategy == "personal" and "ranch" not in ids(answer)
    assert answer.user_events == 1 and answer.user_feedback_ts == 1.0


def test_a_new_user_with_no_text_gets_popular_items() -> None:
    rec = service()
    rec.observe_popularity(
        [("haunt", "click", 1.0), ("haunt", "click", 2.0), ("kiss", "click", 2.0)]
    )
    [answer] = rec.recommend([Request("r", "u", "", k=3)])
    assert answer.strategy == "popular" and ids(answer)[:2] == ["haunt", "kiss"]
    assert len(answer.items) == 3  # filled from the catalog when popularity runs out


def test_collaborative_factors_link_items_that_content_does_not() -> None:
    rec = service(factor_dim=2, beta=1.0, gamma=0.1)
    link = np.array([1.0, 0.0], dtype=np.float32)
    meta = {i: rec.catalog.get(i) for i in ("ranch", "haunt")}
    content = dict(zip(["ranch", "haunt"], rec.item_parts(["ranch", "haunt"])[1], strict=True))
    for item_id in ("ranch", "haunt"):
        rec.apply_items([(meta[item_id], content[item_id][:4], link)])
    user = rec.apply_feedback(UserState("u"), "ranch", "click", 1.0)
    [answer] = rec.recommend([Request("r", "u", "", k=1, user=user)])
    assert ids(answer) == ["haunt"]  # a horse and a ghost: linked only by who watched them


def test_deleted_items_are_never_returned() -> None:
    rec = service()
    rec.apply_items([], deletes=["rocket"])
    [answer] = rec.recommend([Request("r", "u", "space", k=5)])
    assert "rocket" not in ids(answer) and answer.index_size == 4


def test_index_dimension_must_match_encoder_and_factors() -> None:
    with pytest.raises(ValueError, match="index dim"):
        Recommender(
            WordEmbedder(),
            ExactIndex(4),
            RankingWeights(),
            UpdateRule({"click": 1.0}),
            Popularity(1.0),
            factor_dim=2,
        )


def test_clicks_on_an_answer_teach_the_blend_the_next_answers_use() -> None:
    rec = service(learn_rate=0.5)
    user = rec.apply_feedback(UserState("u"), "ranch", "click", 1.0)
    [first] = rec.recommend([Request("r1", "u", text="space", k=4, user=user)])
    assert first.weights == {"alpha": 1.0, "gamma": 0.3, "beta": 1.0, "prior_weight": 0.0}
    # the user skips what matches the text and clicks the last item shown
    assert ids(first)[0] == "rocket"
    pairs = rec.learn([("r1", ids(first)[-1]), ("unknown-request", "rocket")])
    assert pairs == len(first.items) - 1
    [second] = rec.recommend([Request("r2", "u", text="space", k=4, user=user)])
    assert second.weights["alpha"] < first.weights["alpha"] and second.learned_pairs == pairs


def test_answers_log_exploration_propensities() -> None:
    rec = service(explore_share=1.0)
    [answer] = rec.recommend([Request("r1", "u", text="space love", k=5)])
    assert [s.explored for s in answer.items[:3]] == [False] * 3
    assert all(0.0 < s.propensity <= 1.0 for s in answer.items)


def test_a_request_encoded_elsewhere_is_ranked_by_its_vector_not_re_encoded() -> None:
    rec = service()
    ghost = rec.embed_queries(["ghost"])[0]
    calls: list[Sequence[str]] = []
    encode = rec.embedder.encode

    def counting(texts: Sequence[str]) -> np.ndarray:
        calls.append(list(texts))
        return encode(texts)

    rec.embedder.encode = counting  # type: ignore[method-assign]
    # the text says "space" but the vector (from an embed-only worker) says "ghost"
    embedded = Request("r1", "u", "space", k=1, vector=ghost, embed_ms=4.5)
    plain = Request("r2", "u", "love", k=1)
    first, second = rec.recommend([embedded, plain])
    assert ids(first) == ["haunt"] and first.timings["embed_ms"] == 4.5
    assert ids(second) == ["kiss"]
    assert calls == [["love"]]  # only the plain request's text was encoded


class CountingHnsw(HnswIndex):
    """HnswIndex that counts its batched and its single searches."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, max_elements=400)
        self.batched = self.single = 0

    def search_many(self, queries: Any, k: int) -> list[Any]:
        self.batched += 1
        return super().search_many(queries, k)

    def search(self, query: Any, k: int, allow: Any = None) -> list[Any]:
        self.single += 1
        return super().search(query, k, allow)


def test_a_batch_answers_each_request_as_it_would_alone() -> None:
    rng = np.random.default_rng(5)
    index = CountingHnsw(8)
    rec = Recommender(
        WordEmbedder(),
        index,
        RankingWeights(prior_weight=0.0, candidates=50),
        UpdateRule({"click": 1.0, "dislike": -1.0}),
        Popularity(3600.0, rerank_every_s=0),
        4,
        learn_rate=0.0,
        explore_share=0.0,
    )
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rec.apply_items([(ItemMeta(f"i{j}", f"I{j}", ()), v[:4], v[4:]) for j, v in enumerate(vectors)])
    rule = UpdateRule({"click": 1.0, "dislike": -1.0})
    requests = []
    for j in range(12):
        user = None
        if j % 3 == 0:  # some users have a history (their seen items widen the search)
            user = UserState(f"u{j}")
            for t, item in enumerate(rng.choice(300, size=5, replace=False).tolist()):
                user = rule.apply(user, f"i{item}", "click", float(t))
        query = rng.normal(size=4).astype(np.float32)
        # two requests exclude items, one as the request's own, one in its filter's ids
        skip = frozenset({"i1", "i2", "i3"}) if j in (1, 2) else frozenset()
        requests.append(
            Request(
                f"r{j}",
                f"u{j}",
                "x",
                k=10,
                user=user,
                vector=query / np.linalg.norm(query),
                exclude=skip if j == 1 else frozenset(),
                filter=ItemFilter(exclude_ids=skip) if j == 2 else ItemFilter(),
            )
        )
    batch = rec.recommend(requests)
    # new users (50 wide), users with 5 seen items (55 wide), 3 excluded (53 wide)
    assert index.batched == 3
    alone = [rec.recommend([r])[0] for r in requests]
    for together, single in zip(batch, alone, strict=True):
        assert [(s.item_id, round(s.score, 6)) for s in together.items] == [
            (s.item_id, round(s.score, 6)) for s in single.items
        ]
