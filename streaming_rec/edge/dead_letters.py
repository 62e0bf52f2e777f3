"""Sending a message that does not decode to `dead-letters`, with its reason, counted."""

from __future__ import annotations

import logging

import faust

from streaming_rec import codec
from streaming_rec.edge import metrics
from streaming_rec.edge.convert import dead_letter, dead_letter_key

log = logging.getLogger(__name__)


class DeadLetters:
    """``await dead_letters.send(event, exc)`` from any agent of a worker."""

    def __init__(self, topic: faust.TopicT, worker: str) -> None:
        self.topic = topic
        self.worker = worker

    async def send(self, event: faust.EventT[bytes], exc: Exception) -> None:
        message = event.message
        log.warning(
            "dead letter from %s[%d]@%d: %s", message.topic, message.partition, message.offset, exc
        )
        metrics.MESSAGES.labels(message.topic, "dead_letter").inc()
        letter = dead_letter(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            exc,
            self.worker,
        )
        await self.topic.send(
            key=dead_letter_key(message.key), value=codec.encode_dead_letter(letter)
        )
