"""The Faust app: topics, the user-state table and three thin agents.

    items     ─► embed_items      ─► item-vectors ─► (every worker) index replica
    queries   ─► answer_queries   ─► recommendations
    feedback  ─► apply_feedback   ─► user-state table (changelog)
    feedback  ─► (every worker) popularity replica

Agents decode raw bytes, call the Recommender on the single compute thread, encode and
send. A message that does not decode goes to `dead-letters`; the agent goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import faust
import numpy as np
import orjson
from aiokafka import ConsumerRecord

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.core.catalog import item_text
from streaming_rec.core.learner import BlendLearner
from streaming_rec.core.service import Recommender
from streaming_rec.core.user_state import UserState
from streaming_rec.edge import faust_fixes, metrics
from streaming_rec.edge.convert import (
    StateCache,
    answer_to_recommendation,
    expired_recommendation,
    item_meta,
    item_to_vector_message,
    query_to_request,
)
from streaming_rec.edge.dead_letters import DeadLetters
from streaming_rec.edge.dedup import RecentRequests
from streaming_rec.edge.kafka_config import faust_broker_kwargs
from streaming_rec.edge.replica import TopicReplica, item_vector_updates
from streaming_rec.edge.snapshots import ItemSnapshots
from streaming_rec.errors import DecodeError
from streaming_rec.schemas import EmbeddedQuery, Query
from streaming_rec.topics import TopicCatalog

log = logging.getLogger(__name__)
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def take_events(
    stream: faust.StreamT[bytes], most: int, within: float
) -> AsyncIterator[list[faust.EventT[bytes]]]:
    """Micro-batches of events (each keeps its topic/partition/offset for dead letters)."""
    return cast(AsyncIterator[list[faust.EventT[bytes]]], stream.take_events(most, within=within))  # type: ignore[attr-defined]


class BlendFile:
    """The learned blend weights in the worker's data folder, so that a restarted worker
    goes on from what it learned (a new worker starts from the configured weights)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load_into(self, learner: BlendLearner) -> None:
        if not self.path.exists():
            return
        try:
            saved = orjson.loads(self.path.read_bytes())
            learner.restore(saved)
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("unreadable %s (%s): starting from the configured blend", self.path, exc)
            return
        log.info("blend weights restored from %s: %s", self.path, learner.as_dict())

    def save(self, learner: BlendLearner) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({**learner.as_dict(), "learned_pairs": learner.updates}))
        tmp.replace(self.path)


async def one_at_a_time(
    stream: faust.StreamT[bytes],
) -> AsyncIterator[list[faust.EventT[bytes]]]:
    """The stream's events as batches of one (no batch timer)."""
    async for event in stream.events():
        yield [event]


@dataclasses.dataclass(frozen=True)
class Incoming:
    """A query as the answering agent reads it, whichever topic it came from."""

    query: Query
    where: tuple[int, int]  # (partition, offset) of the message in `queries`
    sent_at: float
    vector: np.ndarray | None = None  # encoded by an embed-only worker
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
        if message.query.text.strip():
            raise DecodeError("embedded_query.vector", "missing for a query with text")
    elif message.vector.shape[0] != dim:
        raise DecodeError(
            "embedded_query.vector", f"has {message.vector.shape[0]} dimensions, not {dim}"
        )


