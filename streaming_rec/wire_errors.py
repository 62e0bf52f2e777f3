"""Why bytes are not a message: the codec's error reasons, each naming the field at fault.

``not_json`` explains a payload that is not valid JSON (naming the value to blame: NaN,
1e999, a lone surrogate, a BOM, nesting past the parser's limit); ``validation_error``
turns pydantic's first error into a DecodeError with a dotted field path and a reason in
plain words ("must be ≤ 100").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from pydantic_core import ErrorDetails

from streaming_rec.errors import DecodeError

MAX_DEPTH: Final = 1024  # arrays/objects nested in one another: the parser's (orjson's) limit
_NOT_FINITE: Final = "must be a finite number (NaN, Infinity and overflowing numbers like 1e999)"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def not_json(kind: str, raw: bytes | bytearray | memoryview | str, detail: str) -> DecodeError:
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


def json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def validation_error(kind: str, error: ErrorDetails) -> DecodeError:
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
