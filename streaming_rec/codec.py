"""Bytes ⇄ messages, with orjson. Every message on every topic goes through here.

``decode_*`` raise only :class:`~streaming_rec.errors.DecodeError`, whose ``field`` is the
dotted path of the bad field prefixed by the message kind ("query.k",
"query.filters.categories.3"), or the kind alone when the payload as a whole is bad.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Final, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from streaming_rec.errors import DecodeError
from streaming_rec.schemas import (
    MAX_DIM,
    DeadLetter,
    Feedback,
    Item,
    ItemVector,
    Query,
    Recommendation,
    UserStateRecord,
)

M = TypeVar("M", bound=BaseModel)

KINDS: Final = (
    "query",
    "feedback",
    "item",
    "item_vector",
    "recommendation",
    "dead_letter",
    "user_state",
)
_ARRAY_FIELDS: Final = {"item_vector": ("vector", "factors")}
_OMIT_IF_NONE: Final = {
    "query": ("filters", "sent_at", "deadline_ms"),
    "feedback": ("ts", "request_id"),
    "item": ("updated_at",),
    "item_vector": ("factors",),
    "recommendation": ("error",),
}
_MAX_B64 = (MAX_DIM * 4 + 2) // 3 * 4


# --- vectors ------------------------------------------------------------------------------
def vector_to_b64(vector: np.ndarray) -> str:
    """Base64 of the little-endian float32 bytes of a 1-D array."""
    if vector.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {vector.shape}")
    raw = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return base64.b64encode(raw).decode("ascii")


def b64_to_vector(text: str, field: str) -> np.ndarray:
    """The float32 array in base64 ``text``; DecodeError naming ``field`` when it is not one."""
    if not isinstance(text, str):
        raise DecodeError(field, "must be a base64 string", text)
    if not text:
        raise DecodeError(field, "must not be empty")
    if len(text) > _MAX_B64:
        raise DecodeError(field, f"must hold at most {MAX_DIM} numbers")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise DecodeError(field, "must be valid base64", text) from None
    if len(raw) % 4:
        raise DecodeError(field, "must hold a whole number of float32 values")
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=False)
    if not np.isfinite(vector).all():
        raise DecodeError(field, "must contain only finite numbers")
    return vector


# --- decoding -----------------------------------------------------------------------------
def _load(kind: str, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise DecodeError(kind, "message has no value (null)")
    if not raw:
        raise DecodeError(kind, "message is empty")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DecodeError(kind, _why_not_json(raw)) from None
    if not isinstance(data, dict):
        raise DecodeError(kind, f"must be a JSON object, not {_json_type(data)}")
    return data


def _why_not_json(raw: bytes | bytearray | memoryview | str) -> str:
    if not isinstance(raw, str):
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return "is not valid UTF-8"
    return "is not valid JSON"


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _validate(kind: str, model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _decode_error(kind, exc.errors(include_url=False)[0]) from None


def _decode_error(kind: str, error: ErrorDetails) -> DecodeError:
    loc = [_part(p) for p in error["loc"] if p != "[key]"]
    field = ".".join([kind, *loc])
    value = None if error["type"] == "missing" else error.get("input")
    if loc == ["v"]:
        return DecodeError(field, "unsupported version: only 1 is supported", value)
    return DecodeError(field, _reason(error), value)


def _part(part: str | int) -> str:
    text = str(part)
    return text if len(text) <= 64 else text[:61] + "..."


_REASONS: Final = {
    "missing": "is required",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "finite_number": "must be a finite number",
    "string_pattern_mismatch": "must not contain control characters",
    "string_too_long": "must have at most {max_length} characters",
    "too_long": "must have at most {max_length} entries",
    "literal_error": "must be one of {expected}",
    "greater_than_equal": "must be ≥ {ge}",
    "less_than_equal": "must be ≤ {le}",
    "greater_than": "must be > {gt}",
    "less_than": "must be < {lt}",
}


def _reason(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must have at least {n} characters"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    try:
        return _REASONS[kind].format(**ctx)
    except (KeyError, IndexError):
        return str(error["msg"])


def _arrays(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    for name in _ARRAY_FIELDS.get(kind, ()):
        value = data.get(name)
        if value is not None:
            data[name] = b64_to_vector(value, f"{kind}.{name}")
    return data


def _check_key(kind: str, key: bytes | None, item_id: str) -> None:
    if key is not None and key != item_id.encode("utf-8"):
        raise DecodeError(f"{kind}.item_id", "must equal the message key", item_id)


def decode_query(raw: bytes | None) -> Query:
    """A query from the ``queries`` topic."""
    return _validate("query", Query, _load("query", raw))


def decode_feedback(raw: bytes | None) -> Feedback:
    """A feedback event from the ``feedback`` topic."""
    return _validate("feedback", Feedback, _load("feedback", raw))


def decode_item(key: bytes | None, raw: bytes | None) -> Item:
    """An item; a null value (tombstone) is a deleted item whose id is the key."""
    if raw is None:
        if key is None:
            raise DecodeError("item", "tombstone without a key")
        try:
            item_id = bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("item.item_id", "key is not valid UTF-8", key) from None
        return _validate("item", Item, {"item_id": item_id, "deleted": True})
    item = _validate("item", Item, _load("item", raw))
    _check_key("item", key, item.item_id)
    return item


def decode_item_vector(key: bytes | None, raw: bytes | None) -> ItemVector | None:
    """An item vector; None for a tombstone (the item is deleted: its id is the key)."""
    if raw is None:
        return None
    data = _arrays("item_vector", _load("item_vector", raw))
    vector = _validate("item_vector", ItemVector, data)
    _check_key("item_vector", key, vector.item_id)
    return vector


def decode_recommendation(raw: bytes | None) -> Recommendation:
    """A recommendation from the ``recommendations`` topic."""
    return _validate("recommendation", Recommendation, _load("recommendation", raw))


def decode_dead_letter(raw: bytes | None) -> DeadLetter:
    """A dead letter from the ``dead-letters`` topic."""
    return _validate("dead_letter", DeadLetter, _load("dead_letter", raw))


def decode_user_state(raw: bytes | None) -> UserStateRecord:
    """A user's state from the table changelog."""
    data = _arrays("user_state", _load("user_state", raw))
    return _validate("user_state", UserStateRecord, data)


