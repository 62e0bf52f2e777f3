"""Between the wire and the core: user states round-trip, and the decoded-state cache."""

import pytest

from streaming_rec.core.user_state import UpdateRule, UserState
from streaming_rec.edge.convert import StateCache, state_from_bytes, state_to_bytes

pytestmark = pytest.mark.unit


def test_a_user_state_round_trips_through_the_table_encoding() -> None:
    rule = UpdateRule({"click": 1.0, "dislike": -1.0})
    state = rule.apply(rule.apply(UserState("u"), "a", "click", 1.0), "b", "dislike", 2.5)
    assert state_from_bytes(state_to_bytes(state), "u") == state
    assert state_from_bytes(None, "u") == UserState("u")


def test_the_state_cache_trusts_only_the_bytes_it_wrote() -> None:
    cache = StateCache(size=2)
    state = UpdateRule({"click": 1.0}).apply(UserState("u"), "a", "click", 1.0)
    raw = cache.store(state)
    assert cache.load(raw, "u") is state
    copy = bytes(bytearray(raw))  # equal bytes from elsewhere (e.g. changelog recovery)
    assert cache.load(copy, "u") == state and cache.load(copy, "u") is not state
    assert cache.load(None, "u") == UserState("u")
