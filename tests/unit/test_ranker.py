import numpy as np
import pytest

from streaming_rec.core.popularity import Popularity
from streaming_rec.core.ranker import RankingWeights, fuse, rerank

pytestmark = pytest.mark.unit


def test_fuse_builds_one_search_vector_from_both_parts() -> None:
    w = RankingWeights(alpha=1.0, gamma=0.5, beta=2.0)
    x, u_c, u_f = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    vector, strategy = fuse(x, u_c, u_f, w, content_dim=2, factor_dim=3)
    assert strategy == "query+personal" and np.allclose(vector, [1.0, 0.5, 2.0, 0.0, 0.0])
    vector, strategy = fuse(x, None, None, w, content_dim=2, factor_dim=3)
    assert strategy == "query" and np.allclose(vector, [1.0, 0.0, 0.0, 0.0, 0.0])
    vector, strategy = fuse(None, None, u_f, w, content_dim=2, factor_dim=3)
    assert strategy == "personal" and np.allclose(vector, [0.0, 0.0, 2.0, 0.0, 0.0])
    vector, strategy = fuse(None, u_c, None, w, content_dim=2)
    assert strategy == "personal" and np.allclose(vector, [0.0, 0.5])
    assert fuse(None, None, None, w, content_dim=2) == (None, "popular")


def test_prior_reorders_close_candidates() -> None:
    popular = Popularity(3600.0, rerank_every_s=0)
    for _ in range(50):
        popular.observe("b", 1.0, 0.0)
    ranked = rerank(
        [("a", 0.80), ("b", 0.79)], None, popular.priors, RankingWeights(prior_weight=0.1), 2
    )
    assert [i for i, _ in ranked] == ["b", "a"]
    no_prior = rerank(
        [("a", 0.80), ("b", 0.79)], None, popular.priors, RankingWeights(prior_weight=0), 2
    )
    assert [i for i, _ in no_prior] == ["a", "b"]


def test_mmr_skips_near_duplicates() -> None:
    vectors = np.array([[1.0, 0.0], [0.999, 0.045], [0.0, 1.0]], dtype=np.float32)
    candidates = [("a", 0.9), ("a-copy", 0.89), ("other", 0.5)]
    w = RankingWeights(prior_weight=0, mmr_lambda=0.5)
    ranked = rerank(candidates, vectors, lambda ids: np.zeros(len(ids)), w, 2)
    assert [i for i, _ in ranked] == ["a", "other"]
    plain = rerank(
        candidates, vectors, lambda ids: np.zeros(len(ids)), RankingWeights(prior_weight=0), 2
    )
    assert [i for i, _ in plain] == ["a", "a-copy"]


def test_popularity_decays_and_ignores_negative_events() -> None:
    popular = Popularity(10.0, rerank_every_s=0)
    popular.observe("old", 8.0, 0.0)
    popular.observe("new", 1.0, 40.0)  # four half-lives later: old is worth 8/16 = 0.5
    popular.observe("new", -5.0, 41.0)
    assert [i for i, _ in popular.top(2, lambda _: True)] == ["new", "old"]
    assert popular.prior("new") == pytest.approx(1.0)
    assert 0 < popular.prior("old") < 1 and popular.prior("never") == 0.0
    assert [i for i, _ in popular.top(5, lambda i: i != "new")] == ["old"]
    ids = ["new", "never", "old"]
    assert popular.priors(ids).tolist() == pytest.approx([popular.prior(i) for i in ids])
    assert Popularity(10.0).priors(ids).tolist() == [0.0, 0.0, 0.0]  # nothing observed yet


def test_popularity_survives_many_half_lives() -> None:
    popular = Popularity(1.0, rerank_every_s=0)
    popular.observe("a", 1.0, 0.0)
    popular.observe("b", 1.0, 10_000.0)  # far past the rebase point
    assert [i for i, _ in popular.top(1, lambda _: True)] == ["b"]
    assert np.isfinite(popular.prior("a"))


def test_mix_profiles_blends_the_sequence_with_the_long_term_profile() -> None:
    from streaming_rec.core.ranker import mix_profiles

    seq = np.array([1.0, 0.0], dtype=np.float32)
    decayed = np.array([0.0, 1.0], dtype=np.float32)
    assert mix_profiles(seq, decayed, 1.0) is seq
    assert mix_profiles(seq, None, 0.5) is seq  # no decayed average yet: the sequence alone
    assert mix_profiles(seq, decayed, 0.0) is decayed
    half = mix_profiles(seq, decayed, 0.5)
    np.testing.assert_allclose(half, [2**-0.5, 2**-0.5], rtol=1e-6)
    assert half.dtype == np.float32
    quarter = mix_profiles(seq, decayed, 0.25)
    assert quarter[1] > quarter[0] > 0 and abs(float(np.linalg.norm(quarter)) - 1.0) < 1e-6
    opposite = mix_profiles(seq, -seq, 0.5)  # they cancel: keep the sequence's
    assert opposite is seq
