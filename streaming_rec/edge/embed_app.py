"""The embed-only worker (SREC_ROLE=embed): queries → encoder → `embedded-queries`.

In a pool where GPU and CPU machines mix, GPU workers run this app and only encode; CPU
workers run the main app with SREC_ROLE=rank and answer `embedded-queries` next to the
user state and the index. The two topics are co-partitioned by user, so the rank worker
that owns a user's feedback receives that user's encoded queries.

The embed workers form their own consumer group (``<app_id>-embed``). Micro-batches of up
to SREC_MAX_BATCH queries (waiting at most SREC_MAX_WAIT_MS) are encoded on a thread of
their own (the EmbedQueries flow), so the event loop goes on fetching and sending.
"""

from __future__ import annotations

from typing import Any

import faust

from streaming_rec.config import Settings
from streaming_rec.core.embedder import Embedder
from streaming_rec.edge import poison
from streaming_rec.edge.adapters import FaustSink, PrometheusMeter, ThreadCompute, feed
from streaming_rec.edge.faust_base import (
    AgentWatch,
    add_pages,
    new_faust_app,
    raw_topics,
    worker_name,
)
from streaming_rec.flows.embed import EmbedQueries
from streaming_rec.flows.policy import DeadLetterPolicy
from streaming_rec.topics import TopicCatalog


def build_embed_app(settings: Settings, embedder: Embedder, catalog: TopicCatalog) -> faust.App:
    """The embed-only worker's Faust app around ``embedder``."""
    app = new_faust_app(settings, f"{settings.app_id}-embed")
    topics = raw_topics(app, settings, catalog, ("queries", "embedded-queries", "dead-letters"))
    worker = worker_name(settings)
    poison.forward_dead_letters(app, topics["dead-letters"], worker)
    sink, meter = FaustSink(topics), PrometheusMeter()
    flow = EmbedQueries(
        embedder.encode,
        embedder.name,
        sink,
        DeadLetterPolicy(sink, meter, worker),
        meter,
        ThreadCompute("srec-encoder"),
        worker=worker,
    )

    watch = AgentWatch(app)

    @app.agent(topics["queries"])
    async def embed_queries(stream: faust.StreamT[bytes]) -> None:
        async with watch.running("embed_queries"):
            await feed(stream, flow.handle, settings.max_batch, settings.max_wait_ms / 1000.0)

    def health() -> dict[str, Any]:
        down = watch.down()
        return {
            "ready": not down,
            "role": "embed",
            "worker": worker,
            "model": embedder.name,
            "agents_down": down,
            "agent_crashes": watch.crashes,
        }

    add_pages(app, health)
    return app
