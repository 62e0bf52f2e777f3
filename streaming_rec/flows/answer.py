"""Answer queries: `queries` (or `embedded-queries`) → the recommend service → `recommendations`.

Per micro-batch: read each record with the topic's verdict, skip a redelivered one (same
partition and offset as a query this worker already took), refuse a client's repeated
request id, answer a query older than its deadline with an explicit ``expired`` reply, load
the user's state, then encode and rank the rest in one call on the compute thread and send
one reply each, keyed by user: to the partition the query's ``reply_to`` names (the one its
client reads), else to the partition of the user_id key.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from streaming_rec import codec
from streaming_rec.core.offsets import PartitionOffset
from streaming_rec.core.requests import Answer, Request
from streaming_rec.core.service import Recommender
from streaming_rec.errors import DecodeError
from streaming_rec.flows.convert import (
    StateCache,
    answer_to_recommendation,
    expired_recommendation,
    query_to_request,
)
from streaming_rec.flows.dedup import RecentRequests
from streaming_rec.flows.policy import (
    DEFAULT_MAX_SKEW_S,
    DeadLetterPolicy,
    event_time,
    read_query,
    visible_text,
)
from streaming_rec.flows.ports import Compute, Meter, Record, Sink, StateStore
from streaming_rec.schemas import EmbeddedQuery, Query

REPLIES = "recommendations"


@dataclasses.dataclass(frozen=True)
class Incoming:
    """A query as the answering flow reads it, whichever topic it came from."""

    query: Query
    where: PartitionOffset  # of the message in `queries` (the original, when embedded)
    sent_at: float  # s, bounded by the reader's clock
    vector: np.ndarray | None = None  # (d,) float32, encoded by an embed-only worker
    embed_ms: float = 0.0


def check_embedding(message: EmbeddedQuery, model: str, dim: int) -> None:
    """DecodeError unless the vector was made by this worker's model, in its dimension."""
    if message.model != model:
        raise DecodeError(
            "embedded_query.model",
            f"encoded by another model; this worker uses {model}",
            message.model,
        )
    if message.vector is None:
        if visible_text(message.query.text):
            raise DecodeError("embedded_query.vector", "missing for a query with text")
    elif message.vector.shape[0] != dim:
        raise DecodeError(
            "embedded_query.vector", f"has {message.vector.shape[0]} dimensions, not {dim}"
        )


