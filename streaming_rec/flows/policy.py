"""One verdict per record, one bad-message policy per topic.

Every consumer of a topic judges a record with the same function here, so what one refuses
every other refuses too:

    topic             verdict             read by
    queries           read_query          AnswerQueries, EmbedQueries
    embedded-queries  read_embedded_query AnswerQueries (rank role)
    feedback          is_forget, then     ApplyFeedback, CountPopularity, the trainer
                      read_feedback
    items             read_item           EmbedItems

Only the flow that reads a topic in the workers' consumer group (one reader per record)
dead-letters what it refuses (``DeadLetterPolicy``); the replicas that read the same
topic on every worker (popular-now, the trainer) count the refusal and skip the record,
so each bad record gets exactly one dead letter.

Times that clients set are bounded (``event_time``): a claimed time more than
``max_skew_s`` ahead of the reader's clock is clamped to that clock, and a record
timestamp of −1 (a producer that sets none) falls back to the reader's clock, never to
1970. One client's clock therefore cannot outweigh everyone in popular-now, a user's
taste decay or a query's deadline.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from streaming_rec import codec
from streaming_rec.errors import BadMessage, DecodeError, UnknownItem
from streaming_rec.flows.convert import dead_letter, dead_letter_key
from streaming_rec.flows.ports import Meter, Record, Sink
from streaming_rec.schemas import Feedback, Item, Query

log = logging.getLogger(__name__)

DEFAULT_MAX_SKEW_S = 300.0


def event_time(claimed: float | None, record: Record, now: float, max_skew_s: float) -> float:
    """When something happened, in Unix seconds: the client's claim (``ts``, ``sent_at``)
    if it made one, else the record timestamp, else ``now``; never later than
    ``now + max_skew_s`` (a later time is clamped to ``now``)."""
    if claimed is None:
        claimed = record.timestamp_s
    if claimed is None or claimed > now + max_skew_s:
        return now
    return claimed


def visible_text(text: str) -> str:
    """``text`` stripped; "" when it holds no visible character (only spaces, zero-width
    characters, NUL, combining marks or other format/control characters)."""
    stripped = text.strip()
    for char in stripped:
        category = unicodedata.category(char)
        if category[0] not in "ZM" and category not in ("Cc", "Cf"):
            return stripped
    return ""


def read_query(record: Record) -> Query:
    """The query in ``record``, its text "" when nothing in it is visible.
    Raises DecodeError."""
    query = codec.decode_query(record.value)
    text = visible_text(query.text)
    return query if text == query.text else query.model_copy(update={"text": text})


@dataclass(frozen=True)
class AcceptedFeedback:
    """A feedback event every consumer agrees to count, with its bounded event time (s)."""

    feedback: Feedback
    ts: float


def is_forget(record: Record) -> bool:
    """True for a tombstone on `feedback` (a null value keyed by a user_id): "forget this
    user". It travels in the user's partition after every earlier event of theirs."""
    return record.value is None and bool(record.key)


def forgotten_user(record: Record) -> str:
    """The user_id a forget tombstone names. Raises DecodeError when the key is not UTF-8."""
    assert record.key is not None
    try:
        return bytes(record.key).decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("feedback.user_id", "key is not valid UTF-8", record.key) from None


def read_feedback(
    record: Record, has_item: Callable[[str], bool], now: float, max_skew_s: float
) -> AcceptedFeedback:
    """The feedback in ``record`` if it decodes and names a known item.
    Raises DecodeError, or UnknownItem when ``has_item`` says no."""
    feedback = codec.decode_feedback(record.value)
    if not has_item(feedback.item_id):
        raise UnknownItem("feedback.item_id", "unknown item", feedback.item_id)
    return AcceptedFeedback(feedback, event_time(feedback.ts, record, now, max_skew_s))


def read_item(record: Record) -> Item:
    """The item in ``record`` (a deleted flag included). Raises DecodeError."""
    return codec.decode_item(record.key, record.value)


class DeadLetterPolicy:
    """The bad-message policy of the consumer-group readers: log the record with its topic,
    partition and offset, count it, and send it to `dead-letters` with the reason.

    ``reject`` never raises for a bad message: a record that cannot be dead-lettered is
    logged (the flow goes on either way)."""

    def __init__(self, sink: Sink, meter: Meter, worker: str, topic: str = "dead-letters") -> None:
        self.sink = sink
        self.meter = meter
        self.worker = worker
        self.topic = topic

    async def reject(self, record: Record, exc: Exception) -> None:
        """Dead-letter ``record`` because of ``exc`` (a BadMessage, or any error raised while
        handling it, which is logged with its traceback as an internal error)."""
        if isinstance(exc, BadMessage):
            log.warning(
                "dead letter from %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc
            )
        else:
            log.exception(
                "internal error on %s[%d]@%d, dead-lettered",
                record.topic,
                record.partition,
                record.offset,
                exc_info=exc,
            )
        self.meter.messages(record.topic, "dead_letter")
        letter = dead_letter(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            exc,
            self.worker,
        )
        await self.sink.send(
            self.topic, dead_letter_key(record.key), codec.encode_dead_letter(letter)
        )


def now_s() -> float:
    """The reader's clock, Unix seconds."""
    return time.time()