# --- encoding -----------------------------------------------------------------------------
def _dump(kind: str, message: BaseModel) -> bytes:
    data = message.model_dump()
    for name in _OMIT_IF_NONE.get(kind, ()):
        if data[name] is None:
            del data[name]
    for name in _ARRAY_FIELDS.get(kind, ()):
        if data.get(name) is not None:
            data[name] = vector_to_b64(data[name])
    return orjson.dumps(data)


def encode_query(query: Query) -> bytes:
    return _dump("query", query)


def encode_feedback(feedback: Feedback) -> bytes:
    return _dump("feedback", feedback)


def encode_item(item: Item) -> bytes:
    return _dump("item", item)


def encode_item_vector(vector: ItemVector) -> bytes:
    return _dump("item_vector", vector)


def encode_recommendation(recommendation: Recommendation) -> bytes:
    return _dump("recommendation", recommendation)


def encode_dead_letter(letter: DeadLetter) -> bytes:
    return _dump("dead_letter", letter)


def encode_user_state(state: UserStateRecord) -> bytes:
    return _dump("user_state", state)


# --- by kind ------------------------------------------------------------------------------
_DECODERS: Final[dict[str, Callable[[bytes | None, bytes | None], BaseModel | None]]] = {
    "query": lambda _key, raw: decode_query(raw),
    "feedback": lambda _key, raw: decode_feedback(raw),
    "item": decode_item,
    "item_vector": decode_item_vector,
    "recommendation": lambda _key, raw: decode_recommendation(raw),
    "dead_letter": lambda _key, raw: decode_dead_letter(raw),
    "user_state": lambda _key, raw: decode_user_state(raw),
}
_KINDS_BY_TYPE: Final[dict[type[BaseModel], str]] = {
    Query: "query",
    Feedback: "feedback",
    Item: "item",
    ItemVector: "item_vector",
    Recommendation: "recommendation",
    DeadLetter: "dead_letter",
    UserStateRecord: "user_state",
}


def decode(kind: str, raw: bytes | None, key: bytes | None = None) -> BaseModel | None:
    """Decode a message of ``kind`` (one of KINDS); None only for an item_vector tombstone."""
    try:
        decoder = _DECODERS[kind]
    except KeyError:
        raise ValueError(f"unknown message kind {kind!r}; expected one of {KINDS}") from None
    return decoder(key, raw)


def encode(message: BaseModel) -> bytes:
    """Encode any message model."""
    return _dump(_KINDS_BY_TYPE[type(message)], message)
