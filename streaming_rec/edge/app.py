"""The worker's Faust app: wiring only. The logic lives in the flows (streaming_rec.flows).

    items        ─► embed_items    (EmbedItems)      ─► item-vectors
    item-vectors ─► (every worker) IndexItems         ─► the index
    queries      ─► answer_queries (AnswerQueries)   ─► recommendations
    feedback     ─► apply_feedback (ApplyFeedback)   ─► user-state table (changelog)
                    └ item not indexed yet ─► feedback-retry ─► retry_feedback (HeldFeedback)
                                                 ─► feedback again (or dead-letters)
    feedback     ─► (every worker) CountPopularity   ─► popular-now

Each agent feeds its stream to a flow in micro-batches; a flow decodes, calls the
Recommender on the single compute thread, encodes and sends. A record the flow refuses
goes to `dead-letters` through the one bad-message policy; the agent goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust

from streaming_rec.config import Settings
from streaming_rec.core.service import Recommender
from streaming_rec.edge import metrics, poison
from streaming_rec.edge.adapters import (
    BlendFile,
    FaustSink,
    FaustTable,
    PrometheusMeter,
    ThreadCompute,
    feed,
)
from streaming_rec.edge.faust_base import (
    AgentWatch,
    add_pages,
    new_faust_app,
    raw_topics,
    worker_name,
)
from streaming_rec.edge.gcwatch import freeze_startup_objects
from streaming_rec.edge.replicated import ReplicatedState
from streaming_rec.flows.answer import AnswerQueries
from streaming_rec.flows.dedup import RecentRequests
from streaming_rec.flows.feedback import ApplyFeedback
from streaming_rec.flows.held import HeldFeedback
from streaming_rec.flows.items import EmbedItems
from streaming_rec.flows.policy import DeadLetterPolicy
from streaming_rec.topics import TopicCatalog


@dataclass(frozen=True)
class WorkerFlows:
    """The flows one worker runs, built around one Recommender."""

    answer: AnswerQueries
    feedback: ApplyFeedback
    held: HeldFeedback
    items: EmbedItems
    replicated: ReplicatedState
    worker: str


def build_flows(
    settings: Settings,
    service: Recommender,
    topics: Mapping[str, faust.TopicT],
    table: faust.types.TableT[bytes, bytes],
) -> WorkerFlows:
    """The worker's flows over Faust topics and the user-state table."""
    users, sink, meter = FaustTable(table), FaustSink(topics), PrometheusMeter()
    worker = worker_name(settings)
    policy = DeadLetterPolicy(sink, meter, worker)
    compute = ThreadCompute("srec-compute")
    blend = BlendFile(settings.data_dir / "blend.json")
    blend.load_into(service)
    show_blend(service)

    def on_learned() -> None:
        show_blend(service)
        blend.save(service)

    held = HeldFeedback(
        service.has_item, sink, policy, meter,
        feedback_topic=settings.topic("feedback"),
        hold_s=settings.unknown_item_hold_s,
    )  # fmt: skip
    return WorkerFlows(
        answer=AnswerQueries(
            service, users, sink, policy, meter, compute,
            worker=worker,
            embedded=settings.role == "rank",
            deadline_ms=settings.query_deadline_ms,
            max_skew_s=settings.max_clock_skew_s,
            reply_partitions=topics["recommendations"].partitions,
            recent=RecentRequests(settings.dedup_capacity, settings.dedup_ttl_s),
        ),
        feedback=ApplyFeedback(
            service, users, policy, meter, compute,
            event_weights=settings.event_weights,
            hold=held.hold,
            max_skew_s=settings.max_clock_skew_s,
            on_learned=on_learned,
        ),
        held=held,
        items=EmbedItems(service, sink, policy, meter, ThreadCompute("srec-items")),
        replicated=ReplicatedState(settings, service, compute, meter),
        worker=worker,
    )  # fmt: skip


def build_app(settings: Settings, service: Recommender, catalog: TopicCatalog) -> faust.App:
    """The worker's Faust app around ``service`` (built by streaming_rec.bootstrap)."""
    app = new_faust_app(
        settings,
        settings.app_id,
        table_standby_replicas=0,
        processing_guarantee=settings.processing_guarantee,
    )
    topics = raw_topics(app, settings, catalog, [spec.name for spec in catalog.all()])
    table = app.Table(
        "user-state",
        partitions=catalog.get("feedback").partitions,
        changelog_topic=topics["user-state-changelog"],
        key_type=bytes,
        value_type=bytes,
    )
    flows = build_flows(settings, service, topics, table)
    poison.forward_dead_letters(app, topics["dead-letters"], flows.worker)
    replicated = flows.replicated
    replicated.install(app)
    query_topic = topics["embedded-queries" if settings.role == "rank" else "queries"]
    within_s = settings.max_wait_ms / 1000.0

    watch = AgentWatch(app)

    @app.agent(topics["items"])
    async def embed_items(stream: faust.StreamT[bytes]) -> None:
        async with watch.running("embed_items"):
            await feed(stream, flows.items.handle, settings.item_batch, settings.item_wait_ms / 1e3)

    @app.agent(query_topic)
    async def answer_queries(stream: faust.StreamT[bytes]) -> None:
        await replicated.ready()
        if settings.gc_freeze:  # the catalog is in: keep full collections off it
            freeze_startup_objects()
        async with watch.running("answer_queries"):
            await feed(stream, flows.answer.handle, settings.max_batch, within_s)

    @app.agent(topics["feedback"])
    async def apply_feedback(stream: faust.StreamT[bytes]) -> None:
        """One event at a time (the default), or micro-batches of SREC_FEEDBACK_BATCH."""
        await replicated.ready()
        async with watch.running("apply_feedback"):
            await feed(stream, flows.feedback.handle, settings.feedback_batch, within_s)

    @app.agent(topics["feedback-retry"])
    async def retry_feedback(stream: faust.StreamT[bytes]) -> None:
        await replicated.ready()
        async with watch.running("retry_feedback"):
            await feed(stream, flows.held.handle)

    def health() -> dict[str, Any]:
        body = replicated.health(flows.worker)
        down = watch.down()
        body.update(agents_down=down, agent_crashes=watch.crashes)
        if down:
            body["ready"] = False  # an agent is down: not ready until Faust restarts it
        return body

    add_pages(app, health)
    return app


def show_blend(service: Recommender) -> None:
    """Publish the service's blend weights and learned pairs as gauges."""
    blend = service.blend()
    pairs = int(blend.pop("learned_pairs"))
    metrics.show_blend(blend, pairs)
