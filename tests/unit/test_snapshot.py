"""The items snapshot: index + catalog + position round-trip; damage and foreign
fingerprints are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streaming_rec.core.catalog import Catalog, ItemMeta
from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.snapshot import load_items, save_items
from streaming_rec.errors import SnapshotError

pytestmark = pytest.mark.unit

DIM = 16
PRINT = {"model": "m", "dim": DIM, "factor_dim": 0, "topic": "t.item-vectors"}


def items(n: int) -> tuple[HnswIndex, Catalog]:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, catalog = HnswIndex(DIM), Catalog()
    ids = [f"i{k}" for k in range(n)]
    index.upsert(ids, vectors)
    for k, item_id in enumerate(ids):
        catalog.put(ItemMeta(item_id, f"Title {k}", ("Drama",), {"year": 1990 + k}))
    return index, catalog


def test_items_round_trip_with_their_position(tmp_path: Path) -> None:
    index, catalog = items(50)
    save_items(tmp_path / "snap", index, catalog, PRINT, {"0": 40, "1": 12})
    got = load_items(tmp_path / "snap", PRINT)
    assert got.position == {"0": 40, "1": 12}
    assert len(got.index) == 50 and got.index.version == index.version
    assert got.catalog.get("i7") == catalog.get("i7")
    query = index.vectors(["i3"])[0]
    assert got.index.search(query, 5) == index.search(query, 5)
    empty = got.index.empty_like()
    assert len(empty) == 0 and empty.dim == DIM


@pytest.mark.parametrize("damage", ["fingerprint", "catalog", "index", "missing", "count"])
def test_a_bad_or_foreign_snapshot_is_refused(tmp_path: Path, damage: str) -> None:
    index, catalog = items(20)
    folder = tmp_path / "snap"
    save_items(folder, index, catalog, PRINT, {"0": 20})
    fingerprint = dict(PRINT)
    if damage == "fingerprint":
        fingerprint["model"] = "another-model"
    elif damage == "catalog":
        (folder / "catalog.json").write_bytes(b"[]")
    elif damage == "index":
        (folder / "index" / "ids.json").write_text("{}")
    elif damage == "missing":
        folder = tmp_path / "nowhere"
    elif damage == "count":  # a catalog that does not match the index
        smaller = Catalog()
        smaller.put(ItemMeta("i0", "Title 0"))
        save_items(folder, index, smaller, PRINT, {"0": 20})
    with pytest.raises(SnapshotError):
        load_items(folder, fingerprint)
