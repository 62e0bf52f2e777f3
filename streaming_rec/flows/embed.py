"""Embed queries (SREC_ROLE=embed): `queries` → the encoder → `embedded-queries`.

Dedup and deadlines are left to the rank worker, which applies them by the original
record's partition and offset (carried in the embedded query)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from streaming_rec import codec
from streaming_rec.flows.policy import DeadLetterPolicy, read_query
from streaming_rec.flows.ports import Compute, Meter, Record, Sink
from streaming_rec.schemas import EmbeddedQuery, Query

EMBEDDED = "embedded-queries"


class EmbedQueries:
    """Encodes each micro-batch of queries in one call and publishes one embedded query per
    query, keyed by user (co-partitioned with `queries`)."""

    def __init__(
        self,
        encode: Callable[[Sequence[str]], np.ndarray],
        model_version: str,
        sink: Sink,
        policy: DeadLetterPolicy,
        meter: Meter,
        encode_on: Compute,
        *,
        worker: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.encode = encode
        self.model_version = model_version
        self.sink = sink
        self.policy = policy
        self.meter = meter
        self.encode_on = encode_on
        self.worker = worker
        self.clock = clock

    async def handle(self, records: list[Record]) -> None:
        """Publish the embedded queries of ``records``."""
        decoded: list[tuple[Record, Query]] = []
        for record in records:
            try:
                decoded.append((record, read_query(record)))
            except Exception as exc:
                await self.policy.reject(record, exc)
        texts = [q.text for _, q in decoded if q.text]
        started = time.perf_counter()
        vectors = iter(await self.encode_on(self.encode, texts) if texts else ())
        embed_ms = (time.perf_counter() - started) * 1000.0
        if texts:
            self.meter.stage_ms("embed", embed_ms)
            self.meter.batch(len(texts))
        now = self.clock()
        for record, query in decoded:
            message = EmbeddedQuery(
                query=query,
                vector=next(vectors) if query.text else None,
                model=self.model_version,
                embed_ms=embed_ms if query.text else 0.0,
                embedded_by=self.worker,
                embedded_at=now,
                source_partition=record.partition,
                source_offset=record.offset,
                source_ts=record.timestamp_s if record.timestamp_s is not None else now,
            )
            await self.sink.send(
                EMBEDDED, query.user_id.encode(), codec.encode_embedded_query(message)
            )
        if records:
            self.meter.messages(records[0].topic, "ok", len(decoded))
