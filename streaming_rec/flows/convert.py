"""Between the wire (codec models) and the core (requests, answers, user states)."""

from __future__ import annotations

import base64
import time
from collections import OrderedDict

import numpy as np

from streaming_rec import codec
from streaming_rec.core.catalog import ItemMeta
from streaming_rec.core.offsets import PartitionOffset
from streaming_rec.core.requests import Answer, Request
from streaming_rec.core.user_state import Event, UserState
from streaming_rec.errors import BadMessage
from streaming_rec.flows.understood import filter_from_wire, understood_to_wire
from streaming_rec.schemas import (
    Blend,
    DeadLetter,
    Item,
    ItemVector,
    Query,
    Recommendation,
    RecommendedItem,
    Timings,
    UserStateRecord,
)


def item_meta(item: Item | ItemVector) -> ItemMeta:
    return ItemMeta(
        item.item_id,
        item.title,
        tuple(item.categories),
        dict(item.attributes),
        item.published_at,
    )


def item_to_vector_message(item: Item, vector: np.ndarray, model: str) -> ItemVector:
    return ItemVector(
        item_id=item.item_id,
        vector=vector,
        dim=int(vector.shape[0]),
        title=item.title,
        categories=list(item.categories),
        attributes=dict(item.attributes),
        model=model,
        updated_at=item.updated_at if item.updated_at is not None else time.time(),
        published_at=item.published_at,
    )


def query_to_request(
    query: Query, user: UserState | None, received_at: float, sent_at: float
) -> Request:
    filters = query.filters
    return Request(
        request_id=query.request_id,
        user_id=query.user_id,
        text=query.text,
        k=query.k,
        categories=frozenset(c.lower() for c in filters.categories) if filters else frozenset(),
        exclude=frozenset(filters.exclude_ids) if filters else frozenset(),
        user=user,
        queued_ms=max(0.0, (received_at - sent_at) * 1000.0),
        filter=filter_from_wire(filters),
        understand=query.understand is not False,
    )


def answer_to_recommendation(
    answer: Answer,
    model_version: str,
    worker: str,
    received_at: float,
    explore_share: float = 0.0,
    produced_at: float | None = None,
    backend: str | None = None,
) -> Recommendation:
    """The reply to ``answer``; ``received_at`` and ``produced_at`` (default: now) are Unix
    seconds of the reader's clock."""
    produced_at = time.time() if produced_at is None else produced_at
    t = answer.timings
    return Recommendation(
        request_id=answer.request_id,
        user_id=answer.user_id,
        status="ok",
        strategy=answer.strategy,
        items=[
            RecommendedItem(
                item_id=s.item_id,
                score=s.score,
                title=s.title,
                explored=s.explored,
                propensity=s.propensity,
            )
            for s in answer.items
        ],
        model_version=model_version,
        backend=backend,
        index_version=answer.index_version,
        index_size=answer.index_size,
        user_events=answer.user_events,
        user_feedback_ts=answer.user_feedback_ts,
        timings=Timings(
            queue_ms=t["queue_ms"],
            embed_ms=t["embed_ms"],
            search_ms=t["search_ms"],
            rank_ms=t["rank_ms"],
            total_ms=t["queue_ms"] + (produced_at - received_at) * 1000.0,
        ),
        produced_at=produced_at,
        worker=worker,
        explanation=_explanation(answer, explore_share),
        understood=understood_to_wire(answer),
        user_model=answer.user_model,
    )


def _explanation(answer: Answer, explore_share: float) -> Blend | None:
    w = answer.weights
    if not w:
        return None
    return Blend(
        alpha=w["alpha"],
        gamma=w["gamma"],
        beta=w["beta"],
        prior_weight=w["prior_weight"],
        learned_pairs=answer.learned_pairs,
        explore_share=explore_share,
    )


