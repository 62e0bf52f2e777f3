"""Bytes ⇄ messages, with orjson. Every message on every topic goes through here.

``decode_*`` raise only :class:`~streaming_rec.errors.DecodeError`, whose ``field`` is the
dotted path of the bad field prefixed by the message kind ("query.k",
"query.filters.categories.3"), or the kind alone when the payload as a whole is bad.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError

from streaming_rec.errors import DecodeError
from streaming_rec.schemas import (
    MAX_DIM,
    DeadLetter,
    EmbeddedQuery,
    Feedback,
    HeldFeedback,
    Item,
    ItemVector,
    Query,
    Recommendation,
    SequenceModelPart,
    UserStateRecord,
)
from streaming_rec.wire_errors import json_type, not_json, validation_error

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Kind:
    """One message kind on the wire: its model, which fields are base64 float32 vectors,
    which optional fields are left out when None, and which nested fields are written as
    a message of another kind. Adding a kind = one entry in ``REGISTRY`` (plus its model in
    ``schemas`` and its JSON Schema in ``topics/schemas``)."""

    name: str
    model: type[BaseModel]
    arrays: tuple[str, ...] = ()
    omit_if_none: tuple[str, ...] = ()
    nested: tuple[tuple[str, str], ...] = ()  # (field, kind)


REGISTRY: Final[dict[str, Kind]] = {
    kind.name: kind
    for kind in (
        Kind(
            "query",
            Query,
            omit_if_none=("filters", "sent_at", "deadline_ms", "reply_to", "understand"),
        ),
        Kind("feedback", Feedback, omit_if_none=("ts", "request_id", "event_id")),
        Kind("item", Item, omit_if_none=("updated_at", "published_at")),
        Kind(
            "item_vector",
            ItemVector,
            arrays=("vector", "factors"),
            omit_if_none=("factors", "published_at", "factors_version"),
        ),
        Kind(
            "recommendation",
            Recommendation,
            omit_if_none=("error", "understood", "user_model", "backend"),
        ),
        Kind("dead_letter", DeadLetter, omit_if_none=("value_size", "last_offset")),
        Kind("user_state", UserStateRecord, omit_if_none=("applied_partition", "applied_offset")),
        Kind(
            "embedded_query",
            EmbeddedQuery,
            arrays=("vector",),
            omit_if_none=("vector",),
            nested=(("query", "query"),),
        ),
        Kind("held_feedback", HeldFeedback),
        Kind("sequence_model", SequenceModelPart),
    )
}
KINDS: Final = tuple(REGISTRY)
_KINDS_BY_TYPE: Final[dict[type[BaseModel], str]] = {k.model: k.name for k in REGISTRY.values()}
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
    except orjson.JSONDecodeError as exc:
        raise not_json(kind, raw, str(exc)) from None
    if not isinstance(data, dict):
        raise DecodeError(kind, f"must be a JSON object, not {json_type(data)}")
    return data


def _validate(kind: str, model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(kind, exc.errors(include_url=False)[0]) from None


def _arrays(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    for name in REGISTRY[kind].arrays:
        value = data.get(name)
        if value is not None:
            data[name] = b64_to_vector(value, f"{kind}.{name}")
    return data


def _check_key(kind: str, key: bytes | None, item_id: str) -> None:
    if key is not None and key != item_id.encode("utf-8"):
        raise DecodeError(f"{kind}.item_id", "must equal the message key", item_id)


def _decode(kind: str, model: type[M], raw: bytes | None) -> M:
    """A message of a kind without key rules: JSON object → vectors → validated model."""
    return _validate(kind, model, _arrays(kind, _load(kind, raw)))


def decode_query(raw: bytes | None) -> Query:
    """A query from the ``queries`` topic."""
    return _decode("query", Query, raw)


def decode_embedded_query(raw: bytes | None) -> EmbeddedQuery:
    """A query with its encoded text, from ``embedded-queries``."""
    return _decode("embedded_query", EmbeddedQuery, raw)


def decode_feedback(raw: bytes | None) -> Feedback:
    """A feedback event from the ``feedback`` topic."""
    return _decode("feedback", Feedback, raw)


def decode_held_feedback(raw: bytes | None) -> HeldFeedback:
    """A feedback event held for its item, from ``feedback-retry``."""
    return _decode("held_feedback", HeldFeedback, raw)


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
    return _decode("recommendation", Recommendation, raw)


def decode_dead_letter(raw: bytes | None) -> DeadLetter:
    """A dead letter from the ``dead-letters`` topic."""
    return _decode("dead_letter", DeadLetter, raw)


def decode_user_state(raw: bytes | None) -> UserStateRecord:
    """A user's state from the table changelog."""
    return _decode("user_state", UserStateRecord, raw)


# --- encoding -----------------------------------------------------------------------------
def _dump(kind: str, message: BaseModel) -> bytes:
    spec = REGISTRY[kind]
    data = message.model_dump()
    for name in spec.omit_if_none:
        if data[name] is None:
            del data[name]
    for name, inner in spec.nested:  # written as that kind is, e.g. the query on `queries`
        data[name] = orjson.loads(_dump(inner, getattr(message, name)))
    for name in spec.arrays:
        if data.get(name) is not None:
            data[name] = vector_to_b64(data[name])
    return orjson.dumps(data)


def encode_query(query: Query) -> bytes:
    return _dump("query", query)


def encode_embedded_query(message: EmbeddedQuery) -> bytes:
    return _dump("embedded_query", message)


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


def encode_held_feedback(message: HeldFeedback) -> bytes:
    return _dump("held_feedback", message)


# --- by kind ------------------------------------------------------------------------------
_KEYED: Final[dict[str, Any]] = {"item": decode_item, "item_vector": decode_item_vector}


def decode(kind: str, raw: bytes | None, key: bytes | None = None) -> BaseModel | None:
    """Decode a message of ``kind`` (one of KINDS); None only for an item_vector tombstone.
    Raises DecodeError; ValueError for an unknown kind."""
    if kind in _KEYED:
        return _KEYED[kind](key, raw)  # type: ignore[no-any-return]
    try:
        spec = REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown message kind {kind!r}; expected one of {KINDS}") from None
    return _decode(kind, spec.model, raw)


def encode(message: BaseModel) -> bytes:
    """Encode any message model of the registry."""
    return _dump(_KINDS_BY_TYPE[type(message)], message)
