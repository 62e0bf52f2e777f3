"""What every worker replicates in full: the item index (from `item-vectors`, with its
snapshots) and popular-now (from `feedback`), and when the worker may call itself ready
(both replicas caught up, and the index covering the catalog: edge/readiness.py).

    item-vectors    ─► TopicReplica ─► IndexItems         ─► the service's index and catalog
    sequence-models ─► TopicReplica ─► ApplySequenceModel ─► the service's sequence model
    feedback        ─► TopicReplica ─► CountPopularity    ─► the service's popular-now counts

Popular-now starts once the index has caught up, so that it judges each event against the
whole catalog (the same verdict as the feedback flow). Item updates wait while a snapshot
is written (it reads the index on a thread of its own); queries do not: searching and
saving both only read the index.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from streaming_rec.config import Settings
from streaming_rec.core.service import Recommender
from streaming_rec.edge import metrics
from streaming_rec.edge.adapters import ThreadCompute
from streaming_rec.edge.readiness import ItemsProgress
from streaming_rec.edge.replica import TopicReplica, replica_handler
from streaming_rec.edge.snapshots import ItemSnapshots
from streaming_rec.flows.items import IndexItems
from streaming_rec.flows.popularity import CountPopularity
from streaming_rec.flows.ports import Meter, Record
from streaming_rec.flows.sequence import SEQUENCE_MODELS, ApplySequenceModel, FactorGate

log = logging.getLogger(__name__)


class ReplicatedState:
    """The index and popular-now replicas of one worker, its items snapshots and its
    readiness. ``install(app)`` adds their tasks and timer to the worker's Faust app."""

    def __init__(
        self, settings: Settings, service: Recommender, compute: ThreadCompute, meter: Meter
    ) -> None:
        self.settings = settings
        self.service = service
        self.compute = compute
        self.items_lock = asyncio.Lock()
        self.snapshot_writer = ThreadCompute("srec-snapshot")
        self.snapshots = ItemSnapshots(settings, service)
        # the sequence model (SREC_SEQUENCE_MODEL) and the gate that keeps its item factors
        # back until it is swapped in with them (flows/sequence.py)
        gate = FactorGate(service) if settings.sequence_model and settings.factor_dim else None
        index_items = IndexItems(service, compute, self._show_index, gate)
        self.index_items = index_items
        self.sequence: TopicReplica | None = None
        self.sequence_flow: ApplySequenceModel | None = None
        if gate is not None:
            self.sequence_flow = ApplySequenceModel(
                service, gate, compute, lambda: self.index.position
            )
            self.sequence = TopicReplica(
                settings,
                settings.topic(SEQUENCE_MODELS),
                replica_handler(self._locked(self.sequence_flow.handle)),
            )
        self.index = TopicReplica(
            settings,
            settings.topic("item-vectors"),
            replica_handler(self._locked(self._index_then_model(index_items.handle))),
            start=self.snapshots.load(),
            on_stale=self._forget_snapshot,
        )
        popularity = CountPopularity(service, meter, compute, max_skew_s=settings.max_clock_skew_s)
        self.popularity = TopicReplica(
            settings, settings.topic("feedback"), replica_handler(popularity.handle)
        )
        self.items = ItemsProgress(settings)

    def install(self, app: faust.App) -> None:
        """Run the replicas (and the snapshots, if SREC_SNAPSHOT_INTERVAL_S > 0) in ``app``."""
        app.task(self.index.run)
        if self.sequence is not None:
            app.task(self.sequence.run)
        app.task(self._follow_items)
        app.task(self._replicate_popularity)
        if self.settings.snapshot_interval_s > 0:
            app.task(self._first_snapshot)
            app.timer(self.settings.snapshot_interval_s, name="snapshot_items")(
                self._snapshot_on_timer
            )

    def is_ready(self) -> bool:
        """The index covers every item `items` held at start (embedded by whichever worker
        owns its partition), and popular-now has read what `feedback` held at start."""
        return (
            self.index.caught_up.is_set()
            and self.items.covered.is_set()
            and self.popularity.caught_up.is_set()
            and (self.sequence is None or self.sequence.caught_up.is_set())
        )

    async def ready(self) -> None:
        """Wait until ready (agents answer only then)."""
        if self.is_ready():
            return
        await self.index.caught_up.wait()
        await self.items.covered.wait()
        await self.popularity.caught_up.wait()
        if self.sequence is not None:
            await self.sequence.caught_up.wait()
        metrics.READY.set(1)
        log.info(
            "ready: %d items in the index (version %d), %s",
            self.service.index_size,
            self.service.index_version,
            self.items.describe(),
        )

    def health(self, worker: str) -> dict[str, Any]:
        """The body of `/health`."""
        return {
            "ready": self.is_ready(),
            "worker": worker,
            "index_items": self.service.index_size,
            "index_version": self.service.index_version,
            "items": self.items.describe(),
            "model": self.service.model_version,
            "backend": self.service.backend,
            "model_mismatch": len(self.index_items.mismatched),
            "user_model": self.service.sequence.version if self.service.sequence else None,
        }

    @staticmethod
    def _show_index(size: int, version: int) -> None:
        metrics.INDEX_SIZE.set(size)
        metrics.INDEX_VERSION.set(version)

    def _index_then_model(self, handle: Any) -> Any:
        """The index handler, then a waiting sequence model told what the index read."""

        async def index_then_model(records: list[Record]) -> None:
            await handle(records)
            if self.sequence_flow is not None:
                await self.sequence_flow.items_read(records)

        return index_then_model

    def _locked(self, handle: Any) -> Any:
        async def locked(records: list[Record]) -> None:
            async with self.items_lock:
                await handle(records)

        return locked

    async def _follow_items(self) -> None:
        await self.items.run(self.index.position)

    async def _replicate_popularity(self) -> None:
        await self.index.caught_up.wait()
        await self.popularity.run()

    async def _forget_snapshot(self, problem: str) -> None:
        async with self.items_lock:
            await self.compute(self.snapshots.forget, problem)

    async def _write_snapshot(self) -> None:
        async with self.items_lock:
            offsets = dict(self.index.position)  # read first: never ahead of the items
            await self.snapshot_writer(self.snapshots.save, offsets)

    async def _first_snapshot(self) -> None:
        """Once caught up (a fresh build or a long tail is worth keeping at once)."""
        await self.index.caught_up.wait()
        await self._write_snapshot()

    async def _snapshot_on_timer(self) -> None:
        if self.index.caught_up.is_set():
            await self._write_snapshot()
