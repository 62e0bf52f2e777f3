"""The trainer: learns collaborative item factors and the sequence model from `feedback`
and publishes them.

    feedback ─► (all partitions) interactions ─┐  every SREC_TRAINER_INTERVAL_S:
             └► each user's ordered history ───┤  SVD → v_f, ridge map v_c → v_f,
    item-vectors ─► (all partitions) items ────┴► the sequence model over v_f (version V)
                                                   ─► item-vectors (v_f, factors_version V)
                                                   ─► sequence-models (V, in parts)

An item-vectors message without factors (a new or re-embedded item) is answered at once
with its learned factors, or with factors predicted from its content by the last map, so
a new item is retrievable in both parts before anyone clicks it. The sequence model
(SREC_SEQUENCE_MODEL, core/sequence.py) is fitted in closed form on the new factors and
sent after them, naming where item-vectors ended: workers swap both in together
(flows/sequence.py). The trainer's own messages come back with factors and are only
recorded. Fitting runs in a thread, off the event loop, in its own process: it never
stalls the workers' query path. The trainer rebuilds its statistics from the start of
`feedback` when it starts (the topic's retention bounds what it learns from).
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from aiokafka import AIOKafkaProducer, ConsumerRecord
from prometheus_client import generate_latest

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.core.factors import Interactions, Model, learn
from streaming_rec.core.sequence import Histories, SequenceModel
from streaming_rec.core.sequence import fit as fit_sequence
from streaming_rec.edge import metrics
from streaming_rec.edge.kafka_config import producer_config
from streaming_rec.edge.replica import TopicReplica, from_consumer_record
from streaming_rec.errors import BadMessage
from streaming_rec.flows.items import item_vector_updates
from streaming_rec.flows.policy import forgotten_user, is_forget, read_feedback
from streaming_rec.flows.sequence import SEQUENCE_MODELS, model_parts, new_version
from streaming_rec.schemas import ItemVector

log = logging.getLogger(__name__)


@dataclass
class TrainerState:
    interactions: Interactions = field(default_factory=Interactions)
    histories: Histories = field(default_factory=Histories)  # for the sequence model
    sequence: SequenceModel | None = None  # the last one published
    last_sequence_fit_s: float = 0.0
    items: dict[str, ItemVector] = field(default_factory=dict)
    model: Model = field(default_factory=lambda: Model({}, None))
    refreshes: int = 0
    refreshed_at_events: int = 0
    refreshed_at: float = 0.0  # time.monotonic() of the last refresh
    last_refresh_s: float = 0.0
    published: int = 0

    def factors_for(self, vector: ItemVector) -> np.ndarray | None:
        return self.model.factors_for(vector.item_id, vector.vector)


class Trainer:
    """Two topic replicas, a refresh loop and a producer; stopped by SIGTERM/SIGINT."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = TrainerState()
        self.topic = settings.topic("item-vectors")
        self.run_id = uuid.uuid4().hex[:8]  # in every version this run publishes
        self.state.histories = Histories(settings.recent_items)
        self.feedback = TopicReplica(settings, settings.topic("feedback"), self._on_feedback)
        self.item_vectors = TopicReplica(settings, self.topic, self._on_item_vectors)
        self._fitter = ThreadPoolExecutor(1, thread_name_prefix="srec-fit")
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._show_metrics()

    def ready(self) -> bool:
        return self.feedback.caught_up.is_set() and self.item_vectors.caught_up.is_set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self._producer = AIOKafkaProducer(
            **producer_config(self.settings), acks="all", enable_idempotence=True
        )
        await self._producer.start()
        web = await self._serve_health()
        tasks = self._tasks = [
            asyncio.create_task(self._feedback_after_items()),
            asyncio.create_task(self.item_vectors.run()),
            asyncio.create_task(self._refresh_loop()),
        ]
        try:
            done, _ = await asyncio.wait(
                [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task in tasks and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._producer.stop()
            if web is not None:
                await web.cleanup()
            self._fitter.shutdown(wait=False, cancel_futures=True)
            log.info("trainer stopped")

    async def _publish(
        self, vector: ItemVector, factors: np.ndarray, version: str | None = None
    ) -> asyncio.Future[Any]:
        """Send ``vector`` with ``factors`` (of the sequence model ``version``, if any);
        the future gives the record's partition and offset once written."""
        assert self._producer is not None
        update = {"factors": factors, "updated_at": time.time(), "factors_version": version}
        message = vector.model_copy(update=update)
        sent: asyncio.Future[Any] = await self._producer.send(
            self.topic, key=vector.item_id.encode(), value=codec.encode_item_vector(message)
        )
        self.state.published += 1
        metrics.TRAINER_PUBLISHED.inc()
        return sent

    async def _feedback_after_items(self) -> None:
        """Read feedback once the items are known: events are judged against them."""
        await self.item_vectors.caught_up.wait()
        await self.feedback.run()

    async def _on_feedback(self, records: Sequence[ConsumerRecord]) -> None:
        now, items = time.time(), self.state.items
        for record in records:
            consumed = from_consumer_record(record)
            try:  # the feedback flow's verdict: what the workers refuse is not learned from
                if is_forget(consumed):  # the user is forgotten: the next fit is without them
                    self.state.interactions.forget(forgotten_user(consumed))
                    self.state.histories.forget(forgotten_user(consumed))
                    continue
                fb = read_feedback(consumed, items.__contains__, now, math.inf).feedback
            except BadMessage:
                continue  # the workers dead-letter it (or hold it and send it again)
            self.state.interactions.add(fb.user_id, fb.item_id)
            self.state.histories.add(fb.user_id, fb.item_id, fb.event)

    async def _on_item_vectors(self, records: Sequence[ConsumerRecord]) -> None:
        state = self.state
        for item_id, vector in item_vector_updates([from_consumer_record(r) for r in records]):
            if vector is None:
                state.items.pop(item_id, None)
                continue
            state.items[vector.item_id] = vector
            if vector.factors is None and self.settings.factor_dim:
                factors = state.factors_for(vector)
                if factors is not None:
                    version = state.sequence.version if state.sequence else None
                    await self._publish(vector, factors, version)

    async def _refresh_loop(self) -> None:
        settings, state = self.settings, self.state
        while True:
            await asyncio.sleep(settings.trainer_check_s)
            if not settings.factor_dim or not self.ready():
                continue
            new_events = state.interactions.events - state.refreshed_at_events
            due = time.monotonic() - state.refreshed_at >= settings.trainer_interval_s
            if new_events > 0 and (due or state.refreshes == 0):
                state.refreshed_at = time.monotonic()
                await self.refresh()

    async def refresh(self) -> None:
        """Refit the factors and the map off the event loop; publish every item's v_f."""
        state = self.state
        events = state.interactions.events
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        content = {item_id: vector.vector for item_id, vector in state.items.items()}
        state.model = await loop.run_in_executor(
            self._fitter,
            learn,
            state.interactions,
            content,
            self.settings.factor_dim,
            self.settings.trainer_ridge,
        )
        sequence = await self._fit_sequence(loop)
        version = sequence.version if sequence else None
        sent = []
        for vector in list(state.items.values()):
            new = state.factors_for(vector)
            old = vector.factors
            if new is None and old is not None and np.any(old):
                new = np.zeros_like(old)  # no longer known: back to content-only
            unchanged = old is not None and new is not None and np.allclose(old, new, atol=1e-4)
            if new is not None and (version is not None or not unchanged):
                sent.append(await self._publish(vector, new, version))
        assert self._producer is not None
        await self._producer.flush()
        if sequence is not None:
            await self._publish_sequence(sequence, await asyncio.gather(*sent), events)
        state.refreshes += 1
        state.refreshed_at_events = events
        state.last_refresh_s = time.perf_counter() - started
        metrics.TRAINER_REFRESHES.inc()
        metrics.TRAINER_REFRESH_SECONDS.observe(state.last_refresh_s)
        log.info(
            "refresh %d: %d events, %d items learned, %d items published in %.1f s",
            state.refreshes,
            events,
            len(state.model.learned),
            len(state.items),
            state.last_refresh_s,
        )

    async def _fit_sequence(self, loop: asyncio.AbstractEventLoop) -> SequenceModel | None:
        """The sequence model over the new factors (SREC_SEQUENCE_MODEL), fitted off the
        event loop; None when it is off or there is nothing to fit."""
        settings, state = self.settings, self.state
        if not settings.sequence_model or not state.model.learned:
            return None
        started = time.perf_counter()
        model = await loop.run_in_executor(
            self._fitter,
            lambda: fit_sequence(
                state.histories,
                state.model.learned,
                settings.sequence_lags,
                ridge=settings.sequence_ridge,
                version=new_version(self.run_id),
            ),
        )
        state.last_sequence_fit_s = time.perf_counter() - started
        return model

    async def _publish_sequence(
        self, model: SequenceModel, written: Sequence[Any], events: int
    ) -> None:
        """Publish ``model`` on sequence-models in parts, naming where item-vectors ended
        after its factors (``written``: their record metadata)."""
        assert self._producer is not None
        end: dict[int, int] = {}
        for meta in written:
            end[meta.partition] = max(end.get(meta.partition, 0), meta.offset + 1)
        topic = self.settings.topic(SEQUENCE_MODELS)
        parts = model_parts(model, end, events, self.state.last_sequence_fit_s)
        for part in parts:
            await self._producer.send(topic, key=str(part.part).encode(), value=codec.encode(part))
        await self._producer.flush()
        self.state.sequence = model
        log.info(
            "sequence model %s: %d bytes in %d parts, fitted in %.1f s",
            model.version,
            model.nbytes,
            len(parts),
            self.state.last_sequence_fit_s,
        )

    def health(self) -> dict[str, object]:
        """The body of `/health` (and of `/ready`)."""
        s = self.state
        return {
            "ready": self.ready(),
            "events": s.interactions.events,
            "items": len(s.items),
            "learned": len(s.model.learned),
            "refreshes": s.refreshes,
            "refreshed_at_events": s.refreshed_at_events,
            "last_refresh_s": s.last_refresh_s,
            "published": s.published,
            "sequence_model": s.sequence.version if s.sequence else None,
            "last_sequence_fit_s": s.last_sequence_fit_s,
        }

    def wedged(self) -> str | None:
        """Why the trainer will not recover by itself (a task of it ended), or None."""
        ended = [t.get_name() for t in self._tasks if t.done()]
        return f"tasks ended: {', '.join(ended)}" if ended else None

    def _show_metrics(self) -> None:
        """The trainer's gauges read its state at each scrape; build info once."""
        s = self.state
        metrics.show_build("trainer", self.settings.model, "none")
        metrics.READY.set_function(lambda: 1.0 if self.ready() else 0.0)
        metrics.TRAINER_EVENTS.set_function(lambda: s.interactions.events)
        metrics.TRAINER_ITEMS.set_function(lambda: len(s.items))
        metrics.TRAINER_LEARNED.set_function(lambda: len(s.model.learned))

    async def _serve_health(self) -> web.AppRunner | None:
        """`/health` (always 200), `/ready` (503 until both topics are read), `/live` (503
        once a task of the trainer ended) and `/metrics`, on SREC_TRAINER_WEB_PORT."""
        if not self.settings.trainer_web_port:
            return None

        async def health(request: web.Request) -> web.Response:
            return web.json_response(self.health())

        async def ready(request: web.Request) -> web.Response:
            return web.json_response(self.health(), status=200 if self.ready() else 503)

        async def live(request: web.Request) -> web.Response:
            problem = self.wedged()
            if problem is not None:
                return web.json_response({"live": False, "problem": problem}, status=503)
            return web.json_response({"live": True})

        async def prometheus(request: web.Request) -> web.Response:
            body = generate_latest(metrics.REGISTRY)
            return web.Response(body=body, content_type="text/plain", charset="utf-8")

        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_get("/ready", ready)
        app.router.add_get("/live", live)
        app.router.add_get("/metrics", prometheus)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, self.settings.web_host, self.settings.trainer_web_port).start()
        return runner
