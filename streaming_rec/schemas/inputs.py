"""The messages clients write (queries, feedback, items) and the ones workers pass between
themselves on the way to an answer (item vectors, embedded queries)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from streaming_rec.schemas.fields import (
    MAX_DIM,
    MAX_K,
    MAX_TEXT,
    VERSION,
    Attributes,
    AttributeValue,
    AttributeValues,
    Categories,
    CategoryGroups,
    Count,
    Event,
    ExcludeIds,
    FilterCategories,
    Id,
    InputTime,
    Message,
    Millis,
    Name,
    RequestId,
    Timestamp,
    Title,
    Vector,
    Version,
)


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