def new_faust_app(settings: Settings, app_id: str, **extra: Any) -> faust.App:
    """A Faust app with what every worker role shares: the broker and its credentials,
    in-memory tables, the web port on SREC_WEB_HOST, acks=all, no topic declaration, the
    group's session timeouts."""
    faust_fixes.apply()
    return faust.App(
        app_id,
        **faust_broker_kwargs(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_host,
        web_in_thread=False,
        topic_allow_declare=False,  # topics come from topics/ (streaming-rec topics)
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.0,
        stream_wait_empty=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        **extra,
    )


def build_app(settings: Settings, service: Recommender, catalog: TopicCatalog) -> faust.App:
    """The worker's Faust app around ``service`` (built by streaming_rec.bootstrap)."""
    app = new_faust_app(
        settings,
        settings.app_id,
        table_standby_replicas=0,
        processing_guarantee=settings.processing_guarantee,
    )
    topics = {
        spec.name: app.topic(settings.topic(spec.name), partitions=spec.partitions, **RAW)
        for spec in catalog.all()
    }
    users = app.Table(
        "user-state",
        partitions=catalog.get("feedback").partitions,
        changelog_topic=topics["user-state-changelog"],
        key_type=bytes,
        value_type=bytes,
    )
    states = StateCache()
    recent_requests = RecentRequests()  # a user's query repeating a recent request_id
    blend = BlendFile(settings.data_dir / "blend.json")
    blend.load_into(service.learner)
    service.weights = service.learner.weights
    metrics.show_blend(service.learner.as_dict(), service.learner.updates)
    compute = ThreadPoolExecutor(1, thread_name_prefix="srec-compute")
    item_encoder = ThreadPoolExecutor(1, thread_name_prefix="srec-items")
    worker = settings.worker_name or f"{socket.gethostname()}:{os.getpid()}"
    model_version = service.embedder.name

    async def on_compute(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(compute, fn, *args)

    to_dead_letters = DeadLetters(topics["dead-letters"], worker).send

    # --- the index replica and popular-now, on every worker ------------------------------
    # Item updates wait while a snapshot is written (it reads the index on a thread of its
    # own); queries do not: searching and saving both only read the index.
    items_lock = asyncio.Lock()
    snapshot_writer = ThreadPoolExecutor(1, thread_name_prefix="srec-snapshot")

    async def apply_item_vectors(records: Sequence[ConsumerRecord]) -> None:
        latest = dict(item_vector_updates(records))  # the last update of each item wins
        upserts = [(item_meta(v), v.vector, v.factors) for v in latest.values() if v is not None]
        deletes = [item_id for item_id, v in latest.items() if v is None]
        async with items_lock:
            await on_compute(service.apply_items, upserts, deletes)
        metrics.INDEX_SIZE.set(len(service.index))
        metrics.INDEX_VERSION.set(service.index.version)

    async def count_popularity(records: Sequence[ConsumerRecord]) -> None:
        events = []
        for record in records:
            try:
                fb = codec.decode_feedback(record.value)
            except DecodeError:
                continue  # the feedback agent dead-letters it
            events.append(
                (fb.item_id, fb.event, fb.ts if fb.ts is not None else record.timestamp / 1000)
            )
        await on_compute(service.observe_popularity, events)

    snapshots = ItemSnapshots(settings, service)
    start = snapshots.load()

    async def forget_snapshot(problem: str) -> None:
        async with items_lock:
            await on_compute(snapshots.forget, problem)

    async def write_snapshot() -> None:
        async with items_lock:
            position = dict(index_replica.position)  # read first: never ahead of the items
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(snapshot_writer, snapshots.save, position)

    index_replica = TopicReplica(
        settings,
        settings.topic("item-vectors"),
        apply_item_vectors,
        start=start,
        on_stale=forget_snapshot,
    )
    popularity_replica = TopicReplica(settings, settings.topic("feedback"), count_popularity)

    @app.task
    async def replicate_index() -> None:
        await index_replica.run()

    @app.task
    async def replicate_popularity() -> None:
        await popularity_replica.run()

    if settings.snapshot_interval_s > 0:

        @app.task
        async def first_snapshot() -> None:
            """Once caught up (a fresh build or a long tail is worth keeping at once)."""
            await index_replica.caught_up.wait()
            await write_snapshot()

        @app.timer(interval=settings.snapshot_interval_s)
        async def snapshot_items() -> None:
            if index_replica.caught_up.is_set():
                await write_snapshot()

    def is_ready() -> bool:
        return index_replica.caught_up.is_set() and popularity_replica.caught_up.is_set()

    async def ready() -> None:
        """Agents answer only once the index and popular-now have caught up."""
        if not is_ready():
            await index_replica.caught_up.wait()
            await popularity_replica.caught_up.wait()
            metrics.READY.set(1)
            log.info(
                "ready: %d items in the index (version %d)",
                len(service.index),
                service.index.version,
            )

    # --- agents ----------------------------------------------------------------------------
    @app.agent(topics["items"])
    async def embed_items(stream: faust.StreamT[bytes]) -> None:
        async for events in take_events(stream, settings.item_batch, 0.05):
            latest: dict[str, Any] = {}
            for event in events:
                try:
                    item = codec.decode_item(event.key, event.value)
                except DecodeError as exc:
                    await to_dead_letters(event, exc)
                    continue
                latest[item.item_id] = item
            upserts = [item for item in latest.values() if not item.deleted]
            texts = [item_text(i.title, i.description, i.categories) for i in upserts]
            loop = asyncio.get_running_loop()
            vectors = await loop.run_in_executor(item_encoder, service.embed_items, texts)
            for item, vector in zip(upserts, vectors, strict=True):
                message = item_to_vector_message(item, vector, model_version)
                await topics["item-vectors"].send(
                    key=item.item_id.encode(), value=codec.encode_item_vector(message)
                )
            for item in latest.values():
                if item.deleted:
                    await topics["item-vectors"].send(key=item.item_id.encode(), value=None)
            metrics.MESSAGES.labels(settings.topic("items"), "ok").inc(len(latest))

    # queries come plain (`queries`, SREC_ROLE=all) or encoded by an embed-only worker
    # (`embedded-queries`, SREC_ROLE=rank); either way one Incoming per message
    def plain_query(event: faust.EventT[bytes]) -> Incoming:
        query = codec.decode_query(event.value)
        sent_at = query.sent_at if query.sent_at is not None else event.message.timestamp
        where = (event.message.partition, event.message.offset)
        return Incoming(query, where, sent_at)

    def embedded_query(event: faust.EventT[bytes]) -> Incoming:
        message = codec.decode_embedded_query(event.value)
        check_embedding(message, model_version, service.content_dim)
        query = message.query
        sent_at = query.sent_at if query.sent_at is not None else message.source_ts
        where = (message.source_partition, message.source_offset)  # the original message
        return Incoming(query, where, sent_at, message.vector, message.embed_ms)

    ranks_embedded = settings.role == "rank"
    read_query = embedded_query if ranks_embedded else plain_query
    query_topic = topics["embedded-queries" if ranks_embedded else "queries"]
    query_topic_name = settings.topic("embedded-queries" if ranks_embedded else "queries")

    @app.agent(query_topic)
    async def answer_queries(stream: faust.StreamT[bytes]) -> None:
        await ready()
        within = settings.max_wait_ms / 1000.0
        async for events in take_events(stream, settings.max_batch, within):
            received_at = time.time()
            requests = []
            for event in events:
                try:
                    incoming = read_query(event)
                    query = incoming.query
                    if not recent_requests.admit(query.user_id, query.request_id, incoming.where):
                        # read again after a rebalance: this worker has answered it
                        metrics.MESSAGES.labels(query_topic_name, "redelivered").inc()
                        continue
                except DecodeError as exc:
                    await to_dead_letters(event, exc)
                    continue
                sent_at = incoming.sent_at
                deadline_ms = query.deadline_ms or settings.query_deadline_ms
                if deadline_ms and (received_at - sent_at) * 1000.0 > deadline_ms:
                    late = expired_recommendation(
                        query, received_at - sent_at, model_version, worker
                    )
                    metrics.MESSAGES.labels(query_topic_name, "expired").inc()
                    await topics["recommendations"].send(
                        key=query.user_id.encode(), value=codec.encode_recommendation(late)
                    )
                    continue
                state = states.load(users.get(query.user_id.encode()), query.user_id)
                request = query_to_request(query, state, received_at, sent_at)
                if incoming.vector is not None:
                    request = dataclasses.replace(
                        request, vector=incoming.vector, embed_ms=incoming.embed_ms
                    )
                requests.append(request)
            if not requests:
                continue
            metrics.BATCH_SIZE.observe(len(requests))
            answers = await on_compute(service.recommend, requests)
            for answer in answers:
                rec = answer_to_recommendation(
                    answer, model_version, worker, received_at, service.explore_share
                )
                for stage, ms in rec.timings.model_dump().items():
                    metrics.STAGE_MS.labels(stage.removesuffix("_ms")).observe(ms)
                await topics["recommendations"].send(
                    key=answer.user_id.encode(), value=codec.encode_recommendation(rec)
                )
            metrics.MESSAGES.labels(query_topic_name, "ok").inc(len(requests))

    @app.agent(topics["feedback"])
    async def apply_feedback(stream: faust.StreamT[bytes]) -> None:
        """Feedback one event at a time (the default), or in micro-batches of up to
        SREC_FEEDBACK_BATCH for bulk replays: each user's state is then written once per
        batch (one changelog record instead of one per event), in the partition of its
        last event. Batches cost an idle worker ~0.1 core (the batch timer wakes every
        max_wait_ms), so they are off unless asked for."""
        await ready()
        if settings.feedback_batch > 1:
            within = settings.max_wait_ms / 1000.0
            batches = take_events(stream, settings.feedback_batch, within)
        else:
            batches = one_at_a_time(stream)
        async for events in batches:
            updated: dict[bytes, tuple[faust.EventT[bytes], UserState]] = {}
            applied = 0
            labels: list[tuple[str, str]] = []  # (request_id, item_id) of positive events
            for event in events:
                try:
                    fb = codec.decode_feedback(event.value)
                    if fb.item_id not in service.index:
                        raise DecodeError("feedback.item_id", "unknown item", fb.item_id)
                except DecodeError as exc:
                    await to_dead_letters(event, exc)
                    continue
                key = fb.user_id.encode()
                if key in updated:
                    state = updated[key][1]
                else:
                    state = states.load(users.get(key), fb.user_id)
                where = (event.message.partition, event.message.offset)
                if state.already_applied(*where):
                    # delivered again after a crash: the state already counts it
                    metrics.MESSAGES.labels(settings.topic("feedback"), "redelivered").inc()
                    continue
                ts = fb.ts if fb.ts is not None else event.message.timestamp
                state = service.apply_feedback(state, fb.item_id, fb.event, ts)
                updated[key] = (event, dataclasses.replace(state, position=where))
                applied += 1
                if fb.request_id is not None and settings.event_weights[fb.event] > 0:
                    labels.append((fb.request_id, fb.item_id))
            for key, (event, state) in updated.items():
                with faust_fixes.as_current_event(event):
                    users[key] = states.store(state)
            metrics.MESSAGES.labels(settings.topic("feedback"), "ok").inc(applied)
            if labels and await on_compute(service.learn, labels):
                metrics.show_blend(service.learner.as_dict(), service.learner.updates)
                blend.save(service.learner)

    # --- health and metrics -------------------------------------------------------------
    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json(
            {
                "ready": is_ready(),
                "worker": worker,
                "index_items": len(service.index),
                "index_version": service.index.version,
                "model": model_version,
            }
        )

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        from prometheus_client import generate_latest

        # aiohttp refuses a charset inside content_type; the text format is UTF-8 anyway
        body = generate_latest(metrics.REGISTRY)
        return web.bytes(body, content_type="text/plain; version=0.0.4")

    return app
