"""The messages on the topics, as frozen, strictly validated pydantic models.

The JSON Schemas in ``topics/schemas/`` describe the same messages for other languages;
``streaming_rec.codec`` is the only place that turns these models into bytes and back.
On the wire vectors are base64 strings; here they are 1-D float32 numpy arrays.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
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


def _vector(value: object) -> np.ndarray:
    """A non-empty 1-D array of finite float32 numbers."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise ValueError("must be a float array")
    if value.ndim != 1 or not 0 < value.shape[0] <= MAX_DIM:
        raise ValueError(f"must be 1-D with 1..{MAX_DIM} numbers")
    array = value.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError("must contain only finite numbers")
    return array


def _base64(value: object) -> str:
    """Base64 text (the raw key or value of a dead-lettered message)."""
    if not isinstance(value, str):
        raise ValueError("must be a base64 string or null")
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be valid base64") from None
    return value


def _clip(limit: int) -> PlainValidator:
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
Vector = Annotated[np.ndarray, PlainValidator(_vector)]
Base64 = Annotated[str, PlainValidator(_base64)]


if TYPE_CHECKING:  # any sequence type-checks; at run time lists become tuples
    Categories = Sequence[str]
    FilterCategories = Sequence[str]
    ExcludeIds = Sequence[str]
    HistoryItems = Sequence[str]
    HistoryEvents = Sequence[Event]
    HistoryTs = Sequence[float]
    EventIds = Sequence[str]
    RankedItems = Sequence["RecommendedItem"]
    AttributeValues = Sequence[str | int | float | bool]
    CategoryGroups = Sequence[Sequence[str]]
    Facets = Sequence["UnderstoodFacet"]
else:
    Categories = Annotated[tuple[Category, ...], Field(strict=False, max_length=50)]
    FilterCategories = Annotated[tuple[Category, ...], Field(strict=False, max_length=20)]
    ExcludeIds = Annotated[tuple[Id, ...], Field(strict=False, max_length=1000)]
    HistoryItems = Annotated[tuple[str, ...], Field(strict=False, max_length=10_000)]
    HistoryEvents = Annotated[tuple[Event, ...], Field(strict=False, max_length=10_000)]
    HistoryTs = Annotated[tuple[float, ...], Field(strict=False, max_length=10_000)]
    EventIds = Annotated[tuple[RequestId, ...], Field(strict=False, max_length=1000)]
    RankedItems = Annotated[tuple["RecommendedItem", ...], Field(strict=False, max_length=MAX_K)]
    AttributeValues = Annotated[
        tuple[AttributeValue, ...], Field(strict=False, min_length=1, max_length=100)
    ]
    CategoryGroups = Annotated[tuple[FilterCategories, ...], Field(strict=False, max_length=10)]
    Facets = Annotated[tuple["UnderstoodFacet", ...], Field(strict=False, max_length=50)]