class AnswerQueries:
    """The answering flow of a worker (SREC_ROLE=all reads `queries`, rank reads
    `embedded-queries`). ``handle(records)`` answers one micro-batch."""

    def __init__(
        self,
        service: Recommender,
        users: StateStore,
        sink: Sink,
        policy: DeadLetterPolicy,
        meter: Meter,
        compute: Compute,
        *,
        worker: str,
        embedded: bool = False,
        deadline_ms: int = 0,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        reply_partitions: int | None = None,
        recent: RecentRequests | None = None,
        states: StateCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.users = users
        self.sink = sink
        self.policy = policy
        self.meter = meter
        self.compute = compute
        self.worker = worker
        self.embedded = embedded
        self.deadline_ms = deadline_ms
        self.max_skew_s = max_skew_s
        self.reply_partitions = reply_partitions  # of `recommendations`; None: not checked
        self.recent = recent if recent is not None else RecentRequests()
        self.states = states if states is not None else StateCache()
        self.clock = clock

    def read(self, record: Record, now: float) -> Incoming:
        """The record as an Incoming query. Raises DecodeError."""
        if not self.embedded:
            query = read_query(record)
            return Incoming(
                query, record.where, event_time(query.sent_at, record, now, self.max_skew_s)
            )
        message = codec.decode_embedded_query(record.value)
        check_embedding(message, self.service.model_version, self.service.content_dim)
        query = message.query
        text = visible_text(query.text)
        if text != query.text:
            query = query.model_copy(update={"text": text})
        claimed = query.sent_at if query.sent_at is not None else message.source_ts
        sent_at = event_time(claimed, record, now, self.max_skew_s)
        where = PartitionOffset(message.source_partition, message.source_offset)
        vector = message.vector if text else None
        return Incoming(query, where, sent_at, vector, message.embed_ms)

    async def handle(self, records: list[Record]) -> None:
        """Answer the queries in ``records`` (one reply each, or a dead letter)."""
        received_at = self.clock()
        taken: list[tuple[Record, Request]] = []
        routes: dict[tuple[str, str], int | None] = {}  # (user, request) → reply partition
        for record in records:
            try:
                admitted = await self._admit(record, received_at)
            except Exception as exc:  # a bad message, or a bug on this one record
                await self.policy.reject(record, exc)
                continue
            if admitted is not None:
                request, route = admitted
                routes[(request.user_id, request.request_id)] = route
                taken.append((record, request))
        if not taken:
            return
        self.meter.batch(len(taken))
        answers = await self._recommend(taken)
        for answer in answers:
            rec = answer_to_recommendation(
                answer,
                self.service.model_version,
                self.worker,
                received_at,
                self.service.explore_share,
                self.clock(),
                backend=self.service.backend,
            )
            for stage, ms in rec.timings.model_dump().items():
                self.meter.stage_ms(stage.removesuffix("_ms"), ms)
            partition = routes.get((answer.user_id, answer.request_id))
            await self._send(answer.user_id, codec.encode_recommendation(rec), partition)
        self.meter.messages(records[0].topic, "ok", len(answers))

    async def _admit(self, record: Record, received_at: float) -> tuple[Request, int | None] | None:
        """The record's request and its reply partition, or None when it is redelivered or
        answered as expired."""
        incoming = self.read(record, received_at)
        query = incoming.query
        route = self.reply_partition(query)
        if not self.recent.admit(query.user_id, query.request_id, incoming.where):
            # read again after a rebalance: this worker has answered it
            self.meter.messages(record.topic, "redelivered")
            return None
        deadline_ms = query.deadline_ms or self.deadline_ms
        waited_s = received_at - incoming.sent_at
        if deadline_ms and waited_s * 1000.0 > deadline_ms:
            late = expired_recommendation(query, waited_s, self.service.model_version, self.worker)
            self.meter.messages(record.topic, "expired")
            await self._send(query.user_id, codec.encode_recommendation(late), route)
            return None
        state = self.states.load(self.users.get(query.user_id.encode()), query.user_id)
        request = query_to_request(query, state, received_at, incoming.sent_at)
        if incoming.vector is not None:
            request = dataclasses.replace(
                request, vector=incoming.vector, embed_ms=incoming.embed_ms
            )
        return request, route

    def reply_partition(self, query: Query) -> int | None:
        """The partition of `recommendations` the answer to ``query`` goes to (None: the
        user_id key's). Raises DecodeError naming ``query.reply_to.partition`` when the
        topic has no such partition."""
        if query.reply_to is None:
            return None
        partition = query.reply_to.partition
        if self.reply_partitions is not None and partition >= self.reply_partitions:
            raise DecodeError(
                "query.reply_to.partition",
                f"must be < {self.reply_partitions} (the partitions of {REPLIES})",
                partition,
            )
        return partition

    async def _send(self, user_id: str, value: bytes, partition: int | None) -> None:
        key = user_id.encode()
        if partition is None:
            await self.sink.send(REPLIES, key, value)
        else:
            await self.sink.send(REPLIES, key, value, partition=partition)

    async def _recommend(self, taken: list[tuple[Record, Request]]) -> list[Answer]:
        """Answers for the batch in one call; if that call fails, one call per request, so
        a request that breaks ranking is dead-lettered alone and the others are answered."""
        try:
            return await self.compute(self.service.recommend, [r for _, r in taken])
        except Exception:
            answers = []
            for record, request in taken:
                try:
                    answers.extend(await self.compute(self.service.recommend, [request]))
                except Exception as exc:
                    await self.policy.reject(record, exc)
            return answers
