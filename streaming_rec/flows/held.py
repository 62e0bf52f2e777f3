"""Feedback held for its item: a click on an item created a moment earlier is not lost.

Kafka gives no order between `items` and `feedback`: a shop's first visitors of a new
product click it before the product's vector has reached the index. The feedback flow
hands such an event to ``HeldFeedback.hold``, which writes it to `feedback-retry` (so a
crash loses nothing: the original offset may be committed at once). ``HeldFeedback.handle``
reads `feedback-retry`, waits ``RETRY_EVERY_S`` after each record was written, and then:

- the item is indexed now → the original bytes go to `feedback` again, as a new record
  with a new offset, applied like any other (the per-user offset guard keeps user state
  exactly-once: a held event is not skipped as "already applied" behind later ones);
- not yet, and held less than ``hold_s`` → written to `feedback-retry` again, one attempt
  more;
- held ``hold_s`` or longer → dead-lettered as UnknownItem, naming the original record
  in `feedback`.

Why a topic and not a timer in memory: the event survives a crash or a rebalance (the
retry topic is co-partitioned with `feedback`, so the worker owning the user holds it).
Popular-now and the trainer refuse the first record (unknown item) and count the one sent
again, so every consumer counts the event once.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable

from streaming_rec import codec
from streaming_rec.errors import UnknownItem
from streaming_rec.flows.policy import DeadLetterPolicy
from streaming_rec.flows.ports import Meter, Record, Sink
from streaming_rec.schemas import HeldFeedback as HeldMessage

RETRY_TOPIC = "feedback-retry"
FEEDBACK = "feedback"
RETRY_EVERY_S = 0.5


class HeldFeedback:
    """Holds feedback on items not indexed yet and tries it again for up to ``hold_s``."""

    def __init__(
        self,
        has_item: Callable[[str], bool],
        sink: Sink,
        policy: DeadLetterPolicy,
        meter: Meter,
        *,
        feedback_topic: str,
        hold_s: float,
        retry_every_s: float = RETRY_EVERY_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.has_item = has_item
        self.sink = sink
        self.policy = policy
        self.meter = meter
        self.feedback_topic = feedback_topic  # its real name, for dead letters
        self.hold_s = hold_s
        self.retry_every_s = retry_every_s
        self.clock = clock
        self.sleep = sleep

    async def hold(self, record: Record, exc: UnknownItem) -> None:
        """Hold the `feedback` ``record`` (or dead-letter it at once when ``hold_s`` is 0)."""
        if self.hold_s <= 0 or record.value is None or record.key is None:
            await self.policy.reject(record, exc)
            return
        message = HeldMessage(
            user_id=record.key.decode("utf-8", "replace"),
            value=base64.b64encode(record.value).decode("ascii"),
            source_partition=record.partition,
            source_offset=record.offset,
            held_at=self.clock(),
        )
        await self.sink.send(RETRY_TOPIC, record.key, codec.encode_held_feedback(message))

    async def handle(self, records: list[Record]) -> None:
        """Try each held event of ``records`` again (see the module docstring)."""
        for record in records:
            try:
                held = codec.decode_held_feedback(record.value)
                original = base64.b64decode(held.value)
                item_id = codec.decode_feedback(original).item_id
            except Exception as exc:  # the product wrote it; still, never crash on one
                await self.policy.reject(record, exc)
                continue
            written_at = record.timestamp_s if record.timestamp_s is not None else held.held_at
            wait = written_at + self.retry_every_s - self.clock()
            if wait > 0:
                await self.sleep(min(wait, self.retry_every_s))
            await self._try_again(record, held, original, item_id)

    async def _try_again(
        self, record: Record, held: HeldMessage, original: bytes, item_id: str
    ) -> None:
        if self.has_item(item_id):
            await self.sink.send(FEEDBACK, record.key, original)
            self.meter.messages(record.topic, "released")
        elif self.clock() - held.held_at < self.hold_s:
            again = held.model_copy(update={"attempts": held.attempts + 1})
            await self.sink.send(RETRY_TOPIC, record.key, codec.encode_held_feedback(again))
        else:
            first = Record(
                self.feedback_topic,
                held.source_partition,
                held.source_offset,
                record.key,
                original,
            )
            reason = f"unknown item (held {self.clock() - held.held_at:.1f} s)"
            await self.policy.reject(first, UnknownItem("feedback.item_id", reason, item_id))