class Message(BaseModel):
    """Base of every message: frozen, strict (no "5" for 5, no true for 1), finite numbers."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", allow_inf_nan=False)


class AttributeCondition(Message):
    """Conditions on one attribute, all of which must hold (core/filters.Condition): ``eq``
    (strings case-insensitively, booleans only equal booleans), ``one_of``, ``none_of``
    (an item without the attribute passes), and the number bounds ``gt``/``gte``/``lt``/
    ``lte``. At least one is required; unset ones are left out on the wire."""

    eq: AttributeValue | None = None
    one_of: AttributeValues | None = None
    none_of: AttributeValues | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> AttributeCondition:
        if all(getattr(self, op) is None for op in type(self).model_fields):
            raise ValueError("needs one of eq, one_of, none_of, gt, gte, lt, lte")
        return self

    @model_serializer(mode="wrap")
    def _set_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


FilterAttributes = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=100)], AttributeCondition],
    Field(max_length=20),
]
_V1_FILTERS = ("categories", "exclude_ids")


class Filters(Message):
    """Hard filters. v1 had ``categories`` (any of them) and ``exclude_ids``; the others
    are optional and left out on the wire when unset, so a v1 reader sees v1 filters."""

    categories: FilterCategories = ()
    exclude_ids: ExcludeIds = ()
    category_groups: CategoryGroups = ()  # one category of each group (all groups hold)
    exclude_categories: FilterCategories = ()
    attributes: FilterAttributes = Field(default_factory=dict)
    published_after: InputTime | None = None  # an item's published_at ≥ this (Unix s)
    published_before: InputTime | None = None  # an item's published_at < this (Unix s)

    @model_serializer(mode="wrap")
    def _set_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if k in _V1_FILTERS or v}


class ReplyTo(Message):
    """Where the answer to a query goes: a partition of `recommendations` that the asking
    client reads (Kafka's request-reply pattern), instead of the partition of its user_id."""

    partition: Annotated[int, Field(ge=0, le=100_000)]


class Query(Message):
    v: Version = VERSION
    request_id: RequestId
    user_id: Id
    text: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 10
    filters: Filters | None = None
    sent_at: InputTime | None = None
    deadline_ms: Annotated[int, Field(ge=1, le=600_000)] | None = None
    reply_to: ReplyTo | None = None  # where the answer goes (default: keyed by user_id)
    understand: bool | None = None  # False: the text is not parsed into filters (None: on)


class Feedback(Message):
    v: Version = VERSION
    user_id: Id
    item_id: Id
    event: Event
    ts: InputTime | None = None
    request_id: RequestId | None = None
    event_id: RequestId | None = None  # a retried event repeats it: applied once per user


class Item(Message):
    v: Version = VERSION
    item_id: Id
    deleted: bool = False
    title: Annotated[str, Field(max_length=500, validate_default=True)] = ""
    description: Annotated[str, Field(max_length=5000)] = ""
    categories: Categories = ()
    attributes: Attributes = Field(default_factory=dict)
    updated_at: InputTime | None = None
    published_at: InputTime | None = None  # when it appeared (news, releases): recency

    @field_validator("title")
    @classmethod
    def _title_unless_deleted(cls, title: str, info: ValidationInfo) -> str:
        if not title and not info.data.get("deleted", False):
            raise ValueError("is required and non-empty unless the item is deleted")
        return title


class _WithArrays(Message):
    """Equality that compares numpy fields by value."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, n), getattr(other, n)) for n in type(self).model_fields)

    __hash__ = None  # type: ignore[assignment]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)


class ItemVector(_WithArrays):
    v: Version = VERSION
    item_id: Id
    vector: Vector
    dim: Annotated[int, Field(ge=1, le=MAX_DIM)]
    factors: Vector | None = None
    title: Title
    categories: Categories = ()
    attributes: Attributes = Field(default_factory=dict)
    model: Annotated[str, Field(min_length=1, max_length=256)]
    updated_at: Timestamp
    published_at: Timestamp | None = None
    # the trainer's refresh that made ``factors``: a worker with the sequence model applies
    # them together with the user-side model of the same version (flows/sequence.py)
    factors_version: Annotated[str, Field(min_length=1, max_length=256)] | None = None

    @field_validator("vector")
    @classmethod
    def _unit_length(cls, vector: np.ndarray) -> np.ndarray:
        norm = float(np.linalg.norm(vector))
        if abs(norm - 1.0) > 1e-3:
            raise ValueError(f"must be L2-normalised (norm is {norm:.4g})")
        return vector

    @field_validator("dim")
    @classmethod
    def _dim_matches(cls, dim: int, info: ValidationInfo) -> int:
        vector = info.data.get("vector")
        if vector is not None and vector.shape[0] != dim:
            raise ValueError(f"must equal the vector's length ({vector.shape[0]})")
        return dim


class RecommendedItem(Message):
    item_id: Id
    score: float
    title: Annotated[str, Field(max_length=500)] = ""
    explored: bool = False  # shown in an exploration slot, not for its score
    propensity: Annotated[float, Field(ge=0, le=1)] = 1.0


class Blend(Message):
    """The weights the answer was ranked with (learned online from clicks)."""

    alpha: Annotated[float, Field(ge=0)]
    gamma: Annotated[float, Field(ge=0)]
    beta: Annotated[float, Field(ge=0)]
    prior_weight: Annotated[float, Field(ge=0)]
    learned_pairs: Count = 0
    explore_share: Annotated[float, Field(ge=0, le=1)] = 0.0


class Timings(Message):
    queue_ms: Millis = 0.0
    embed_ms: Millis = 0.0
    search_ms: Millis = 0.0
    rank_ms: Millis = 0.0
    total_ms: Millis = 0.0


class EmbeddedQuery(_WithArrays):
    """Internal (topology "embed → rank"): a query whose text an embed-only worker has
    encoded, on its way to the rank worker that owns the user. ``source_*`` name the
    original message in ``queries``: the rank worker deduplicates and applies deadlines by
    them, so a redelivered query embedded twice is still one query."""

    v: Version = VERSION
    query: Query
    vector: Vector | None = None  # the encoded text; None for an empty text ("for you")
    model: Annotated[str, Field(min_length=1, max_length=256)]
    embed_ms: Millis = 0.0
    embedded_by: Name
    embedded_at: Timestamp
    source_partition: Count
    source_offset: Count
    source_ts: Timestamp  # the original record's time (s): queue time and deadlines


class Recommendation(Message):
    v: Version = VERSION
    request_id: RequestId
    user_id: Id
    status: Status
    strategy: Strategy
    items: RankedItems = ()
    model_version: Name
    backend: Name | None = None  # the encoder implementation (onnx-fp32, ...)
    index_version: Count
    index_size: Count
    user_events: Count
    user_feedback_ts: Timestamp | None = None
    timings: Timings
    produced_at: Timestamp
    worker: Name
    error: Annotated[str, _clip(2000)] | None = None
    explanation: Blend | None = None
    understood: Understood | None = None  # what the query was read as, and the filters
    user_model: Name | None = None  # the sequence model's version that made u_f, if any


class UnderstoodFacet(Message):
    """One thing a query was read as: ``label`` to show ("price ≤ 1000"), ``span`` (the
    query's words it came from; empty when it came from the client's filters), ``field``
    ("categories", "exclude_categories", "attributes.<name>", "published_at", "recency")."""

    label: Annotated[str, _clip(200)]
    span: Annotated[str, _clip(200)] = ""
    field: Annotated[str, Field(min_length=1, max_length=200)]


class Understood(Message):
    """How a query was read (absent when it had neither parsed parts nor filters):
    ``text``, the part that was encoded; ``filters``, the hard filters applied (the
    client's, winning, merged with the parsed ones); ``facets``, the parsed parts to show;
    ``recency``, whether recent items were preferred; ``matching``, how many catalog items
    pass the filters (0 explains an empty answer)."""

    text: Annotated[str, _clip(MAX_TEXT)] = ""
    filters: Filters | None = None
    facets: Facets = ()
    recency: bool = False
    matching: Count | None = None


class DeadLetter(Message):
    v: Version = VERSION
    topic: Annotated[str, Field(min_length=1, max_length=249)]
    partition: Count
    offset: Count
    key: Base64 | None = None
    value: Base64 | None = None
    reason: Annotated[str, _clip(4000)]
    field: Annotated[str, _clip(1000)] | None = None
    error: Annotated[str, Field(min_length=1, max_length=200)]
    worker: Name
    at: Timestamp
    truncated: bool = False  # key/value hold only their first bytes (the original was too big)
    value_size: Count | None = None  # the original value's length in bytes
    last_offset: Count | None = None  # the end of an unreadable range starting at offset


class HeldFeedback(Message):
    """Internal (`feedback-retry`): a feedback event on an item the worker did not know yet,
    held to be tried again. ``value`` is the original record's value (base64, unchanged
    bytes); ``source_*`` say where it was first read in `feedback`; ``held_at`` is when (s,
    the worker's clock); ``attempts`` counts the tries so far."""

    v: Version = VERSION
    user_id: Id
    value: Base64
    source_partition: Count
    source_offset: Count
    held_at: Timestamp
    attempts: Annotated[int, Field(ge=1, le=1_000_000)] = 1


class SequenceModelPart(Message):
    """Internal (`sequence-models`, written by the trainer): one part of a sequence model
    (core/sequence.py, ``SequenceModel.to_bytes``), cut so that every message stays far
    below Kafka's 1 MiB limit; the model is parts 0..parts-1 of one ``version`` joined, of
    ``size`` bytes and SHA-256 ``sha256``. A worker uses it once its index has read
    `item-vectors` up to ``item_vectors_end`` (partition number as text → the next offset
    after the item factors of the same version)."""

    v: Version = VERSION
    version: Annotated[str, Field(min_length=1, max_length=256)]
    part: Annotated[int, Field(ge=0, le=9_999)]
    parts: Annotated[int, Field(ge=1, le=10_000)]
    data: Base64
    size: Annotated[int, Field(ge=1, le=1 << 34)]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    factor_dim: Annotated[int, Field(ge=1, le=MAX_DIM)]
    item_vectors_end: dict[Annotated[str, Field(pattern="^[0-9]{1,6}$")], Count] = Field(
        default_factory=dict, max_length=100_000
    )
    events: Count = 0
    fit_s: Annotated[float, Field(ge=0)] = 0.0
    trained_at: Timestamp

    @model_validator(mode="after")
    def _part_below_parts(self) -> SequenceModelPart:
        if self.part >= self.parts:
            raise ValueError(f"part {self.part} must be below parts ({self.parts})")
        return self


class UserStateRecord(Message):
    """Internal (written by the workers). The history is three parallel arrays, oldest
    first — compact and quick to (de)code, since it is rewritten on every event."""

    v: Version = VERSION
    user_id: Id
    history_items: HistoryItems = ()
    history_events: HistoryEvents = ()
    history_ts: HistoryTs = ()
    events: Count = 0
    feedback_ts: Timestamp | None = None
    applied_partition: Count | None = None
    applied_offset: Count | None = None
    event_ids: EventIds = ()  # the newest event_ids applied (a repeat is skipped)
    updated_at: Timestamp

    @model_validator(mode="after")
    def _parallel(self) -> UserStateRecord:
        n = len(self.history_items)
        if len(self.history_events) != n or len(self.history_ts) != n:
            raise ValueError("history_items, history_events and history_ts differ in length")
        return self
