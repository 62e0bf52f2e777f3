"""The online blend learner and exploration: they learn what clicks say, and only that."""

from random import Random

import numpy as np
import pytest

from streaming_rec.core.learner import SPAN, BlendLearner, Impression, Impressions
from streaming_rec.core.ranker import EXPLORE_FROM, RankingWeights, explore
from streaming_rec.core.signals import NAMES as PARTS

pytestmark = pytest.mark.unit

START = RankingWeights(alpha=1.0, gamma=0.3, beta=1.0, prior_weight=0.05)


def simulate(learner: BlendLearner, hidden: np.ndarray, n: int, seed: int) -> None:
    """Users click the shown item the hidden blend scores best (with a little noise)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        parts = rng.uniform(-1, 1, (10, len(PARTS)))
        parts[:, 3] = rng.uniform(0, 1, 10)
        clicked = int(np.argmax(parts @ hidden + rng.normal(0, 0.05, 10)))
        ids = tuple(f"i{j}" for j in range(10))
        learner.learn(Impression(ids, parts), [ids[clicked]])


def top1_agreement(weights: RankingWeights, hidden: np.ndarray, seed: int) -> float:
    w = np.array([getattr(weights, p) for p in PARTS])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(500):
        parts = rng.uniform(-1, 1, (10, len(PARTS)))
        hits += int(np.argmax(parts @ w) == np.argmax(parts @ hidden))
    return hits / 500


def test_clicks_teach_the_blend_which_part_predicts_them() -> None:
    hidden = np.array([0.5, 0.0, 3.0, 0.0])  # these users follow their collaborative taste
    learner = BlendLearner(START, rate=0.05)
    before = top1_agreement(learner.weights, hidden, seed=7)
    simulate(learner, hidden, 2000, seed=1)
    after = learner.weights
    assert after.beta / after.alpha > 2 * START.beta / START.alpha
    assert top1_agreement(after, hidden, seed=7) > before + 0.1
    assert learner.labels == 2000 and learner.updates == 2000 * 9
    assert after.candidates == START.candidates and after.mmr_lambda == START.mmr_lambda


def test_a_zero_rate_keeps_the_configured_blend_and_weights_stay_in_bounds() -> None:
    fixed = BlendLearner(START, rate=0.0)
    simulate(fixed, np.array([0.0, 0.0, 5.0, 0.0]), 50, seed=2)
    assert fixed.weights == START and fixed.updates == 0
    wild = BlendLearner(START, rate=5.0)
    simulate(wild, np.array([0.0, 0.0, 5.0, -5.0]), 200, seed=3)
    for p in PARTS:  # within [w0 / SPAN, w0 * SPAN]: no part is switched off or takes over
        start = getattr(START, p)
        assert start / SPAN <= getattr(wild.weights, p) <= max(start * SPAN, 0.5)
    # clicks that shun popular items push the prior down to its floor, not to zero
    assert wild.weights.prior_weight == pytest.approx(START.prior_weight / SPAN)


def test_feedback_on_an_item_that_was_not_shown_teaches_nothing() -> None:
    learner = BlendLearner(START, rate=0.1)
    impression = Impression(("a", "b"), np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]]))
    assert learner.learn(impression, ["zzz"]) == 0
    assert learner.weights == START
    assert learner.learn(impression, ["b", "b"]) == 1  # one pair: b over a
    assert learner.weights.beta > START.beta and learner.weights.alpha < START.alpha


def test_impressions_forget_the_oldest_first() -> None:
    kept = Impressions(size=2)
    for r in ("r1", "r2", "r3"):
        kept.put(r, Impression((r,), np.zeros((1, len(PARTS)))))
    assert len(kept) == 2 and kept.get("r1") is None and kept.get("r3") is not None


RANKED = [(f"top{i}", 1.0 - i / 100) for i in range(10)]
POOL = [(f"new{i}", 0.1) for i in range(40)]


def test_no_exploration_share_shows_the_ranking_as_is() -> None:
    asked = []
    slots = explore(RANKED, lambda: asked.append(1) or POOL, 0.0, Random(0))
    assert not asked  # the pool is built only when a slot explores
    assert [(s.item_id, s.score) for s in slots] == RANKED
    assert all(not s.explored and s.propensity == 1.0 for s in slots)


def test_exploration_fills_later_slots_from_the_pool_and_logs_propensities() -> None:
    slots = explore(RANKED, POOL, 1.0, Random(0))
    assert [s.item_id for s in slots[:EXPLORE_FROM]] == [i for i, _ in RANKED[:EXPLORE_FROM]]
    later = slots[EXPLORE_FROM:]
    assert all(s.explored and s.item_id.startswith("new") for s in later)
    assert len({s.item_id for s in slots}) == len(slots)  # no duplicates
    # drawn without replacement: 1/40, 1/39, ... for the successive explored slots
    assert [round(s.propensity, 6) for s in later] == [
        round(1 / (40 - j), 6) for j in range(len(later))
    ]


def test_exploration_share_is_the_rate_of_explored_slots_and_is_reproducible() -> None:
    rng = Random(42)
    runs = [explore(RANKED, POOL, 0.2, rng) for _ in range(2000)]
    eligible = [s for slots in runs for s in slots[EXPLORE_FROM:]]
    rate = sum(s.explored for s in eligible) / len(eligible)
    assert 0.18 < rate < 0.22
    assert all(s.propensity == pytest.approx(0.8) for s in eligible if not s.explored)
    again = explore(RANKED, POOL, 0.2, Random(5))
    assert again == explore(RANKED, POOL, 0.2, Random(5))


def test_a_restored_learner_goes_on_from_the_saved_blend() -> None:
    learner = BlendLearner(START, rate=0.05)
    simulate(learner, np.array([0.5, 0.0, 3.0, 0.0]), 100, seed=4)
    saved = {**learner.as_dict(), "learned_pairs": learner.updates}
    again = BlendLearner(START, rate=0.05)
    again.restore(saved)
    assert again.as_dict() == learner.as_dict() and again.updates == learner.updates
