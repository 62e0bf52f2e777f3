"""The messages workers write: recommendations (with what was understood), dead letters,
held feedback, sequence-model parts and user states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    Field,
    model_validator,
)

from streaming_rec.schemas.fields import (
    MAX_DIM,
    MAX_K,
    MAX_TEXT,
    VERSION,
    Base64,
    Count,
    EventIds,
    HistoryEvents,
    HistoryItems,
    HistoryTs,
    Id,
    Message,
    Millis,
    Name,
    RequestId,
    Status,
    Strategy,
    Timestamp,
    Version,
    clipped,
)
from streaming_rec.schemas.inputs import (
    Filters,
)

if TYPE_CHECKING:  # any sequence type-checks; at run time lists become tuples
    RankedItems = Sequence["RecommendedItem"]
    Facets = Sequence["UnderstoodFacet"]
else:
    RankedItems = Annotated[tuple["RecommendedItem", ...], Field(strict=False, max_length=MAX_K)]
    Facets = Annotated[tuple["UnderstoodFacet", ...], Field(strict=False, max_length=50)]


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
    error: Annotated[str, clipped(2000)] | None = None
    explanation: Blend | None = None
    understood: Understood | None = None  # what the query was read as, and the filters
    user_model: Name | None = None  # the sequence model's version that made u_f, if any


class UnderstoodFacet(Message):
    """One thing a query was read as: ``label`` to show ("price ≤ 1000"), ``span`` (the
    query's words it came from; empty when it came from the client's filters), ``field``
    ("categories", "exclude_categories", "attributes.<name>", "published_at", "recency")."""

    label: Annotated[str, clipped(200)]
    span: Annotated[str, clipped(200)] = ""
    field: Annotated[str, Field(min_length=1, max_length=200)]


class Understood(Message):
    """How a query was read (absent when it had neither parsed parts nor filters):
    ``text``, the part that was encoded; ``filters``, the hard filters applied (the
    client's, winning, merged with the parsed ones); ``facets``, the parsed parts to show;
    ``recency``, whether recent items were preferred; ``matching``, how many catalog items
    pass the filters (0 explains an empty answer)."""

    text: Annotated[str, clipped(MAX_TEXT)] = ""
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
    reason: Annotated[str, clipped(4000)]
    field: Annotated[str, clipped(1000)] | None = None
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
