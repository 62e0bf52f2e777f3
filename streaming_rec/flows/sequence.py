"""The sequence model on the wire: the trainer cuts it into parts (``model_parts``), every
worker puts them together and swaps it in together with the item factors it was fitted on
(``ApplySequenceModel``), so that no answer mixes a user-side model with item factors of
another refresh.

    trainer: item-vectors (factors, factors_version V) … flush ─► sequence-models (V, parts,
             item_vectors_end = where item-vectors ended after V's factors)
    worker:  item-vectors ─► FactorGate: factors newer than the model in use are held
             sequence-models ─► parts of V joined, checked (size, SHA-256) ─► wait until the
             index has read item-vectors to item_vectors_end ─► one compute step: apply
             the held factors of V (and older), then use model V

Versions sort as text (``new_version``: milliseconds since the epoch, zero-padded, then the
trainer's run id), so "older" needs no table. An item the index does not hold yet is
applied at once whatever its version: a new item is findable before the model catches up.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from streaming_rec import codec
from streaming_rec.core.catalog import ItemMeta
from streaming_rec.core.sequence import SequenceModel
from streaming_rec.core.service import Recommender
from streaming_rec.errors import DecodeError
from streaming_rec.flows.ports import Compute, Record
from streaming_rec.schemas import SequenceModelPart

log = logging.getLogger(__name__)
SEQUENCE_MODELS = "sequence-models"
PART_BYTES = 256 * 1024  # model bytes per message (base64: ~342 KiB, far below 1 MiB)

Upsert = tuple[ItemMeta, np.ndarray, np.ndarray | None]


def new_version(run_id: str, now: float | None = None) -> str:
    """A version that sorts after every earlier one of any trainer run: milliseconds since
    the epoch (13 digits) and the run id."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"{millis:013d}-{run_id}"


def model_parts(
    model: SequenceModel,
    item_vectors_end: Mapping[int, int],
    events: int = 0,
    fit_s: float = 0.0,
    part_bytes: int = PART_BYTES,
) -> list[SequenceModelPart]:
    """``model`` as messages of at most ``part_bytes`` model bytes each (key: the part
    number). ``item_vectors_end``: partition → next offset after the model's factors."""
    raw = model.to_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    chunks = [raw[i : i + part_bytes] for i in range(0, len(raw), part_bytes)]
    now = time.time()
    return [
        SequenceModelPart(
            version=model.version,
            part=i,
            parts=len(chunks),
            data=base64.b64encode(chunk).decode("ascii"),
            size=len(raw),
            sha256=digest,
            factor_dim=model.dim,
            item_vectors_end={str(p): int(o) for p, o in item_vectors_end.items()},
            events=events,
            fit_s=round(fit_s, 3),
            trained_at=now,
        )
        for i, chunk in enumerate(chunks)
    ]


@dataclass
class _Assembly:
    parts: dict[int, SequenceModelPart] = field(default_factory=dict)


def join_parts(parts: Sequence[SequenceModelPart]) -> SequenceModel:
    """The model of a complete set of parts of one version. Raises ValueError when parts
    are missing or of several versions, or the bytes fail the size or SHA-256 check."""
    if not parts:
        raise ValueError("no parts")
    first = parts[0]
    by_number = {p.part: p for p in parts if p.version == first.version}
    if len(by_number) != len(parts) or set(by_number) != set(range(first.parts)):
        raise ValueError(f"parts {sorted(by_number)} of {first.parts} for {first.version}")
    raw = b"".join(base64.b64decode(by_number[i].data) for i in range(first.parts))
    if len(raw) != first.size or hashlib.sha256(raw).hexdigest() != first.sha256:
        raise ValueError(f"model {first.version}: size or SHA-256 does not match")
    model = SequenceModel.from_bytes(raw)
    if model.version != first.version:
        raise ValueError(f"model bytes say {model.version}, parts say {first.version}")
    return model


