"""Bytes ⇄ messages, with orjson. Every message on every topic goes through here.

``decode_*`` raise only :class:`~streaming_rec.errors.DecodeError`, whose ``field`` is the
dotted path of the bad field prefixed by the message kind ("query.k",
"query.filters.categories.3"), or the kind alone when the payload as a whole is bad.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

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
MAX_DEPTH: Final = 1024  # arrays/objects nested in one another: the parser's (orjson's) limit
_NOT_FINITE: Final = "must be a finite number (NaN, Infinity and overflowing numbers like 1e999)"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


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
        raise _not_json(kind, raw, str(exc)) from None
    if not isinstance(data, dict):
        raise DecodeError(kind, f"must be a JSON object, not {_json_type(data)}")
    return data


def _not_json(kind: str, raw: bytes | bytearray | memoryview | str, detail: str) -> DecodeError:
    """Why ``raw`` is not JSON; names the field when one value is to blame (NaN, 1e999, ...).

    The lenient standard-library parse only finds that field: such a message is never
    accepted, whatever that parser makes of it.
    """
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            return DecodeError(kind, f"is not valid UTF-8 (byte {exc.start})")
    if "depth limit" in detail:
        return DecodeError(kind, f"nests arrays/objects more than {MAX_DEPTH} levels deep")
    if text.startswith("\ufeff"):
        return DecodeError(kind, "starts with a byte order mark (BOM); send UTF-8 without it")
    try:
        lenient = json.loads(text)  # takes NaN, Infinity, 1e999 (as inf), lone surrogates
    except (ValueError, RecursionError):
        return DecodeError(kind, f"is not valid JSON: {detail}")
    culprit = _first_unusable(lenient)
    if culprit is None:
        return DecodeError(kind, f"is not valid JSON: {detail}")
    path, reason, value = culprit
    return DecodeError(".".join([kind, *path]), reason, value)


def _first_unusable(data: Any) -> tuple[list[str], str, Any] | None:
    """Path, reason and value of the first number or string that is not valid JSON."""
    stack: list[tuple[list[str], Any]] = [([], data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if not _is_unicode(key):
                    return [*path, _part(key)], "is not valid Unicode (a lone surrogate)", None
            stack.extend(reversed([([*path, _part(k)], v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([([*path, str(i)], v) for i, v in enumerate(value)]))
        elif isinstance(value, float) and not math.isfinite(value):
            return path, _NOT_FINITE, value
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1024:
            return path, _NOT_FINITE, None
        elif isinstance(value, str) and not _is_unicode(value):
            return path, "is not valid Unicode (a lone surrogate)", value
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    """A path part fit for logs and JSON: control characters and lone surrogates escaped."""
    text = str(part)
    text = text if len(text) <= 64 else text[:61] + "..."
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
