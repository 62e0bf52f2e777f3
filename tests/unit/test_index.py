"""Unit tests of the vector index port: ExactIndex, HnswIndex and their agreement."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.index import ExactIndex, Hit, VectorIndex
from streaming_rec.errors import IndexError_, SnapshotError

DIM = 16
Factory = Callable[[int], VectorIndex]
FACTORIES: dict[str, Factory] = {
    "exact": lambda dim: ExactIndex(dim, capacity=4),
    "hnsw": lambda dim: HnswIndex(dim, max_elements=4, ef_search=200),
}


def unit(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    out: npt.NDArray[np.float32] = (rows / norms).astype(np.float32)
    return out


def random_unit(rng: np.random.Generator, n: int, dim: int = DIM) -> npt.NDArray[np.float32]:
    return unit(rng.normal(size=(n, dim)))


def clustered(
    rng: np.random.Generator, centres: npt.NDArray[np.float32], n: int, spread: float = 1.0
) -> npt.NDArray[np.float32]:
    """Points around the given unit centres; ``spread`` ≈ noise norm relative to a centre."""
    which = rng.integers(0, len(centres), size=n)
    dim = centres.shape[1]
    return unit(centres[which] + spread * rng.normal(size=(n, dim)) / np.sqrt(dim))


def ids_of(hits: list[Hit]) -> list[str]:
    return [hit.item_id for hit in hits]


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = FACTORIES[request.param]
    return factory


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def filled(make: Factory, rng: np.random.Generator, n: int = 50) -> VectorIndex:
    index = make(DIM)
    index.upsert([f"i{i}" for i in range(n)], random_unit(rng, n))
    return index


@pytest.mark.unit
def test_hnsw_recall_at_10_on_clustered_vectors() -> None:
    rng = np.random.default_rng(7)
    centres = random_unit(rng, 50, 384)
    data = clustered(rng, centres, 10_000)
    queries = clustered(rng, centres, 200)  # new points from the same clusters
    ids = [f"doc-{i}" for i in range(len(data))]
    exact = ExactIndex(384)
    exact.upsert(ids, data)
    hnsw = HnswIndex(384, max_elements=len(data), m=16, ef_construction=200, threads=2)
    hnsw.upsert(ids, data)
    found = 0
    for query in queries:
        truth = set(ids_of(exact.search(query, 10)))
        found += len(truth & set(ids_of(hnsw.search(query, 10))))
    assert found / (10 * len(queries)) >= 0.95


@pytest.mark.unit
def test_upsert_replaces_the_vector(make: Factory, rng: np.random.Generator) -> None:
    index = filled(make, rng)
    old = index.vectors(["i3"])[0]
    new = random_unit(rng, 1)
    version = index.version
    index.upsert(["i3"], new)
    assert len(index) == 50 and index.version == version + 1
    top = index.search(new[0], 1)[0]
    assert top.item_id == "i3" and top.score == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(index.vectors(["i3"]), new)
    hits = {h.item_id: h.score for h in index.search(old, 50)}
    assert hits["i3"] == pytest.approx(float(old @ new[0]), abs=1e-5)
    assert hits["i3"] < 0.99


@pytest.mark.unit
def test_duplicate_ids_in_one_upsert_last_wins(make: Factory, rng: np.random.Generator) -> None:
    index = make(DIM)
    vecs = random_unit(rng, 2)
    index.upsert(["a", "a"], vecs)
    assert len(index) == 1 and index.version == 1
    assert np.allclose(index.vectors(["a"]), vecs[1:])


@pytest.mark.unit
def test_delete_and_reupsert(make: Factory, rng: np.random.Generator) -> None:
    index = filled(make, rng)
    vec = index.vectors(["i7"])[0]
    version = index.version
    assert index.delete(["i7", "i7", "nope"]) == 1
    assert index.version == version + 1 and len(index) == 49
    assert "i7" not in index and "i8" in index
    for k in (1, 10, 49, 50, 500):
        assert "i7" not in ids_of(index.search(vec, k))
    assert len(index.search(vec, 500)) == 49
    assert index.delete(["i7"]) == 0 and index.version == version + 1
    with pytest.raises(IndexError_):
        index.vectors(["i7"])
    index.upsert(["i7"], vec[None, :])
    assert "i7" in index and len(index) == 50 and index.version == version + 2
    assert index.search(vec, 1)[0].item_id == "i7"


@pytest.mark.unit
def test_k_beyond_live_count_and_empty(make: Factory, rng: np.random.Generator) -> None:
    index = make(DIM)
    query = random_unit(rng, 1)[0]
    assert index.search(query, 10) == []
    index.upsert(["a", "b", "c"], random_unit(rng, 3))
    hits = index.search(query, 10)
    assert sorted(ids_of(hits)) == ["a", "b", "c"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.search(query, 0) == []
    index.delete(["a", "b", "c"])
    assert index.search(query, 10) == [] and len(index) == 0


@pytest.mark.unit
def test_filters(make: Factory, rng: np.random.Generator) -> None:
    index = filled(make, rng, n=2000)
    query = random_unit(rng, 1)[0]
    chosen = {"i5", "i777", "i1999"}
    hits = index.search(query, 10, allow=chosen.__contains__)
    assert set(ids_of(hits)) == chosen and len(hits) == 3
    assert index.search(query, 10, allow=lambda _: False) == []
    evens = index.search(query, 10, allow=lambda i: int(i[1:]) % 2 == 0)
    assert len(evens) == 10 and all(int(i[1:]) % 2 == 0 for i in ids_of(evens))


@pytest.mark.unit
def test_growth_past_initial_capacity(make: Factory, rng: np.random.Generator) -> None:
    index = make(DIM)
    vecs = random_unit(rng, 300)
    for start in range(0, 300, 7):
        index.upsert([f"g{i}" for i in range(start, min(start + 7, 300))], vecs[start : start + 7])
    assert len(index) == 300 and index.version == 300
    assert index.search(vecs[123], 1)[0].item_id == "g123"


@pytest.mark.unit
def test_hnsw_reuses_deleted_slots() -> None:
    index = HnswIndex(DIM, max_elements=8)
    rng = np.random.default_rng(3)
    for round_ in range(20):
        index.upsert([f"r{round_}-{i}" for i in range(8)], random_unit(rng, 8))
        index.delete([f"r{round_}-{i}" for i in range(8)])
    assert index.capacity == 8 and len(index) == 0


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad",
    [np.zeros((1, DIM + 1)), np.zeros((2, DIM)), np.full((1, DIM), np.nan), [["x"] * DIM]],
)
def test_bad_vectors_raise(make: Factory, bad: object) -> None:
    index = make(DIM)
    with pytest.raises(IndexError_):
        index.upsert(["a"], bad)  # type: ignore[arg-type]
    assert len(index) == 0 and index.version == 0


@pytest.mark.unit
def test_live_vectors_keeps_the_known_ids_in_order(make: Factory, rng: np.random.Generator) -> None:
    index = filled(make, rng, n=5)
    index.delete(["i2"])
    kept, vectors = index.live_vectors(["i4", "nope", "i2", "i0"])
    assert kept == ["i4", "i0"] and vectors.shape == (2, DIM)
    np.testing.assert_array_equal(vectors, index.vectors(["i4", "i0"]))
    empty_ids, empty = index.live_vectors(["nope"])
    assert empty_ids == [] and empty.shape == (0, DIM)


@pytest.mark.unit
def test_a_str_is_not_a_list_of_ids(make: Factory, rng: np.random.Generator) -> None:
    index = filled(make, rng)
    index.upsert(["a", "b"], random_unit(rng, 2))
    with pytest.raises(IndexError_):
        index.delete("ab")
    with pytest.raises(IndexError_):
        index.vectors("ab")
    assert "a" in index and "b" in index


@pytest.mark.unit
def test_bad_query_raises(make: Factory, rng: np.random.Generator) -> None:
    index = filled(make, rng)
    with pytest.raises(IndexError_):
        index.search(np.zeros(DIM - 1, dtype=np.float32), 3)
    with pytest.raises(IndexError_):
        index.search(np.full(DIM, np.inf, dtype=np.float32), 3)


@pytest.mark.unit
def test_save_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    index = HnswIndex(DIM, max_elements=16)
    index.upsert([f"s{i}" for i in range(100)], random_unit(rng, 100))
    index.delete([f"s{i}" for i in range(0, 100, 3)])
    snap = tmp_path / "snap"
    index.save(snap)
    index.save(snap)  # overwriting an existing snapshot is atomic too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]
    loaded = HnswIndex.load(snap, dim=DIM)
    assert len(loaded) == len(index) and loaded.version == index.version
    assert all(f"s{i}" in loaded for i in range(1, 100, 3)) and "s0" not in loaded
    for query in random_unit(rng, 20):
        assert loaded.search(query, 10) == index.search(query, 10)
    live = [f"s{i}" for i in range(100) if i % 3]
    np.testing.assert_array_equal(loaded.vectors(live), index.vectors(live))
    loaded.upsert(["fresh"], random_unit(rng, 1))
    assert "fresh" in loaded and len(loaded) == len(index) + 1


@pytest.mark.unit
@pytest.mark.parametrize(
    "damage", ["index", "ids", "vectors", "manifest", "missing", "dim", "format"]
)
def test_bad_snapshot_raises(tmp_path: Path, rng: np.random.Generator, damage: str) -> None:
    index = HnswIndex(DIM)
    index.upsert([f"s{i}" for i in range(20)], random_unit(rng, 20))
    snap = tmp_path / "snap"
    index.save(snap)
    manifest = json.loads((snap / "manifest.json").read_text())
    if damage == "index":
        raw = bytearray((snap / "index.bin").read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (snap / "index.bin").write_bytes(bytes(raw))
    elif damage == "ids":
        (snap / "ids.json").write_text('{"next_label": 0, "items": []}')
    elif damage == "vectors":
        (snap / "vectors.npy").write_bytes((snap / "vectors.npy").read_bytes()[:-8])
    elif damage == "manifest":
        (snap / "manifest.json").write_text("{not json")
    elif damage == "missing":
        (snap / "index.bin").unlink()
    elif damage == "format":
        manifest["format_version"] = 99
        (snap / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError):
        HnswIndex.load(snap, dim=DIM + 1 if damage == "dim" else DIM)
    with pytest.raises(SnapshotError):
        HnswIndex.load(tmp_path / "nowhere")


@pytest.mark.unit
def test_congruence_of_exact_and_hnsw() -> None:
    rng = np.random.default_rng(99)
    exact = ExactIndex(DIM, capacity=8)
    hnsw = HnswIndex(DIM, max_elements=8, m=32, ef_construction=400, ef_search=400)
    pool = [f"c{i}" for i in range(400)]
    for _ in range(60):
        batch = list(rng.choice(pool, size=int(rng.integers(1, 20)), replace=False))
        if rng.random() < 0.7:
            vecs = random_unit(rng, len(batch))
            exact.upsert(batch, vecs)
            hnsw.upsert(batch, vecs)
        else:
            assert exact.delete(batch) == hnsw.delete(batch)
        assert len(exact) == len(hnsw) and exact.version == hnsw.version
    assert len(exact) > 100
    assert all((item in exact) == (item in hnsw) for item in pool)
    for query in random_unit(rng, 50):
        assert ids_of(hnsw.search(query, 5)) == ids_of(exact.search(query, 5))
        allow = lambda i: i.endswith("7")  # noqa: E731
        assert ids_of(hnsw.search(query, 5, allow)) == ids_of(exact.search(query, 5, allow))


@pytest.mark.unit
def test_search_many_is_search_row_by_row(make: Factory, rng: np.random.Generator) -> None:
    index = filled(make, rng)
    index.delete(["i3", "i7"])
    queries = random_unit(rng, 4)
    for k in (5, 48, 60):  # 48 live items: beyond it, every live item
        assert index.search_many(queries, k) == [index.search(q, k) for q in queries]
    assert index.search_many(np.zeros((0, DIM), dtype=np.float32), 5) == []
    with pytest.raises(IndexError_):
        index.search_many(queries[0], 5)  # one row, not a matrix
