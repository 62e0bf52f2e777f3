import numpy as np
import pytest

from streaming_rec.core.user_state import UpdateRule, UserState

pytestmark = pytest.mark.unit

WEIGHTS = {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "skip": -0.3, "dislike": -1.0}


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_first_click_points_at_the_item() -> None:
    rule = UpdateRule(WEIGHTS)
    state = rule.apply(UserState("u"), "a", "click", 100.0, unit(1, 0, 0))
    assert np.allclose(state.direction(), unit(1, 0, 0))
    assert state.events == 1 and state.recent == ("a",) and state.feedback_ts == 100.0


def test_newer_events_weigh_more_with_the_event_half_life() -> None:
    rule = UpdateRule(WEIGHTS, half_life_events=1.0, half_life_seconds=1e12)
    state = rule.apply(UserState("u"), "a", "click", 0.0, unit(1, 0))
    state = rule.apply(state, "b", "click", 0.0, unit(0, 1))
    # the older click counts half as much as the newer one
    assert state.taste is not None
    assert np.allclose(state.taste, [0.5, 1.0], atol=1e-6)


def test_time_decay_forgets_old_taste() -> None:
    rule = UpdateRule(WEIGHTS, half_life_events=1e9, half_life_seconds=10.0)
    state = rule.apply(UserState("u"), "a", "click", 0.0, unit(1, 0))
    state = rule.apply(state, "b", "click", 100.0, unit(0, 1))  # ten half-lives later
    direction = state.direction()
    assert direction is not None and direction[1] > 0.999


def test_negative_events_push_away() -> None:
    rule = UpdateRule(WEIGHTS)
    state = rule.apply(UserState("u"), "a", "click", 0.0, unit(1, 1))
    before = state.direction()
    state = rule.apply(state, "b", "dislike", 1.0, unit(1, 0))
    after = state.direction()
    assert before is not None and after is not None
    assert float(after @ unit(1, 0)) < float(before @ unit(1, 0))
    assert "b" in state.recent  # disliked items are not recommended back either


def test_a_lone_dislike_gives_a_negative_taste_not_a_crash() -> None:
    state = UpdateRule(WEIGHTS).apply(UserState("u"), "a", "dislike", 0.0, unit(1, 0))
    direction = state.direction()
    assert direction is not None and direction[0] < 0


def test_unknown_vector_keeps_taste_but_records_the_event() -> None:
    rule = UpdateRule(WEIGHTS)
    state = rule.apply(UserState("u"), "a", "click", 0.0, None)
    assert state.direction() is None and state.events == 1 and state.recent == ("a",)


def test_recent_is_bounded_and_moves_repeats_to_the_end() -> None:
    rule = UpdateRule(WEIGHTS, max_recent=3)
    state = UserState("u")
    for i, item in enumerate(["a", "b", "c", "a", "d"]):
        state = rule.apply(state, item, "click", float(i), unit(1, 0))
    assert state.recent == ("c", "a", "d")
    assert state.feedback_ts == 4.0 and state.events == 5
