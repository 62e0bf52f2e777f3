"""Items: `items` → the encoder → `item-vectors` (EmbedItems, one worker per partition), and
`item-vectors` → every worker's index and catalog (IndexItems, a full replica)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from streaming_rec import codec
from streaming_rec.core.catalog import item_text
from streaming_rec.core.service import Recommender
from streaming_rec.errors import DecodeError
from streaming_rec.flows.convert import item_meta, item_to_vector_message
from streaming_rec.flows.policy import DeadLetterPolicy, read_item
from streaming_rec.flows.ports import Compute, Meter, Record, Sink
from streaming_rec.flows.sequence import FactorGate, Upsert
from streaming_rec.schemas import Item, ItemVector

log = logging.getLogger(__name__)
ITEM_VECTORS = "item-vectors"


class EmbedItems:
    """Encodes each batch of items (the last version of each item in the batch wins) and
    publishes their vectors; a deleted item becomes a tombstone."""

    def __init__(
        self,
        service: Recommender,
        sink: Sink,
        policy: DeadLetterPolicy,
        meter: Meter,
        encode_on: Compute,
    ) -> None:
        self.service = service
        self.sink = sink
        self.policy = policy
        self.meter = meter
        self.encode_on = encode_on

    async def handle(self, records: list[Record]) -> None:
        """Publish the vectors (or tombstones) of the items in ``records``."""
        latest: dict[str, Item] = {}
        for record in records:
            try:
                item = read_item(record)
            except Exception as exc:
                await self.policy.reject(record, exc)
                continue
            latest[item.item_id] = item
        upserts = [item for item in latest.values() if not item.deleted]
        texts = [item_text(i.title, i.description, i.categories) for i in upserts]
        vectors: np.ndarray = (
            await self.encode_on(self.service.embed_items, texts)
            if texts
            else np.zeros((0, 0), dtype=np.float32)
        )
        model = self.service.model_version
        for item, vector in zip(upserts, vectors, strict=True):
            message = item_to_vector_message(item, vector, model)
            await self.sink.send(
                ITEM_VECTORS, item.item_id.encode(), codec.encode_item_vector(message)
            )
        for item in latest.values():
            if item.deleted:
                await self.sink.send(ITEM_VECTORS, item.item_id.encode(), None)
        if records:
            self.meter.messages(records[0].topic, "ok", len(latest))


def item_vector_updates(records: Sequence[Record]) -> Iterator[tuple[str, ItemVector | None]]:
    """(item_id, its vector — or None for a tombstone) for each readable `item-vectors`
    record, in order; an unreadable one is logged and skipped (the product wrote it)."""
    for record in records:
        try:
            vector = codec.decode_item_vector(record.key, record.value)
        except DecodeError as exc:
            log.error("unreadable item vector at %s@%d: %s", record.partition, record.offset, exc)
            continue
        if vector is not None:
            yield vector.item_id, vector
        elif record.key:
            yield record.key.decode("utf-8", "replace"), None


class IndexItems:
    """Applies `item-vectors` batches to the service's index and catalog (the last update of
    each item in a batch wins). ``on_applied(size, version)`` reports the index after each.
    With a ``gate`` (flows/sequence.py), factors newer than the sequence model in use wait
    for their model instead. A vector made by another encoder (another model id) is not
    indexed; ``mismatched`` holds those items until a vector of this model arrives (after
    an encoder switch, the catalog is embedded again: docs/encoders.md)."""

    def __init__(
        self,
        service: Recommender,
        compute: Compute,
        on_applied: Callable[[int, int], None] = lambda size, version: None,
        gate: FactorGate | None = None,
    ) -> None:
        self.service = service
        self.compute = compute
        self.on_applied = on_applied
        self.gate = gate
        self.mismatched: set[str] = set()  # item ids whose latest vector is another model's

    async def handle(self, records: list[Record]) -> None:
        """Upsert and delete the items of ``records``."""
        latest = dict(item_vector_updates(records))
        model = self.service.model_version
        for item_id, v in list(latest.items()):
            if v is not None and v.model != model:
                # made by another encoder: never compared with this one's queries
                del latest[item_id]
                self.mismatched.add(item_id)
            else:
                self.mismatched.discard(item_id)
        upserts = [
            ((item_meta(v), v.vector, v.factors), v.factors_version)
            for v in latest.values()
            if v is not None
        ]
        deletes = [item_id for item_id, v in latest.items() if v is None]
        await self.compute(self._apply, upserts, deletes)
        self.on_applied(self.service.index_size, self.service.index_version)

    def _apply(self, upserts: list[tuple[Upsert, str | None]], deletes: list[str]) -> None:
        """On the compute thread: what the gate lets through, and the deletes, in one step
        (a model swap never falls between the gate's verdict and the index update)."""
        if self.gate is None:
            self.service.apply_items([u for u, _ in upserts], deletes)
            return
        self.gate.forget(deletes)
        self.service.apply_items(self.gate.admit(upserts), deletes)
