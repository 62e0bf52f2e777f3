"""Between the wire and the core: user states round-trip, the decoded-state cache, and
dead letters that fit in one Kafka message."""

import base64
import dataclasses

import pytest

from streaming_rec import codec
from streaming_rec.core.offsets import PartitionOffset
from streaming_rec.core.user_state import UpdateRule, UserState
from streaming_rec.errors import DecodeError
from streaming_rec.flows.convert import (
    DEAD_LETTER_MAX_KEY,
    DEAD_LETTER_MAX_VALUE,
    StateCache,
    dead_letter,
    dead_letter_key,
    state_from_bytes,
    state_to_bytes,
)

pytestmark = pytest.mark.unit


def test_a_user_state_round_trips_through_the_table_encoding() -> None:
    rule = UpdateRule({"click": 1.0, "dislike": -1.0})
    state = rule.apply(rule.apply(UserState("u"), "a", "click", 1.0), "b", "dislike", 2.5)
    assert state_from_bytes(state_to_bytes(state), "u") == state
    assert state_from_bytes(None, "u") == UserState("u")


def test_a_user_state_keeps_the_offset_of_its_last_event_and_knows_a_redelivery() -> None:
    rule = UpdateRule({"click": 1.0})
    state = dataclasses.replace(
        rule.apply(UserState("u"), "a", "click", 1.0), applied=PartitionOffset(2, 41)
    )
    restored = state_from_bytes(state_to_bytes(state), "u")
    assert restored.applied == (2, 41)
    assert rule.apply(restored, "b", "click", 2.0).applied == (2, 41)  # the flow moves it
    assert restored.already_applied(2, 41) and restored.already_applied(2, 7)
    assert not restored.already_applied(2, 42)
    assert not restored.already_applied(3, 7)  # another partition (partitions were added)
    assert not UserState("u").already_applied(0, 0)


def test_the_state_cache_trusts_only_the_bytes_it_wrote() -> None:
    cache = StateCache(size=2)
    state = UpdateRule({"click": 1.0}).apply(UserState("u"), "a", "click", 1.0)
    raw = cache.store(state)
    assert cache.load(raw, "u") is state
    copy = bytes(bytearray(raw))  # equal bytes from elsewhere (e.g. changelog recovery)
    assert cache.load(copy, "u") == state and cache.load(copy, "u") is not state
    assert cache.load(None, "u") == UserState("u")


def test_a_dead_letter_keeps_the_original_bytes() -> None:
    error = DecodeError("query.k", "must be ≥ 1", 0)
    letter = dead_letter("srec.queries", 3, 7, b"u1", b'{"k": 0}', error, "w")
    assert base64.b64decode(letter.key or "") == b"u1"
    assert base64.b64decode(letter.value or "") == b'{"k": 0}'
    assert (letter.field, letter.reason) == ("query.k", "query.k: must be ≥ 1, got 0")
    assert not letter.truncated and letter.value_size == 8
    none = dead_letter("srec.queries", 0, 0, None, None, error, "w")
    assert none.key is None and none.value is None and none.value_size is None


def test_a_dead_letter_of_a_huge_message_fits_faust_s_producer_limit() -> None:
    key, value = b"k" * 1_000_000, b"v" * 1_048_000
    letter = dead_letter("srec.items", 0, 1, key, value, DecodeError("item", "bad"), "w")
    assert letter.truncated and letter.value_size == len(value)
    assert base64.b64decode(letter.value or "") == value[:DEAD_LETTER_MAX_VALUE]
    assert base64.b64decode(letter.key or "") == key[:DEAD_LETTER_MAX_KEY]
    record_key = dead_letter_key(key)
    assert record_key == key[:DEAD_LETTER_MAX_KEY]
    size = len(codec.encode_dead_letter(letter)) + len(record_key)
    assert size < 900_000  # Faust's producer_max_request_size defaults to 1,000,000