def expired_recommendation(
    query: Query, waited_s: float, model_version: str, worker: str
) -> Recommendation:
    """The explicit answer to a query older than its deadline: no items, status expired."""
    waited_ms = max(0.0, waited_s * 1000.0)
    return Recommendation(
        request_id=query.request_id,
        user_id=query.user_id,
        status="expired",
        strategy="query" if query.text.strip() else "popular",
        items=[],
        model_version=model_version,
        index_version=0,
        index_size=0,
        user_events=0,
        timings=Timings(queue_ms=waited_ms, total_ms=waited_ms),
        produced_at=time.time(),
        worker=worker,
        error=f"waited {waited_ms:.0f} ms, past its deadline",
    )


class StateCache:
    """Decoded user states, keyed by the very bytes object the table holds: a hit needs the
    table to return the same object we wrote (an identity check), so anything the table
    got elsewhere — recovery from the changelog, a rebalance — is decoded afresh."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[bytes, UserState]] = OrderedDict()

    def load(self, raw: bytes | None, user_id: str) -> UserState:
        entry = self._entries.get(user_id)
        if entry is not None and raw is not None and entry[0] is raw:
            self._entries.move_to_end(user_id)
            return entry[1]
        return state_from_bytes(raw, user_id)

    def drop(self, user_id: str) -> None:
        """Forget the cached state of ``user_id`` (the user was forgotten)."""
        self._entries.pop(user_id, None)

    def store(self, state: UserState) -> bytes:
        raw = state_to_bytes(state)
        self._entries[state.user_id] = (raw, state)
        self._entries.move_to_end(state.user_id)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return raw


def state_from_bytes(raw: bytes | None, user_id: str) -> UserState:
    """The user's state from the table (a new, empty state when there is none)."""
    if raw is None:
        return UserState(user_id)
    record = codec.decode_user_state(raw)
    return UserState(
        user_id=record.user_id,
        history=tuple(map(Event, record.history_items, record.history_events, record.history_ts)),
        events=record.events,
        feedback_ts=record.feedback_ts,
        applied=(
            PartitionOffset(record.applied_partition, record.applied_offset)
            if record.applied_partition is not None and record.applied_offset is not None
            else None
        ),
        event_ids=tuple(record.event_ids),
    )


def state_to_bytes(state: UserState) -> bytes:
    return codec.encode_user_state(
        UserStateRecord(
            user_id=state.user_id,
            history_items=[e.item_id for e in state.history],
            history_events=[e.event for e in state.history],  # type: ignore[misc]
            history_ts=[e.ts for e in state.history],
            events=state.events,
            feedback_ts=state.feedback_ts,
            applied_partition=state.applied.partition if state.applied else None,
            applied_offset=state.applied.offset if state.applied else None,
            event_ids=state.event_ids,
            updated_at=time.time(),
        )
    )


# A dead letter must fit in one producer request (Faust's default limit: 1,000,000 bytes)
# although it carries the original key twice (record key and base64) and the value in base64.
DEAD_LETTER_MAX_KEY = 16 * 1024
DEAD_LETTER_MAX_VALUE = 512 * 1024


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    exc: Exception,
    worker: str,
) -> DeadLetter:
    """The dead letter of a message; a key or value too big to copy keeps its first bytes."""
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        key=_b64(dead_letter_key(key)),
        value=_b64(None if value is None else value[:DEAD_LETTER_MAX_VALUE]),
        reason=str(exc),
        field=exc.field if isinstance(exc, BadMessage) else None,
        error=type(exc).__name__,
        worker=worker,
        at=time.time(),
        truncated=len(key or b"") > DEAD_LETTER_MAX_KEY
        or len(value or b"") > DEAD_LETTER_MAX_VALUE,
        value_size=None if value is None else len(value),
    )


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The record key of a dead letter: the original key, cut to DEAD_LETTER_MAX_KEY bytes."""
    return None if key is None else key[:DEAD_LETTER_MAX_KEY]


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")
