"""HTTP bodies → topic messages, through the codec: what the gateway publishes is exactly
what the topics' schemas allow, and a bad field is refused with the codec's DecodeError
naming it (the gateway answers 422)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from streaming_rec import codec
from streaming_rec.errors import DecodeError
from streaming_rec.schemas import Feedback, Item, Query
from streaming_rec.topics import schema_path

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body (bytes): a query with 1000 excluded ids or an item with 100
attributes fits many times over."""


def _object(kind: str, body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; DecodeError naming ``kind`` (or the bad value's field)
    when it is not one."""
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        codec.decode(kind, body)  # raises the codec's DecodeError, naming what is wrong
        raise DecodeError(kind, "is not valid JSON") from None  # not reached
    if not isinstance(data, dict):
        raise DecodeError(kind, "must be a JSON object")
    return data


def query_from(body: bytes, user_id: str | None, reply_partition: int) -> Query:
    """The query in an HTTP body (query.v1 fields; ``request_id`` optional: a new one),
    for ``user_id`` when the path names one, answered to ``reply_partition``.
    Raises DecodeError."""
    data = _object("query", body)
    if user_id is not None:
        data["user_id"] = user_id
    data.setdefault("request_id", uuid.uuid4().hex)
    data.setdefault("sent_at", time.time())
    data["reply_to"] = {"partition": reply_partition}
    return codec.decode_query(orjson.dumps(data))


def feedback_from(body: bytes) -> Feedback:
    """The feedback event in an HTTP body; ``event_id`` is set when absent (returned to the
    caller, whose retry with it is applied once) and ``ts`` is now when absent.
    Raises DecodeError."""
    data = _object("feedback", body)
    data.setdefault("event_id", uuid.uuid4().hex)
    data.setdefault("ts", time.time())
    return codec.decode_feedback(orjson.dumps(data))


def item_from(body: bytes, item_id: str) -> Item:
    """The item in an HTTP body for the path's ``item_id`` (a body item_id must equal it).
    Raises DecodeError."""
    data = _object("item", body)
    if data.setdefault("item_id", item_id) != item_id:
        raise DecodeError("item.item_id", "must equal the id in the path", data["item_id"])
    return codec.decode_item(item_id.encode("utf-8"), orjson.dumps(data))


def openapi_schema(kind: str, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON Schema of a message kind from topics/schemas, for OpenAPI 3.1 (its ``$id``
    and ``$schema`` removed, ``drop`` properties removed from it and from ``required``)."""
    schema: dict[str, Any] = orjson.loads(schema_path(kind).read_bytes())
    schema.pop("$schema", None)
    schema.pop("$id", None)
    for name in drop:
        schema["properties"].pop(name, None)
    schema["required"] = [r for r in schema.get("required", []) if r not in drop]
    return schema


def json_body(kind: str, drop: tuple[str, ...] = (), example: Any = None) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is a ``kind`` message."""
    media: dict[str, Any] = {"schema": openapi_schema(kind, drop)}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}
