"""The embed-only worker (SREC_ROLE=embed): queries → encoder → `embedded-queries`.

In a pool where GPU and CPU machines mix, GPU workers run this app and only encode; CPU
workers run the main app with SREC_ROLE=rank and answer `embedded-queries` next to the
user state and the index. The two topics are co-partitioned by user, so the rank worker
that owns a user's feedback receives that user's encoded queries.

The embed workers form their own consumer group (``<app_id>-embed``). Micro-batches of up
to SREC_MAX_BATCH queries (waiting at most SREC_MAX_WAIT_MS) are encoded on a thread of
their own, so the event loop goes on fetching and sending meanwhile. A message that does
not decode is dead-lettered here; dedup and deadlines are applied by the rank worker,
by the original message's partition and offset, which the embedded query carries.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.core.embedder import Embedder
from streaming_rec.edge import metrics
from streaming_rec.edge.app import RAW, new_faust_app, take_events
from streaming_rec.edge.dead_letters import DeadLetters
from streaming_rec.errors import DecodeError
from streaming_rec.schemas import EmbeddedQuery, Query
from streaming_rec.topics import TopicCatalog


def build_embed_app(settings: Settings, embedder: Embedder, catalog: TopicCatalog) -> faust.App:
    app = new_faust_app(settings, f"{settings.app_id}-embed")
    names = ("queries", "embedded-queries", "dead-letters")
    topics = {
        name: app.topic(settings.topic(name), partitions=catalog.get(name).partitions, **RAW)
        for name in names
    }
    worker = settings.worker_name or f"{socket.gethostname()}:{os.getpid()}"
    dead_letters = DeadLetters(topics["dead-letters"], worker)
    encoder = ThreadPoolExecutor(1, thread_name_prefix="srec-encoder")
    queries_topic = settings.topic("queries")

    @app.agent(topics["queries"])
    async def embed_queries(stream: faust.StreamT[bytes]) -> None:
        within = settings.max_wait_ms / 1000.0
        async for events in take_events(stream, settings.max_batch, within):
            decoded: list[tuple[faust.EventT[bytes], Query]] = []
            for event in events:
                try:
                    decoded.append((event, codec.decode_query(event.value)))
                except DecodeError as exc:
                    await dead_letters.send(event, exc)
            texts = [q.text for _, q in decoded if q.text.strip()]
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            vectors = iter(
                await loop.run_in_executor(encoder, embedder.encode, texts) if texts else ()
            )
            embed_ms = (time.perf_counter() - started) * 1000.0
            if texts:
                metrics.STAGE_MS.labels("embed").observe(embed_ms)
                metrics.BATCH_SIZE.observe(len(texts))
            now = time.time()
            for event, query in decoded:
                message = EmbeddedQuery(
                    query=query,
                    vector=next(vectors) if query.text.strip() else None,
                    model=embedder.name,
                    embed_ms=embed_ms if query.text.strip() else 0.0,
                    embedded_by=worker,
                    embedded_at=now,
                    source_partition=event.message.partition,
                    source_offset=event.message.offset,
                    source_ts=event.message.timestamp,
                )
                await topics["embedded-queries"].send(
                    key=query.user_id.encode(), value=codec.encode_embedded_query(message)
                )
            metrics.MESSAGES.labels(queries_topic, "ok").inc(len(decoded))

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"ready": True, "role": "embed", "worker": worker, "model": embedder.name})

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        from prometheus_client import generate_latest

        body = generate_latest(metrics.REGISTRY)
        return web.bytes(body, content_type="text/plain; version=0.0.4")

    return app
