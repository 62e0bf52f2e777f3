"""Bad input: every kind of malformed message a worker must dead-letter, built by code.

Each :class:`Case` is one message for `queries`, `feedback` or `items` with the field its
dead letter must name and how its reason starts. ``corpus(tag)`` builds them; ``tag``
keeps ids and request ids apart between runs on one broker. The table in README.md is
``markdown_table()`` (tests/unit/test_bad_input_corpus.py checks that they agree).

    python -m tests.bad_input.corpus     # print the table
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

TOPICS = ("queries", "feedback", "items")
DEEP = 10_000  # levels of [[[...]]]: far past the parser's limit (1024)
NEAR_LIMIT = 1_000  # levels of nesting the parser still takes
MB_TEXT = 1_000_000  # characters: a message just under Kafka's default 1 MiB limit
THOUSANDS = 5_000
LONG_ID = 10_000  # characters
HUGE_KEY = 600 * 1024  # bytes: a whole document sent as the key
MILLIS = 1_714_567_890_123  # a Unix time in milliseconds (2024), sent where seconds belong
NESTED = "[" * NEAR_LIMIT + "]" * NEAR_LIMIT  # valid JSON, nested 1000 deep


@dataclass(frozen=True)
class Case:
    """One bad message and what its dead letter must say."""

    kind: str  # unique name
    topic: str  # logical topic: queries, feedback or items
    key: bytes | None
    value: bytes | None
    field: str  # DecodeError.field, DeadLetter.field
    reason: str  # how DecodeError.reason starts
    worker_only: bool = False  # the codec accepts it; the worker's state rejects it
    never_sent: bool = False  # Kafka clients refuse to send it (and brokers to store it)
    before: tuple[bytes, ...] = ()  # valid values sent first, with the same key
    error: str = "DecodeError"  # DeadLetter.error: the class of the refusal

    def __repr__(self) -> str:  # values can be a megabyte
        return f"Case({self.kind!r}, {self.topic!r}, field={self.field!r})"


def _splice(fields: dict[str, Any], **tokens: str) -> bytes:
    """JSON of ``fields`` with raw tokens appended (NaN, 1e999, ...: orjson cannot write them)."""
    head = orjson.dumps(fields)[:-1]
    return head + b"".join(f',"{name}":{token}'.encode() for name, token in tokens.items()) + b"}"


def _queries(tag: str) -> Iterator[Case]:
    user = f"{tag}-user"
    key = user.encode()

    def q(kind: str, **fields: Any) -> bytes:
        return orjson.dumps({"request_id": f"{tag}-{kind}", "user_id": user, **fields})

    def without(kind: str, name: str) -> bytes:
        message = {"request_id": f"{tag}-{kind}", "user_id": user, "text": "a western"}
        del message[name]
        return orjson.dumps(message)

    def case(kind: str, value: bytes | None, field: str, reason: str, **kw: Any) -> Case:
        return Case(kind, "queries", key, value, field, reason, **kw)

    good = q("x", text="a western")
    yield case(
        "not UTF-8 (Latin-1 é)", '{"text": "café"}'.encode("latin-1"), "query", "is not valid UTF-8"
    )
    yield case("UTF-16 with BOM", good.decode().encode("utf-16"), "query", "is not valid UTF-8")
    yield case(
        "UTF-8 byte order mark", b"\xef\xbb\xbf" + good, "query", "starts with a byte order mark"
    )
    yield case("not JSON (form-encoded)", b"request_id=r&user_id=u", "query", "is not valid JSON")
    yield case(
        "Python repr, not JSON", repr(orjson.loads(good)).encode(), "query", "is not valid JSON"
    )
    yield case("truncated JSON", good[: len(good) // 2], "query", "is not valid JSON")
    yield case("two JSON documents", good + b"\n" + good, "query", "is not valid JSON")
    yield case("empty value", b"", "query", "message is empty")
    yield case("whitespace only", b" \n\t ", "query", "is not valid JSON")
    yield case("null value (no bytes)", None, "query", "message has no value")
    yield case("JSON array", b"[" + good + b"]", "query", "must be a JSON object, not an array")
    yield case("JSON string", b'"a western"', "query", "must be a JSON object, not a string")
    yield case("JSON number", b"42", "query", "must be a JSON object, not a number")
    yield case("JSON null", b"null", "query", "must be a JSON object, not null")
    yield case("JSON boolean", b"true", "query", "must be a JSON object, not a boolean")
    yield case(
        f"nesting {DEEP} levels",
        b"[" * DEEP + b"]" * DEEP,
        "query",
        "nests arrays/objects more than 1024",
    )
    yield case("no user_id", without("no user_id", "user_id"), "query.user_id", "is required")
    yield case(
        "no request_id", without("no request_id", "request_id"), "query.request_id", "is required"
    )
    yield case("null user_id", q("null user_id", user_id=None), "query.user_id", "must be a string")
    yield case("null request_id", q("x", request_id=None), "query.request_id", "must be a string")
    yield case(
        "empty user_id", q("empty user_id", user_id=""), "query.user_id", "must not be empty"
    )
    yield case("empty request_id", q("x", request_id=""), "query.request_id", "must not be empty")
    yield case(
        "numeric user_id", q("numeric user_id", user_id=42), "query.user_id", "must be a string"
    )
    yield case(
        f"user_id of {LONG_ID} chars",
        q("long user_id", user_id="u" * LONG_ID),
        "query.user_id",
        "must have at most 256 characters",
    )
    yield case(
        f"request_id of {LONG_ID} chars",
        q("x", request_id="r" * LONG_ID),
        "query.request_id",
        "must have at most 128 characters",
    )
    yield case(
        "NUL in user_id",
        q("nul user_id", user_id="u\x00"),
        "query.user_id",
        "must not contain control characters",
    )
    yield case(
        "CR LF in request_id",
        q("x", request_id=f"{tag}\r\nX-Forged: 1"),
        "query.request_id",
        "must not contain control characters",
    )
    yield case(
        "lone surrogate in user_id",
        _splice({"request_id": f"{tag}-surrogate"}, user_id='"\\udc80"'),
        "query.user_id",
        "is not valid Unicode",
    )
    yield case("k = 0", q("k 0", k=0), "query.k", "must be ≥ 1")
    yield case("k = -1", q("k -1", k=-1), "query.k", "must be ≥ 1")
    yield case("k = 10^6", q("k 1e6", k=10**6), "query.k", "must be ≤ 100")
    yield case(
        "k = 10^30 (integer literal)",
        _splice({"request_id": f"{tag}-k1e30", "user_id": user}, k="1" + "0" * 30),
        "query.k",
        "must be an integer",
    )
    yield case("k = 2.5", q("k 2.5", k=2.5), "query.k", "must be an integer")
    yield case("k = 10.0", q("k 10.0", k=10.0), "query.k", "must be an integer")
    yield case("k = true", q("k true", k=True), "query.k", "must be an integer")
    yield case('k = "5"', q("k string", k="5"), "query.k", "must be an integer")
    yield case(
        "k = NaN",
        _splice({"request_id": f"{tag}-k-nan", "user_id": user}, k="NaN"),
        "query.k",
        "must be a finite number",
    )
    yield case(
        "sent_at = Infinity",
        _splice({"request_id": f"{tag}-inf", "user_id": user}, sent_at="Infinity"),
        "query.sent_at",
        "must be a finite number",
    )
    yield case(
        "sent_at = 1e999",
        _splice({"request_id": f"{tag}-1e999", "user_id": user}, sent_at="1e999"),
        "query.sent_at",
        "must be a finite number",
    )
    yield case("sent_at negative", q("sent_at -1", sent_at=-1), "query.sent_at", "must be ≥ 0")
    yield case(
        "sent_at in milliseconds",
        q("sent_at ms", sent_at=MILLIS),
        "query.sent_at",
        "must be ≤ 4102444800",
    )
    yield case(
        "sent_at ISO string",
        q("sent_at iso", sent_at="2024-05-01T12:00:00Z"),
        "query.sent_at",
        "must be a number",
    )
    yield case(
        "deadline_ms = 0", q("deadline 0", deadline_ms=0), "query.deadline_ms", "must be ≥ 1"
    )
    yield case(
        "deadline_ms = 10^9",
        q("deadline 1e9", deadline_ms=10**9),
        "query.deadline_ms",
        "must be ≤ 600000",
    )
    yield case(
        "text of 1 MB",
        q("1 MB text", text="x" * MB_TEXT),
        "query.text",
        "must have at most 2000 characters",
    )
    yield case("null text", q("null text", text=None), "query.text", "must be a string")
    yield case(
        "text as an array", q("text array", text=["a", "western"]), "query.text", "must be a string"
    )
    yield case(
        "filters as a string",
        q("filters string", filters="Western"),
        "query.filters",
        "must be an object",
    )
    yield case(
        "categories as a string",
        q("categories string", filters={"categories": "Western"}),
        "query.filters.categories",
        "must be a list",
    )
    yield case(
        f"{THOUSANDS} filter categories",
        q("many categories", filters={"categories": [f"c{i}" for i in range(THOUSANDS)]}),
        "query.filters.categories",
        "must have at most 20 entries",
    )
    yield case(
        f"{THOUSANDS} exclude_ids",
        q("many excludes", filters={"exclude_ids": [f"m-{i}" for i in range(THOUSANDS)]}),
        "query.filters.exclude_ids",
        "must have at most 1000 entries",
    )
    yield case(
        "empty category",
        q("empty category", filters={"categories": ["Western", ""]}),
        "query.filters.categories.1",
        "must not be empty",
    )
    yield case(
        "null in exclude_ids",
        q("null exclude", filters={"exclude_ids": [None]}),
        "query.filters.exclude_ids.0",
        "must be a string",
    )
    yield case("version 2", q("v2", v=2), "query.v", "unsupported version")
    yield case('version "1"', q("v string", v="1"), "query.v", "unsupported version")
    repeated = q("duplicate", text="a western")
    yield case(
        "duplicate request_id",
        repeated,
        "query.request_id",
        "duplicate",
        worker_only=True,
        before=(repeated,),
        error="DuplicateRequest",
    )


def _feedback(tag: str) -> Iterator[Case]:
    user = f"{tag}-user"
    key = user.encode()
    item = "Toy Story (1995)"  # in the MovieLens catalog

    def fb(**fields: Any) -> bytes:
        return orjson.dumps({"user_id": user, "item_id": item, "event": "click", **fields})

    def case(kind: str, value: bytes | None, field: str, reason: str, **kw: Any) -> Case:
        return Case(kind, "feedback", key, value, field, reason, **kw)

    yield case("not JSON (a bare word)", b"click", "feedback", "is not valid JSON")
    # a null value keyed by a user_id is no bad input on `feedback`: it forgets that user
    yield case("JSON array", b"[" + fb() + b"]", "feedback", "must be a JSON object, not an array")
    yield case("empty object", b"{}", "feedback.user_id", "is required")
    yield case(
        "no event",
        orjson.dumps({"user_id": user, "item_id": item}),
        "feedback.event",
        "is required",
    )
    yield case("unknown event", fb(event="like"), "feedback.event", "must be one of")
    yield case("event in capitals", fb(event="CLICK"), "feedback.event", "must be one of")
    yield case("null event", fb(event=None), "feedback.event", "must be one of")
    yield case("event as a number", fb(event=1), "feedback.event", "must be one of")
    yield case("null item_id", fb(item_id=None), "feedback.item_id", "must be a string")
    yield case("empty item_id", fb(item_id=""), "feedback.item_id", "must not be empty")
    yield case("empty user_id", fb(user_id=""), "feedback.user_id", "must not be empty")
    yield case(
        f"item_id of {LONG_ID} chars",
        fb(item_id="i" * LONG_ID),
        "feedback.item_id",
        "must have at most 256 characters",
    )
    yield case(
        "newline in item_id",
        fb(item_id="Toy Story\n(1995)"),
        "feedback.item_id",
        "must not contain control characters",
    )
    yield case(
        f"item_id nested {NEAR_LIMIT} levels",
        _splice({"user_id": user, "event": "click"}, item_id=NESTED),
        "feedback.item_id",
        "must be a string",
    )
    yield case("ts negative", fb(ts=-5), "feedback.ts", "must be ≥ 0")
    yield case("ts in milliseconds", fb(ts=MILLIS), "feedback.ts", "must be ≤ 4102444800")
    yield case("ts ISO string", fb(ts="2024-05-01T12:00:00Z"), "feedback.ts", "must be a number")
    yield case("ts = true", fb(ts=True), "feedback.ts", "must be a number")
    yield case(
        "ts = -Infinity",
        _splice({"user_id": user, "item_id": item, "event": "click"}, ts="-Infinity"),
        "feedback.ts",
        "must be a finite number",
    )
    yield case(
        "ts = NaN",
        _splice({"user_id": user, "item_id": item, "event": "click"}, ts="NaN"),
        "feedback.ts",
        "must be a finite number",
    )
    yield case("empty request_id", fb(request_id=""), "feedback.request_id", "must not be empty")
    yield case("numeric request_id", fb(request_id=7), "feedback.request_id", "must be a string")
    yield case('version "1"', fb(v="1"), "feedback.v", "unsupported version")
    yield case(
        "unknown item",
        fb(item_id=f"{tag}-no-such-item"),
        "feedback.item_id",
        "unknown item",
        worker_only=True,
        error="UnknownItem",
    )


def _items(tag: str) -> Iterator[Case]:
    item_id = f"{tag}-item"
    key = item_id.encode()

    def it(**fields: Any) -> bytes:
        return orjson.dumps({"item_id": item_id, "title": "Zorblax", **fields})

    def case(
        kind: str, value: bytes | None, field: str, reason: str, k: bytes | None = key
    ) -> Case:
        return Case(kind, "items", k, value, field, reason, never_sent=k is None and not value)

    yield case(
        "not UTF-8 (Latin-1 title)",
        f'{{"item_id": "{item_id}", "title": "Amélie"}}'.encode("latin-1"),
        "item",
        "is not valid UTF-8",
    )
    yield case("JSON number", b"42", "item", "must be a JSON object, not a number")
    yield case(
        "nesting 2000 levels in attributes",
        _splice({"item_id": item_id, "title": "t"}, attributes="[" * 2000 + "]" * 2000),
        "item",
        "nests arrays/objects more than 1024",
    )
    yield case("tombstone without a key", None, "item", "tombstone without a key", k=None)
    yield case(
        "tombstone, key not UTF-8", None, "item.item_id", "key is not valid UTF-8", k=b"\xff\xfe"
    )
    yield case("no item_id", orjson.dumps({"title": "Zorblax"}), "item.item_id", "is required")
    yield case("null item_id", it(item_id=None), "item.item_id", "must be a string")
    yield case("empty item_id", it(item_id=""), "item.item_id", "must not be empty", k=b"")
    yield case(
        f"item_id of {LONG_ID} chars",
        it(item_id="m" * LONG_ID),
        "item.item_id",
        "must have at most 256 characters",
        k=b"m" * LONG_ID,
    )
    yield case(
        "ANSI escape in item_id",
        it(item_id=f"{item_id}\x1b[31m"),
        "item.item_id",
        "must not contain control characters",
    )
    yield case(
        "key is not the item_id",
        it(),
        "item.item_id",
        "must equal the message key",
        k=b"another-item",
    )
    yield case(
        f"key of {HUGE_KEY // 1024} KiB",
        it(),
        "item.item_id",
        "must equal the message key",
        k=b"k" * HUGE_KEY,
    )
    yield case("empty title", it(title=""), "item.title", "is required and non-empty")
    yield case(
        "no title", orjson.dumps({"item_id": item_id}), "item.title", "is required and non-empty"
    )
    yield case("title as a number", it(title=1995), "item.title", "must be a string")
    yield case(
        "description of 1 MB",
        it(description="d" * MB_TEXT),
        "item.description",
        "must have at most 5000 characters",
    )
    yield case(
        "categories as a string", it(categories="Comedy"), "item.categories", "must be a list"
    )
    yield case("null categories", it(categories=None), "item.categories", "must be a list")
    yield case(
        f"{THOUSANDS} categories",
        it(categories=[f"c{i}" for i in range(THOUSANDS)]),
        "item.categories",
        "must have at most 50 entries",
    )
    yield case(
        f"{THOUSANDS} attributes",
        it(attributes={f"a{i}": i for i in range(THOUSANDS)}),
        "item.attributes",
        "must have at most 100 entries",
    )
    yield case(
        "attributes as a list",
        it(attributes=[["year", 1995]]),
        "item.attributes",
        "must be an object",
    )
    yield case(
        "nested attribute",
        it(attributes={"cast": {"lead": "Tom Hanks"}}),
        "item.attributes.cast",
        "must be a string, a number or true/false",
    )
    yield case(
        "attribute = NaN",
        _splice({"item_id": item_id, "title": "t"}, attributes='{"rating":NaN}'),
        "item.attributes.rating",
        "must be a finite number",
    )
    yield case(
        "attribute beyond int64",
        it(attributes={"views": 2**63}),
        "item.attributes.views",
        "must fit in 64 bits",
    )
    yield case('deleted = "false"', it(deleted="false"), "item.deleted", "must be true or false")
    yield case(
        "updated_at = 1e999",
        _splice({"item_id": item_id, "title": "t"}, updated_at="1e999"),
        "item.updated_at",
        "must be a finite number",
    )
    yield case(
        "updated_at = 1e300", it(updated_at=1e300), "item.updated_at", "must be ≤ 4102444800"
    )
    yield case("version 0", it(v=0), "item.v", "unsupported version")


def corpus(tag: str = "bad") -> list[Case]:
    """Every case, queries first; kinds are unique within a topic."""
    return [*_queries(tag), *_feedback(tag), *_items(tag)]


def markdown_table(cases: list[Case] | None = None) -> str:
    """The README table: kind, topic, field, reason."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| # | kind | topic | field | reason starts |", "|---|---|---|---|---|"]
    for n, c in enumerate(cases or corpus(), 1):
        reason = c.reason + (" (worker)" if c.worker_only else "")
        reason += " (Kafka refuses to carry it)" if c.never_sent else ""
        lines.append(f"| {n} | {cell(c.kind)} | `{c.topic}` | `{c.field}` | {cell(reason)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
