"""The building blocks of the messages: limits, field types with their validators, and
the Message base (frozen, strict, unknown fields ignored so that v1 can grow)."""

from __future__ import annotations

import binascii
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
)

EVENTS = ("click", "add_to_cart", "purchase", "skip", "dislike")
STATUSES = ("ok", "expired", "error")
STRATEGIES = ("query", "personal", "query+personal", "popular")
VERSION = 1
MAX_DIM = 65_536
MAX_TEXT = 2000
MAX_K = 100
_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
_INT64_MAX = 2**63 - 1
MAX_TIME = 4_102_444_800  # 2100-01-01 in Unix seconds: a later input time is ms or garbage


def _before_2100(seconds: float) -> float:
    if seconds > MAX_TIME:
        raise ValueError(f"must be ≤ {MAX_TIME} (2100-01-01): Unix seconds, not milliseconds")
    return seconds


Event = Literal["click", "add_to_cart", "purchase", "skip", "dislike"]
Status = Literal["ok", "expired", "error"]
Strategy = Literal["query", "personal", "query+personal", "popular"]

Id = Annotated[str, Field(min_length=1, max_length=256, pattern=_NO_CONTROL)]
RequestId = Annotated[str, Field(min_length=1, max_length=128, pattern=_NO_CONTROL)]
Category = Annotated[str, Field(min_length=1, max_length=100)]
Title = Annotated[str, Field(min_length=1, max_length=500)]
Timestamp = Annotated[float, Field(ge=0)]
InputTime = Annotated[Timestamp, AfterValidator(_before_2100)]  # a time a client sends
Millis = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0, le=_INT64_MAX)]
Name = Annotated[str, Field(max_length=256)]
Version = Annotated[int, Field(ge=VERSION, le=VERSION)]


def _attribute(value: object) -> str | int | float | bool:
    """An attribute value: a string (≤ 1000 chars), a finite number or a bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
            raise ValueError("must fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > 1000:
            raise ValueError("must have at most 1000 characters")
        return value
    raise ValueError("must be a string, a number or true/false")


def vector_value(value: object) -> np.ndarray:
    """A non-empty 1-D array of finite float32 numbers."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise ValueError("must be a float array")
    if value.ndim != 1 or not 0 < value.shape[0] <= MAX_DIM:
        raise ValueError(f"must be 1-D with 1..{MAX_DIM} numbers")
    array = value.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError("must contain only finite numbers")
    return array


def base64_text(value: object) -> str:
    """Base64 text (the raw key or value of a dead-lettered message)."""
    if not isinstance(value, str):
        raise ValueError("must be a base64 string or null")
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be valid base64") from None
    return value


def clipped(limit: int) -> PlainValidator:
    def clip(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value if len(value) <= limit else value[: limit - 3] + "..."

    return PlainValidator(clip)


AttributeValue = Annotated[str | int | float | bool, PlainValidator(_attribute)]
Attributes = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=100)], AttributeValue],
    Field(max_length=100),
]
Vector = Annotated[np.ndarray, PlainValidator(vector_value)]
Base64 = Annotated[str, PlainValidator(base64_text)]


if TYPE_CHECKING:  # any sequence type-checks; at run time lists become tuples
    Categories = Sequence[str]
    FilterCategories = Sequence[str]
    ExcludeIds = Sequence[str]
    HistoryItems = Sequence[str]
    HistoryEvents = Sequence[Event]
    HistoryTs = Sequence[float]
    EventIds = Sequence[str]
    AttributeValues = Sequence[str | int | float | bool]
    CategoryGroups = Sequence[Sequence[str]]
else:
    Categories = Annotated[tuple[Category, ...], Field(strict=False, max_length=50)]
    FilterCategories = Annotated[tuple[Category, ...], Field(strict=False, max_length=20)]
    ExcludeIds = Annotated[tuple[Id, ...], Field(strict=False, max_length=1000)]
    HistoryItems = Annotated[tuple[str, ...], Field(strict=False, max_length=10_000)]
    HistoryEvents = Annotated[tuple[Event, ...], Field(strict=False, max_length=10_000)]
    HistoryTs = Annotated[tuple[float, ...], Field(strict=False, max_length=10_000)]
    EventIds = Annotated[tuple[RequestId, ...], Field(strict=False, max_length=1000)]
    AttributeValues = Annotated[
        tuple[AttributeValue, ...], Field(strict=False, min_length=1, max_length=100)
    ]
    CategoryGroups = Annotated[tuple[FilterCategories, ...], Field(strict=False, max_length=10)]


class Message(BaseModel):
    """Base of every message: frozen, strict (no "5" for 5, no true for 1), finite numbers."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", allow_inf_nan=False)
