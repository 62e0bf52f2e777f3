"""The quality harness's metrics, split and baselines on tiny hand-made data."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streaming_rec_dev.datasets.movielens import Movie, Rating
from streaming_rec_dev.evaluation import baselines, metrics, queries
from streaming_rec_dev.evaluation.split import event_of, interactions, leave_last_out, validation

pytestmark = pytest.mark.unit


# --- metrics -------------------------------------------------------------------------------
def test_ndcg_of_one_relevant_item_is_one_over_log2_of_rank_plus_one() -> None:
    assert metrics.ndcg_at_k(["a", "b", "c"], {"a"}, 3) == 1.0
    assert metrics.ndcg_at_k(["a", "b", "c"], {"c"}, 3) == pytest.approx(0.5)  # 1/log2(4)
    assert metrics.ndcg_at_k(["a", "b", "c"], {"b"}, 3) == pytest.approx(1 / math.log2(3))
    assert metrics.ndcg_at_k(["a", "b", "c"], {"c"}, 2) == 0.0
    assert metrics.ndcg_at_k(["a", "b"], set(), 2) == 0.0


def test_ndcg_with_two_relevant_items_uses_the_ideal_of_two() -> None:
    ideal = 1 + 1 / math.log2(3)
    assert metrics.ndcg_at_k(["x", "a", "b"], {"a", "b"}, 3) == pytest.approx(
        (1 / math.log2(3) + 0.5) / ideal
    )


def test_recall_hit_and_reciprocal_rank() -> None:
    ranked = ["a", "b", "c", "d"]
    assert metrics.recall_at_k(ranked, {"b", "z"}, 4) == 0.5
    assert metrics.hit_at_k(ranked, {"b", "z"}, 4) == 1.0
    assert metrics.hit_at_k(ranked, {"d"}, 3) == 0.0
    assert metrics.reciprocal_rank_at_k(ranked, {"c"}, 4) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank_at_k(ranked, {"d"}, 3) == 0.0


def test_coverage_counts_distinct_items_in_the_top_k() -> None:
    recs = {"u1": ["a", "b", "c"], "u2": ["b", "d", "e"]}
    assert metrics.coverage(recs, 10, 2) == pytest.approx(3 / 10)  # a, b, d


def test_popularity_percentiles_are_mid_ranks() -> None:
    pct = metrics.popularity_percentiles({"a": 5, "b": 1, "c": 1}, ["a", "b", "c", "d"])
    # counts 5, 1, 1, 0: d below all; b and c tie (1 below, 2 equal); a has 3 below
    assert pct == {"d": 12.5, "b": 50.0, "c": 50.0, "a": 87.5}


def test_summarize_averages_over_held_out_users_and_counts_missing_answers_as_zero() -> None:
    recs = {"u1": ["a", "b"], "u2": ["c", "a"]}
    held = {"u1": "a", "u2": "a", "u3": "a"}
    pct = {"a": 90.0, "b": 50.0, "c": 10.0}
    out = metrics.summarize(recs, held, pct, catalog_size=4, k=2)
    assert out["users"] == 3
    assert out["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert out["recall@2"] == pytest.approx(2 / 3) and out["hit_rate@2"] == out["recall@2"]
    assert out["mrr@2"] == pytest.approx((1 + 0.5) / 3)
    assert out["coverage"] == pytest.approx(3 / 4)
    assert out["popularity_percentile"] == pytest.approx((90 + 50 + 10 + 90) / 4)


# --- split ----------------------------------------------------------------------------------
def test_events_of_ratings() -> None:
    assert [event_of(r) for r in (1, 2, 3, 4, 5)] == [
        "dislike",
        "dislike",
        "skip",
        "click",
        "click",
    ]


def test_leave_last_out_breaks_timestamp_ties_by_file_order() -> None:
    ratings = [
        Rating("u1", "a", 5, 100),
        Rating("u2", "a", 4, 50),
        Rating("u1", "b", 2, 200),
        Rating("u1", "c", 4, 200),  # same second as b, later in the file: the last one
        Rating("u2", "b", 3, 60),
    ]
    split = leave_last_out(interactions(ratings))
    assert split.test["u1"].item_id == "c" and split.test["u2"].item_id == "b"
    assert [(i.user_id, i.item_id) for i in split.train] == [("u2", "a"), ("u1", "a"), ("u1", "b")]
    assert set(split.positive_test()) == {"u1"}  # u2's held-out rating is 3
    assert split.seen() == {"u1": {"a", "b"}, "u2": {"a"}}
    val = validation(split)
    assert val.test["u1"].item_id == "b" and "u2" not in val.test  # u2 has one left


# --- baselines ------------------------------------------------------------------------------
def _data() -> baselines.Interactions:
    rows = [  # items a..d; counts a=3, b=2, c=1, d=0
        Rating("u1", "a", 5, 1),
        Rating("u1", "b", 5, 2),
        Rating("u2", "a", 5, 3),
        Rating("u2", "c", 1, 4),
        Rating("u3", "a", 4, 5),
        Rating("u3", "b", 2, 6),
    ]
    train = leave_last_out(interactions(rows), min_train=10).train  # nothing held out
    return baselines.Interactions.build(train, ["a", "b", "c", "d"], ["u1", "u2", "u3"])


def test_most_popular_excludes_seen_items_and_breaks_ties_by_catalog_order() -> None:
    data = _data()
    assert data.counts.tolist() == [3, 2, 1, 0]
    assert baselines.most_popular(data, k=3) == {
        "u1": ["c", "d"],
        "u2": ["b", "d"],
        "u3": ["c", "d"],
    }


def test_item_similarity_is_the_cosine_of_co_occurrence() -> None:
    sim = baselines.item_similarity(_data().seen)
    # a seen by u1,u2,u3; b by u1,u3; c by u2: cos(a,b) = 2/sqrt(3*2), cos(a,c) = 1/sqrt(3)
    assert sim[0, 1] == pytest.approx(2 / math.sqrt(6))
    assert sim[0, 2] == pytest.approx(1 / math.sqrt(3))
    assert sim[1, 2] == 0.0 and sim[0, 0] == 0.0 and np.all(sim[3] == 0)


def test_item_knn_scores_by_similarity_to_positive_items() -> None:
    data = _data()
    # u1 (positives a, b): c = 1/√3, d = 0. u2 (positive a; c is a dislike and seen):
    # b = 2/√6, d = 0. u3 (positive a; b is seen): c = 1/√3, d = 0.
    assert baselines.item_knn(data, k=2) == {"u1": ["c", "d"], "u2": ["b", "d"], "u3": ["c", "d"]}
    assert baselines.top_k(
        np.array([0.0, 1.0, 1.0, 2.0]), np.array([3]), data.counts, 3
    ).tolist() == [
        1,
        2,
        0,
    ]


# --- generated queries ----------------------------------------------------------------------
def test_titles_lose_year_and_get_their_article_back() -> None:
    assert queries.plain_title("Usual Suspects, The (1995)") == "The Usual Suspects"
    assert queries.plain_title("Toy Story (1995)") == "Toy Story"


def test_misspelling_changes_one_long_word_by_one_letter() -> None:
    text = queries.misspell("The Godfather", random.Random(1))
    assert text.startswith("The ") and text != "The Godfather"
    assert abs(len(text) - len("The Godfather")) <= 1


def test_attribute_precision_needs_genre_and_decade() -> None:
    movies = {
        "h84": Movie("h84", "H (1984)", 1984, ("Horror",)),
        "h95": Movie("h95", "H2 (1995)", 1995, ("Horror",)),
        "c85": Movie("c85", "C (1985)", 1985, ("Comedy",)),
    }
    q = [queries.AttributeQuery("q", "a horror movie from the 80s", ("Horror",), 1980)]
    out = queries.score_attribute(q, {"q": ["h84", "h95", "c85"]}, movies, k=4)
    assert out["precision@4"] == 0.25
    assert out["genre_precision@4"] == 0.5 and out["decade_precision@4"] == 0.5


def test_known_item_scores() -> None:
    q = [
        queries.KnownItemQuery("1", "toy", "a", "partial"),
        queries.KnownItemQuery("2", "godfaher", "b", "misspelled"),
    ]
    out = queries.score_known_item(q, {"1": ["x", "a"], "2": ["y"]}, k=10)
    assert out["all"]["mrr@10"] == 0.25 and out["partial"]["recall@10"] == 1.0
    assert out["misspelled"]["recall@10"] == 0.0
