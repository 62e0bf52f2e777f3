from collections.abc import Sequence

import numpy as np
import pytest

from streaming_rec.core.user_state import UpdateRule, UserState, unit

pytestmark = pytest.mark.unit

WEIGHTS = {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "skip": -0.3, "dislike": -1.0}


def vec(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def lookup_from(vectors: dict[str, np.ndarray]):
    def lookup(ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        found = [i for i in dict.fromkeys(ids) if i in vectors]
        dim = len(next(iter(vectors.values())))
        return found, np.array([vectors[i] for i in found]).reshape(len(found), dim)

    return lookup


def test_first_click_points_at_the_item() -> None:
    rule = UpdateRule(WEIGHTS)
    state = rule.apply(UserState("u"), "a", "click", 100.0)
    taste = rule.taste(state, lookup_from({"a": vec(1, 0, 0)}))
    assert np.allclose(unit(taste), vec(1, 0, 0))
    assert state.events == 1 and state.seen() == {"a"} and state.feedback_ts == 100.0


def test_newer_events_weigh_more_with_the_event_half_life() -> None:
    rule = UpdateRule(WEIGHTS, half_life_events=1.0, half_life_seconds=1e12)
    state = rule.apply(UserState("u"), "a", "click", 0.0)
    state = rule.apply(state, "b", "click", 0.0)
    taste = rule.taste(state, lookup_from({"a": vec(1, 0), "b": vec(0, 1)}))
    assert np.allclose(taste, [0.5, 1.0], atol=1e-6)  # the older click counts half


def test_a_batch_of_tastes_is_each_user_s_taste_alone() -> None:
    rule = UpdateRule(WEIGHTS, half_life_events=1.0, half_life_seconds=1e12)
    lookup = lookup_from({"a": vec(1, 0), "b": vec(0, 1)})
    two = rule.apply(rule.apply(UserState("u1"), "a", "click", 0.0), "b", "purchase", 1.0)
    unknown = rule.apply(UserState("u2"), "zzz", "click", 0.0)  # no vector for its item
    repeat = rule.apply(rule.apply(UserState("u3"), "b", "click", 0.0), "b", "dislike", 1.0)
    states = [None, two, UserState("empty"), unknown, repeat]
    tastes = rule.tastes(states, lookup)
    assert tastes[0] is None and tastes[2] is None and tastes[3] is None
    assert np.allclose(tastes[1], [0.5, 3.0], atol=1e-6)  # a: 1 x 0.5, b: 3 x 1
    assert np.allclose(tastes[4], [0.0, 0.5 - 1.0], atol=1e-6)  # the same item twice
    for state, taste in zip(states[1:], tastes[1:], strict=True):
        alone = rule.taste(state, lookup)
        assert (alone is None and taste is None) or np.allclose(alone, taste)


def test_time_decay_forgets_old_taste() -> None:
    rule = UpdateRule(WEIGHTS, half_life_events=1e9, half_life_seconds=10.0)
    state = rule.apply(UserState("u"), "a", "click", 0.0)
    state = rule.apply(state, "b", "click", 100.0)  # ten half-lives later
    taste = unit(rule.taste(state, lookup_from({"a": vec(1, 0), "b": vec(0, 1)})))
    assert taste is not None and taste[1] > 0.999


def test_negative_events_push_away_and_are_not_recommended_back() -> None:
    rule = UpdateRule(WEIGHTS)
    lookup = lookup_from({"a": vec(1, 1), "b": vec(1, 0)})
    state = rule.apply(UserState("u"), "a", "click", 0.0)
    before = unit(rule.taste(state, lookup))
    state = rule.apply(state, "b", "dislike", 1.0)
    after = unit(rule.taste(state, lookup))
    assert before is not None and after is not None
    assert float(after @ vec(1, 0)) < float(before @ vec(1, 0))
    assert "b" in state.seen()


def test_taste_uses_the_current_item_vectors() -> None:
    """Refreshed item vectors apply to past clicks at once (no stale sum is stored)."""
    rule = UpdateRule(WEIGHTS)
    state = rule.apply(UserState("u"), "a", "click", 0.0)
    old = unit(rule.taste(state, lookup_from({"a": vec(1, 0)})))
    new = unit(rule.taste(state, lookup_from({"a": vec(0, 1)})))
    assert old is not None and new is not None and np.allclose(new, vec(0, 1))


def test_items_without_vectors_are_skipped() -> None:
    rule = UpdateRule(WEIGHTS)
    state = rule.apply(UserState("u"), "gone", "click", 0.0)
    assert rule.taste(state, lookup_from({"a": vec(1, 0)})) is None
    assert state.events == 1 and state.seen() == {"gone"}


def test_history_is_bounded_and_counts_every_event() -> None:
    rule = UpdateRule(WEIGHTS, max_recent=3)
    state = UserState("u")
    for i, item in enumerate(["a", "b", "c", "a", "d"]):
        state = rule.apply(state, item, "click", float(i))
    assert [e.item_id for e in state.history] == ["c", "a", "d"]
    assert state.feedback_ts == 4.0 and state.events == 5


def test_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        UpdateRule(WEIGHTS).apply(UserState("u"), "a", "love", 0.0)


def test_unit_of_zero_is_none() -> None:
    assert unit(np.zeros(3)) is None and unit(None) is None
