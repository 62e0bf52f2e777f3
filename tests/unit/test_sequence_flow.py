"""The sequence model on the wire (flows/sequence.py), without a broker: parts join back
into the model and refuse tampering; factors newer than the model in use are held and
swapped in with their model, once the index has read as far as the model says; a new item
is indexed at once."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from streaming_rec import codec
from streaming_rec.core.catalog import ItemMeta
from streaming_rec.core.sequence import SequenceModel, feature_count
from streaming_rec.flows.items import IndexItems
from streaming_rec.flows.ports import Record, direct
from streaming_rec.flows.sequence import (
    ApplySequenceModel,
    FactorGate,
    join_parts,
    model_parts,
    new_version,
)
from streaming_rec.schemas import ItemVector
from tests.unit.test_service import service

pytestmark = pytest.mark.unit
DIM = 3


def _model(version: str, seed: int = 0) -> SequenceModel:
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((feature_count(DIM, 2), DIM)).astype(np.float32)
    return SequenceModel(version, 2, 5.0, weights)


def _vector_record(item: str, factors: list[float], version: str | None, offset: int) -> Record:
    content = np.zeros(4, dtype=np.float32)
    content[hash(item) % 4] = 1.0
    message = ItemVector(
        item_id=item,
        vector=content,
        dim=4,
        factors=np.array(factors, dtype=np.float32),
        title=item,
        model="words",
        updated_at=1.0,
        factors_version=version,
    )
    return Record("item-vectors", 0, offset, item.encode(), codec.encode_item_vector(message), -1)


def _part_records(model: SequenceModel, end: dict[int, int], part_bytes: int) -> list[Record]:
    parts = model_parts(model, end, events=5, part_bytes=part_bytes)
    return [
        Record("sequence-models", 0, i, str(p.part).encode(), codec.encode(p), -1)
        for i, p in enumerate(parts)
    ]


def test_versions_sort_by_time_across_runs() -> None:
    assert new_version("zzz", now=1.0) < new_version("aaa", now=2.0)
    assert new_version("r", now=1_800_000_000.5) == "1800000000500-r"


def test_parts_join_back_and_refuse_tampering() -> None:
    model = _model("0001-a")
    parts = model_parts(model, {0: 3}, part_bytes=100)
    assert len(parts) > 2 and all(len(codec.encode(p)) < 1 << 20 for p in parts)
    back = join_parts(list(reversed(parts)))
    np.testing.assert_array_equal(back.weights, model.weights)
    with pytest.raises(ValueError, match="parts"):
        join_parts(parts[:-1])
    bad = parts[0].model_copy(update={"data": parts[1].data})
    with pytest.raises(ValueError, match="SHA-256"):
        join_parts([bad, *parts[1:]])


def test_a_model_waits_for_its_factors_then_swaps_in_with_them() -> None:
    async def run() -> None:
        rec = service(factor_dim=DIM)
        gate = FactorGate(rec)
        index = IndexItems(rec, direct, gate=gate)
        position: dict[int, int] = {}
        flow = ApplySequenceModel(rec, gate, direct, lambda: position)
        old, new = _model("0001-a", 1), _model("0002-a", 2)
        # the first model, with factors of its own version already read
        await index.handle([_vector_record("rocket", [1, 0, 0], "0001-a", 10)])
        await flow.items_read([_vector_record("rocket", [1, 0, 0], "0001-a", 10)])
        await flow.handle(_part_records(old, {0: 11}, part_bytes=150))
        assert rec.sequence is not None and rec.sequence.version == "0001-a"
        # a refresh: the new factors of an indexed item are held while model 1 is in use...
        newer = _vector_record("rocket", [0, 1, 0], "0002-a", 11)
        await index.handle([newer])
        np.testing.assert_allclose(rec.item_parts(["rocket"])[1][0, 4:], [1, 0, 0])
        # ... a new item is indexed at once, whatever its version
        await index.handle([_vector_record("comet", [0, 0, 1], "0002-a", 12)])
        assert rec.has_item("comet")
        # model 2 names offset 14: it waits until the index has read that far
        await flow.handle(_part_records(new, {0: 14}, part_bytes=150))
        assert rec.sequence.version == "0001-a"
        np.testing.assert_allclose(rec.item_parts(["rocket"])[1][0, 4:], [1, 0, 0])
        await flow.items_read([_vector_record("ranch", [0, 1, 1], "0002-a", 13)])
        assert rec.sequence.version == "0002-a"
        np.testing.assert_allclose(rec.item_parts(["rocket"])[1][0, 4:], [0, 1, 0])
        assert gate.held == {}
        # an older model read later (a replica catching up) is ignored
        await flow.handle(_part_records(old, {0: 11}, part_bytes=10_000))
        assert rec.sequence.version == "0002-a"

    asyncio.run(run())


def test_a_model_of_another_dimension_or_broken_parts_is_refused() -> None:
    async def run() -> None:
        rec = service(factor_dim=DIM)
        flow = ApplySequenceModel(rec, FactorGate(rec), direct, lambda: {})
        wrong = SequenceModel("0003-a", 1, 5.0, np.zeros((feature_count(2, 1), 2), np.float32))
        await flow.handle(_part_records(wrong, {}, part_bytes=10_000))
        garbage = Record("sequence-models", 0, 9, b"0", b"{not json", -1)
        await flow.handle([garbage])
        assert rec.sequence is None and flow.rejected == 2

    asyncio.run(run())


def test_without_a_model_in_use_factors_pass_at_once() -> None:
    rec = service(factor_dim=DIM)
    gate = FactorGate(rec)
    meta = ItemMeta("rocket", "Rocket")
    upsert = (meta, np.eye(4, dtype=np.float32)[0], np.ones(DIM, dtype=np.float32))
    assert gate.admit([(upsert, "0009-z")]) == [upsert] and gate.held == {}