class FactorGate:
    """Holds item factors newer than the sequence model in use until that model arrives
    (the last message of each item wins); everything else passes at once."""

    def __init__(self, service: Recommender) -> None:
        self.service = service
        self.held: dict[str, tuple[str, Upsert]] = {}

    def admit(self, upserts: Sequence[tuple[Upsert, str | None]]) -> list[Upsert]:
        """The upserts to apply now; (upsert, factors_version) pairs newer than the model
        in use, of items already indexed, are held. An upsert that passes drops what was
        held for its item (it is newer)."""
        model = self.service.sequence
        now: list[Upsert] = []
        for upsert, version in upserts:
            item_id = upsert[0].item_id
            newer = model is not None and version is not None and version > model.version
            if newer and self.service.has_item(item_id):
                self.held[item_id] = (version, upsert)  # type: ignore[assignment]
            else:
                self.held.pop(item_id, None)
                now.append(upsert)
        return now

    def forget(self, item_ids: Sequence[str]) -> None:
        """Deleted items: nothing of them is held any more."""
        for item_id in item_ids:
            self.held.pop(item_id, None)

    def release(self, version: str) -> list[Upsert]:
        """The held upserts of ``version`` and older, removed from the gate."""
        out = [u for item_id, (v, u) in self.held.items() if v <= version]
        self.held = {i: (v, u) for i, (v, u) in self.held.items() if v > version}
        return out


class ApplySequenceModel:
    """Joins the parts read from `sequence-models`; a complete, checked model newer than
    the one in use waits until the index has read `item-vectors` up to its
    ``item_vectors_end``, then is swapped in with the factors the gate held for it, in one
    step on the compute thread (queries run there too, so none sees half of it)."""

    def __init__(
        self,
        service: Recommender,
        gate: FactorGate,
        compute: Compute,
        index_position: Callable[[], Mapping[int, int]],
        on_swapped: Callable[[SequenceModel], None] = lambda model: None,
    ) -> None:
        self.service = service
        self.gate = gate
        self.compute = compute
        self.index_position = index_position
        self.on_swapped = on_swapped
        self._assembling: dict[str, _Assembly] = {}
        self._ready: tuple[SequenceModel, dict[int, int]] | None = None
        self._seen_items: dict[int, int] = {}
        self.rejected = 0

    async def handle(self, records: list[Record]) -> None:
        """Collect the parts in ``records``; swap in the newest complete model when due."""
        for record in records:
            try:
                part = codec.decode("sequence_model", record.value, record.key)
            except DecodeError as exc:
                log.error("unreadable sequence model part at %d: %s", record.offset, exc)
                self.rejected += 1
                continue
            if isinstance(part, SequenceModelPart):
                self._collect(part)
        await self._maybe_swap()

    async def items_read(self, records: Sequence[Record]) -> None:
        """`item-vectors` records were applied: a waiting model may be due now."""
        for record in records:
            seen = self._seen_items.get(record.partition, 0)
            self._seen_items[record.partition] = max(seen, record.offset + 1)
        if self._ready is not None:
            await self._maybe_swap()

    def _collect(self, part: SequenceModelPart) -> None:
        current = self.service.sequence
        pending = self._ready[0].version if self._ready else ""
        if (current is not None and part.version <= current.version) or part.version <= pending:
            return  # older than what is in use or waiting
        assembly = self._assembling.setdefault(part.version, _Assembly())
        assembly.parts[part.part] = part
        if len(assembly.parts) < part.parts:
            return
        del self._assembling[part.version]
        try:
            model = join_parts(list(assembly.parts.values()))
        except ValueError as exc:
            log.error("sequence model %s refused: %s", part.version, exc)
            self.rejected += 1
            return
        if model.dim != self.service.factor_dim:
            log.error("sequence model %s has dim %d, not %d", model.version, model.dim,
                      self.service.factor_dim)  # fmt: skip
            self.rejected += 1
            return
        end = {int(p): o for p, o in part.item_vectors_end.items()}
        self._ready = (model, end)
        self._assembling = {v: a for v, a in self._assembling.items() if v > model.version}

    def _index_reached(self, end: Mapping[int, int]) -> bool:
        position = self.index_position()
        return all(
            max(position.get(p, 0), self._seen_items.get(p, 0)) >= offset
            for p, offset in end.items()
        )

    async def _maybe_swap(self) -> None:
        if self._ready is None or not self._index_reached(self._ready[1]):
            return
        model, _ = self._ready
        self._ready = None
        await self.compute(self._swap, model)
        self.on_swapped(model)
        blend = model.blend or {}
        log.info(
            "sequence model %s in use (%d bytes; targets %s mixed %s, ridge %s, chosen on %s "
            "held-out users)",
            model.version,
            model.nbytes,
            blend.get("horizons", [1]),
            blend.get("mix", [1.0]),
            blend.get("ridge", "as set"),
            blend.get("holdout_users", 0),
        )

    def _swap(self, model: SequenceModel) -> None:
        released = self.gate.release(model.version)
        if released:
            self.service.apply_items(released)
        self.service.use_sequence_model(model)
