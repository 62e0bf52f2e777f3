"""The codec: errors name the right field, round trips are exact, only DecodeError escapes."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import BaseModel, ValidationError

from streaming_rec import codec, wire_errors
from streaming_rec.errors import DecodeError
from streaming_rec.schemas import (
    EVENTS,
    DeadLetter,
    Feedback,
    Filters,
    Item,
    ItemVector,
    Query,
    Recommendation,
    RecommendedItem,
    Timings,
    UserStateRecord,
)

pytestmark = pytest.mark.unit

Q = {"request_id": "r1", "user_id": "u1"}
FB = {"user_id": "u1", "item_id": "i1", "event": "click"}


def _q(**fields: Any) -> bytes:
    return orjson.dumps({**Q, **fields})


def _field_of(decode: Callable[[bytes | None], object], raw: bytes | None) -> str:
    with pytest.raises(DecodeError) as caught:
        decode(raw)
    return caught.value.field


def _unit(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=n).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (_q(k=True), "query.k"),
        (_q(k=0), "query.k"),
        (_q(k=101), "query.k"),
        (_q(k="5"), "query.k"),
        (_q(k=5.0), "query.k"),
        (orjson.dumps({"request_id": "r"}), "query.user_id"),
        (orjson.dumps({"request_id": None, "user_id": "u"}), "query.request_id"),
        (_q(request_id="r" * 129), "query.request_id"),
        (_q(user_id="u" * 10_000), "query.user_id"),
        (_q(user_id=""), "query.user_id"),
        (_q(user_id="a\tb"), "query.user_id"),
        (_q(user_id=7), "query.user_id"),
        (_q(text="x" * 2001), "query.text"),
        (_q(filters={"categories": [str(i) for i in range(21)]}), "query.filters.categories"),
        (_q(filters={"categories": ["a", "b", "c", 4]}), "query.filters.categories.3"),
        (_q(filters={"exclude_ids": ["x"] * 1001}), "query.filters.exclude_ids"),
        (_q(filters="Sci-Fi"), "query.filters"),
        (_q(sent_at=-1), "query.sent_at"),
        (_q(sent_at="now"), "query.sent_at"),
        (_q(deadline_ms=0), "query.deadline_ms"),
        (_q(v=2), "query.v"),
        (_q(v="1"), "query.v"),
        (_q(v=True), "query.v"),
        (b'{"request_id":"r","user_id":"u","k":NaN}', "query.k"),
        (b'{"request_id":"r","user_id":"u","sent_at":Infinity}', "query.sent_at"),
        (b'{"request_id":"r","user_id":"u","sent_at":1e999}', "query.sent_at"),
        (
            b'{"request_id":"r","user_id":"u","filters":{"exclude_ids":["a",-Infinity]}}',
            "query.filters.exclude_ids.1",
        ),
        (b'{"request_id":"r","user_id":"u","x":[NaN]', "query"),  # not JSON even leniently
        (_q(sent_at=1_714_567_890_123), "query.sent_at"),  # milliseconds
        (b"\xef\xbb\xbf{}", "query"),
        (b"[" * 1025 + b"]" * 1025, "query"),
        (b"\xff\xfe\x00{", "query"),
        (b"[1, 2]", "query"),
        (b'"hello"', "query"),
        (b"42", "query"),
        (b"null", "query"),
        (b"", "query"),
        (None, "query"),
        (b"{", "query"),
    ],
)
def test_query_errors_name_the_field(raw: bytes | None, field: str) -> None:
    assert _field_of(codec.decode_query, raw) == field


def test_nan_in_a_model_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Query(request_id="r", user_id="u", sent_at=float("nan"))
    with pytest.raises(ValidationError):
        RecommendedItem(item_id="i", score=float("inf"))


def test_reasons_are_short_and_human() -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode_feedback(orjson.dumps({**FB, "event": "like"}))
    assert caught.value.field == "feedback.event"
    assert all(event in caught.value.reason for event in EVENTS)
    with pytest.raises(DecodeError) as caught:
        codec.decode_query(_q(k=True))
    assert caught.value.reason == "must be an integer"
    with pytest.raises(DecodeError) as caught:
        codec.decode_query(b"\xff")
    assert "UTF-8" in caught.value.reason
    with pytest.raises(DecodeError) as caught:
        codec.decode_query(_q(user_id="u" * 10_000))
    assert len(str(caught.value)) < 200


def test_json_errors_say_why_and_name_the_value_to_blame() -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode_query(b"[" * 10_000)
    depth = wire_errors.MAX_DEPTH
    assert caught.value.reason == f"nests arrays/objects more than {depth} levels deep"
    with pytest.raises(DecodeError) as caught:
        codec.decode_query(b'{"request_id": "r", "user_id": "u"')
    assert caught.value.reason.startswith("is not valid JSON: unexpected end of data")
    with pytest.raises(DecodeError) as caught:
        codec.decode_feedback(b'{"user_id": "\\ud800", "item_id": "i", "event": "click"}')
    assert (caught.value.field, caught.value.reason) == (
        "feedback.user_id",
        "is not valid Unicode (a lone surrogate)",
    )
    with pytest.raises(DecodeError) as caught:  # the lenient parse never accepts a message
        codec.decode_query(b'{"request_id": "r", "user_id": "u", "\\udc80": 1}')
    assert caught.value.field == "query.\\udc80"
    orjson.dumps(str(caught.value))  # fit for the dead letter's JSON


def test_a_value_nested_near_the_parser_limit_is_an_error_not_a_recursion() -> None:
    nested = b"[" * 1020 + b"]" * 1020
    raw = b'{"item_id": "i", "title": "t", "attributes": {"a": ' + nested + b"}}"
    with pytest.raises(DecodeError) as caught:
        codec.decode_item(None, raw)
    assert caught.value.field == "item.attributes.a"
    assert "nested too deeply to show" in str(caught.value)


def test_field_paths_escape_control_characters() -> None:
    raw = orjson.dumps({"item_id": "i", "title": "t", "attributes": {"a\nb": None}})
    with pytest.raises(DecodeError) as caught:
        codec.decode_item(None, raw)
    assert caught.value.field == "item.attributes.a\\nb"


def test_times_are_seconds_up_to_2100() -> None:
    assert codec.decode_feedback(orjson.dumps({**FB, "ts": 4_102_444_800})).ts == 4_102_444_800
    with pytest.raises(DecodeError) as caught:
        codec.decode_feedback(orjson.dumps({**FB, "ts": 1_714_567_890_123}))
    assert caught.value.field == "feedback.ts" and "milliseconds" in caught.value.reason


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"event": "like"}, "feedback.event"),
        ({"event": None}, "feedback.event"),
        ({"item_id": None}, "feedback.item_id"),
        ({"ts": float("1e308") * -1}, "feedback.ts"),
        ({"request_id": ""}, "feedback.request_id"),
    ],
)
def test_feedback_errors_name_the_field(fields: dict[str, Any], field: str) -> None:
    assert _field_of(codec.decode_feedback, orjson.dumps({**FB, **fields})) == field


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"item_id": "i", "title": ""}, "item.title"),
        ({"item_id": "i"}, "item.title"),
        ({"item_id": "i", "title": "t" * 501}, "item.title"),
        ({"item_id": "i", "title": "t", "description": "d" * 5001}, "item.description"),
        ({"item_id": "i", "title": "t", "categories": ["c"] * 51}, "item.categories"),
        ({"item_id": "i", "title": "t", "attributes": {"a": None}}, "item.attributes.a"),
        ({"item_id": "i", "title": "t", "attributes": {"a": "x" * 1001}}, "item.attributes.a"),
        (
            {"item_id": "i", "title": "t", "attributes": {"k" * 101: 1}},
            "item.attributes." + "k" * 61 + "...",
        ),
        (
            {"item_id": "i", "title": "t", "attributes": {str(i): i for i in range(101)}},
            "item.attributes",
        ),
        ({"item_id": "i", "title": "t", "deleted": 1}, "item.deleted"),
    ],
)
def test_item_errors_name_the_field(payload: dict[str, Any], field: str) -> None:
    assert _field_of(lambda raw: codec.decode_item(None, raw), orjson.dumps(payload)) == field


def test_item_tombstone_is_a_deleted_item() -> None:
    item = codec.decode_item(b"movie-1", None)
    assert item == Item(item_id="movie-1", deleted=True)
    assert _field_of(lambda raw: codec.decode_item(None, raw), None) == "item"
    assert _field_of(lambda raw: codec.decode_item(b"\xff", raw), None) == "item.item_id"
    assert _field_of(lambda raw: codec.decode_item(b"", raw), None) == "item.item_id"


def test_item_key_must_match_its_id() -> None:
    raw = orjson.dumps({"item_id": "a", "title": "t"})
    assert codec.decode_item(b"a", raw).item_id == "a"
    assert _field_of(lambda r: codec.decode_item(b"b", r), raw) == "item.item_id"


def test_item_vector_round_trip_and_tombstone() -> None:
    vector = _unit(384)
    message = ItemVector(
        item_id="m1",
        vector=vector,
        dim=384,
        factors=np.arange(8, dtype=np.float64),
        title="Alien (1979)",
        categories=["Horror", "Sci-Fi"],
        attributes={"year": 1979},
        model="all-MiniLM-L6-v2",
        updated_at=1.5,
    )
    decoded = codec.decode_item_vector(b"m1", codec.encode_item_vector(message))
    assert decoded == message
    assert decoded is not None and decoded.vector.dtype == np.float32
    assert np.array_equal(decoded.vector, vector)
    assert decoded.factors is not None and decoded.factors.dtype == np.float32
    assert codec.decode_item_vector(b"m1", None) is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"dim": 383}, "item_vector.dim"),
        ({"vector": "***"}, "item_vector.vector"),
        ({"vector": 5}, "item_vector.vector"),
        ({"vector": ""}, "item_vector.vector"),
        ({"vector": None}, "item_vector.vector"),
        ({"vector": "AAAA"}, "item_vector.vector"),
        ({"factors": "AAA="}, "item_vector.factors"),
        ({"model": ""}, "item_vector.model"),
    ],
)
def test_item_vector_errors_name_the_field(fields: dict[str, Any], field: str) -> None:
    good = {
        "item_id": "m1",
        "vector": codec.vector_to_b64(_unit(384)),
        "dim": 384,
        "title": "t",
        "model": "m",
        "updated_at": 1,
    }
    raw = orjson.dumps({**good, **fields})
    assert _field_of(lambda r: codec.decode_item_vector(None, r), raw) == field


def test_vector_b64_round_trip() -> None:
    vector = np.array([0.0, -1.5, 3.25, 1e-30, 65504.0], dtype=np.float32)
    text = codec.vector_to_b64(vector)
    assert np.array_equal(codec.b64_to_vector(text, "x"), vector)
    assert codec.vector_to_b64(vector.astype(np.float64)) == text
    assert np.array_equal(codec.b64_to_vector(codec.vector_to_b64(vector[::2]), "x"), vector[::2])
    for bad in ("", "AAA", "!!!!", "AAAAAAA=", "AADAfw=="):
        with pytest.raises(DecodeError) as caught:
            codec.b64_to_vector(bad, "user_state.vector")
        assert caught.value.field == "user_state.vector"


def _messages() -> list[BaseModel]:
    return [
        Query(request_id="r", user_id="u"),
        Query(
            request_id="r",
            user_id="u",
            text="space opera",
            k=3,
            filters=Filters(categories=("Sci-Fi",), exclude_ids=("a", "b")),
            sent_at=1.5,
            deadline_ms=100,
        ),
        Feedback(user_id="u", item_id="i", event="purchase", ts=2.0, request_id="r"),
        Item(item_id="i", title="T", categories=("a",), attributes={"n": 1, "f": 0.5, "b": False}),
        Recommendation(
            request_id="r",
            user_id="u",
            status="ok",
            strategy="popular",
            items=[RecommendedItem(item_id="i", score=-0.25, title="T")],
            model_version="m",
            index_version=3,
            index_size=3,
            user_events=0,
            timings=Timings(queue_ms=1.0, total_ms=2.0),
            produced_at=5.0,
            worker="w",
        ),
        DeadLetter(
            topic="srec.queries",
            partition=0,
            offset=9,
            key="a2V5",
            value=None,
            reason="query: is not valid JSON",
            field="query",
            error="DecodeError",
            worker="w",
            at=1.0,
        ),
        UserStateRecord(
            user_id="u",
            history_items=["a", "b"],
            history_events=["click", "dislike"],
            history_ts=[1.0, 2.0],
            events=1,
            updated_at=3,
        ),
        UserStateRecord(user_id="u", updated_at=0),
    ]


@pytest.mark.parametrize("message", _messages(), ids=lambda m: type(m).__name__)
def test_round_trip(message: BaseModel) -> None:
    encoded = codec.encode(message)
    kind = codec._KINDS_BY_TYPE[type(message)]
    decoded = codec.decode(kind, encoded)
    assert decoded == message
    assert decoded is not None and codec.encode(decoded) == encoded


def test_optional_nulls_are_omitted_and_accepted() -> None:
    encoded = orjson.loads(codec.encode_query(Query(request_id="r", user_id="u")))
    assert encoded == {"v": 1, "request_id": "r", "user_id": "u", "text": "", "k": 10}
    nulls = _q(filters=None, sent_at=None, deadline_ms=None)
    assert codec.decode_query(nulls) == Query(request_id="r1", user_id="u1")


def test_unknown_fields_are_ignored() -> None:
    query = codec.decode_query(_q(future_field={"x": [1, 2]}, k=7))
    assert query.k == 7


def test_dead_letter_reason_is_clipped() -> None:
    letter = DeadLetter(
        topic="t", partition=0, offset=0, reason="x" * 10_000, error="E", worker="w", at=0
    )
    assert len(letter.reason) == 4000
    assert codec.decode_dead_letter(codec.encode_dead_letter(letter)) == letter


def test_models_are_frozen() -> None:
    query = Query(request_id="r", user_id="u")
    with pytest.raises(ValidationError):
        query.k = 5


# --- fuzz: whatever the bytes, only DecodeError escapes ------------------------------------
_SEEDS: dict[str, dict[str, Any]] = {
    "query": {**Q, "text": "hi", "k": 3, "filters": {"categories": ["a"], "exclude_ids": ["b"]}},
    "feedback": {**FB, "ts": 1.0, "request_id": "r"},
    "item": {"item_id": "i", "title": "t", "categories": ["c"], "attributes": {"a": 1}},
    "item_vector": {
        "item_id": "i",
        "vector": codec.vector_to_b64(_unit(8)),
        "dim": 8,
        "title": "t",
        "model": "m",
        "updated_at": 1,
    },
    "recommendation": orjson.loads(codec.encode(_messages()[4])),
    "dead_letter": orjson.loads(codec.encode(_messages()[5])),
    "user_state": orjson.loads(codec.encode(_messages()[6])),
    "embedded_query": {
        "query": {**Q, "text": "hi", "k": 3},
        "vector": codec.vector_to_b64(_unit(8)),
        "model": "m",
        "embed_ms": 1.5,
        "embedded_by": "w",
        "embedded_at": 1.0,
        "source_partition": 0,
        "source_offset": 7,
        "source_ts": 1.0,
    },
    "held_feedback": {
        "user_id": "u",
        "value": "eyJ1c2VyX2lkIjogInUifQ==",
        "source_partition": 1,
        "source_offset": 9,
        "held_at": 1.0,
        "attempts": 2,
    },
    "sequence_model": {
        "version": "1764547200000-3f9a1c2e",
        "part": 0,
        "parts": 2,
        "data": "U1JTUTE=",
        "size": 300,
        "sha256": "0" * 64,
        "factor_dim": 4,
        "item_vectors_end": {"0": 12, "3": 7},
        "events": 10,
        "fit_s": 0.5,
        "trained_at": 1.0,
    },
}
_ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**63 - 1, -(2**63), 1.5, -0.0, 1e308, "", "x", "5",
    "\x00", "a" * 3000, [], [1], ["a"] * 60, {}, {"a": None}, "AAAA", "AADAfw==", "=",
]  # fmt: skip


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and depth < 4:
        out = dict(value)
        key = rng.choice(list(out))
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[rng.choice(["v", "zz", key + "_"])] = rng.choice(_ODD_VALUES)
        elif roll < 0.6:
            out[key] = rng.choice(_ODD_VALUES)
        else:
            out[key] = _mutate(rng, out[key], depth + 1)
        return out
    if isinstance(value, list) and value and depth < 4:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        out_list[i] = _mutate(rng, out_list[i], depth + 1)
        return out_list
    return rng.choice(_ODD_VALUES)


def _garble(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        i = rng.randrange(len(data))
        op = rng.random()
        if op < 0.4:
            data[i] = rng.randrange(256)
        elif op < 0.7:
            del data[i]
        else:
            data.insert(i, rng.choice(b'{}[]",:0e-\\\xff'))
    return bytes(data)


@pytest.mark.parametrize("kind", codec.KINDS)
def test_fuzz_only_decode_errors_escape(kind: str) -> None:
    rng = random.Random(f"streaming-rec-{kind}")
    seed = orjson.dumps(_SEEDS[kind])
    assert codec.decode(kind, seed) is not None
    outcomes = {"ok": 0, "error": 0}
    for n in range(1500):
        if n % 3 == 0:
            raw = rng.randbytes(rng.randint(0, 40))
        elif n % 3 == 1:
            raw = _garble(rng, seed)
        else:
            raw = orjson.dumps(_mutate(rng, _SEEDS[kind]))
        key = rng.choice([None, b"i", b"\xff", rng.randbytes(3)])
        try:
            codec.decode(kind, raw, key)
        except DecodeError as exc:
            assert exc.field == kind or exc.field.startswith(kind + ".")
            assert exc.reason
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
    assert outcomes["error"] > 500
