"""The worker's items snapshot in its data folder: loaded at start, written on a timer.

At start the worker loads ``<data_dir>/items-snapshot`` (index, catalog and the offsets of
`item-vectors` they cover) and its index replica reads only the records after those
offsets. A missing, damaged or foreign snapshot (another model, other dimensions, another
topic) is reported in one log line and the index is rebuilt from the whole topic; so is a
snapshot whose offsets do not fit the topic (it was recreated). While running, the worker
writes a new snapshot every ``SREC_SNAPSHOT_INTERVAL_S`` when its items changed. Saving runs
on a thread of its own while item updates wait (queries go on: saving and searching only
read the index); at a million items it takes ~25 s (docs/bench/catalog_scale.json).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from streaming_rec.config import Settings
from streaming_rec.core.catalog import Catalog
from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.service import Recommender
from streaming_rec.core.snapshot import load_items, save_items
from streaming_rec.edge import metrics
from streaming_rec.errors import SnapshotError

log = logging.getLogger(__name__)


class ItemSnapshots:
    def __init__(self, settings: Settings, service: Recommender) -> None:
        self.folder = settings.data_dir / "items-snapshot"
        self.service = service
        self.ef_search = settings.hnsw_ef_search
        self.threads = service.index.threads if isinstance(service.index, HnswIndex) else 1
        self.fingerprint: dict[str, Any] = {
            "model": service.embedder.name,
            "dim": service.index.dim,
            "factor_dim": service.factor_dim,
            "topic": settings.topic("item-vectors"),
        }
        self.saved_version: int | None = None

    def load(self) -> dict[int, int] | None:
        """Put the snapshot's items into the service; return the offsets to go on from,
        or None when the index is to be built from the beginning of the topic."""
        started = time.monotonic()
        try:
            snapshot = load_items(
                self.folder, self.fingerprint, ef_search=self.ef_search, threads=self.threads
            )
        except SnapshotError as exc:
            if self.folder.exists():
                log.warning(
                    "items snapshot unusable (%s): rebuilding the index from the topic", exc
                )
            else:
                log.info("no items snapshot in %s: building the index from the topic", self.folder)
            return None
        self.service.restore_items(snapshot.index, snapshot.catalog)
        self.saved_version = snapshot.index.version
        seconds = time.monotonic() - started
        metrics.SNAPSHOT_SECONDS.labels("load").set(seconds)
        metrics.SNAPSHOT_WRITTEN_AT.set(snapshot.created_at)
        log.info(
            "items snapshot loaded in %.2f s: %d items, written %.0f s ago; "
            "reading item-vectors from its offsets",
            seconds,
            len(snapshot.index),
            time.time() - snapshot.created_at,
        )
        return {int(p): offset for p, offset in snapshot.position.items()}

    def forget(self, problem: str) -> None:
        """The snapshot does not fit the topic: start again from empty items."""
        log.warning("items snapshot does not fit item-vectors (%s): rebuilding the index", problem)
        index = self.service.index
        assert isinstance(index, HnswIndex)
        self.service.restore_items(index.empty_like(), Catalog())
        self.saved_version = None

    def save(self, position: Mapping[int, int]) -> bool:
        """Write a snapshot if the items changed since the last one (with no item update
        meanwhile, and ``position`` read before: the items may go further, never less far)."""
        index = self.service.index
        if not isinstance(index, HnswIndex) or index.version == self.saved_version:
            return False
        started = time.monotonic()
        save_items(
            self.folder,
            index,
            self.service.catalog,
            self.fingerprint,
            {str(p): offset for p, offset in position.items()},
        )
        seconds = time.monotonic() - started
        self.saved_version = index.version
        metrics.SNAPSHOT_SECONDS.labels("save").set(seconds)
        metrics.SNAPSHOT_WRITTEN_AT.set(time.time())
        log.info("items snapshot written in %.2f s: %d items", seconds, len(index))
        return True
