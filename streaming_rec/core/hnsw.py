"""The approximate index (hnswlib HNSW graph) and its snapshot files.

Vectors are float32, L2-normalised by the caller; the score is the inner product. Not
thread-safe: callers serialise access. Malkov & Yashunin, "Efficient and robust
approximate nearest neighbor search using Hierarchical Navigable Small World graphs"
(IEEE TPAMI 2018); hnswlib is the authors' library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
import numpy.typing as npt

from streaming_rec.core.index import (
    Allow,
    FloatArray,
    Hit,
    as_queries,
    as_query,
    check_dim,
    id_list,
    live_rows,
    make_hits,
    prepare_batch,
)
from streaming_rec.errors import IndexError_, SnapshotError

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "streaming_rec.hnsw"
SNAPSHOT_FORMAT_VERSION = 2  # 2 adds vectors.npy (the mirror); 1 is still read
_INDEX_FILE, _IDS_FILE, _MANIFEST_FILE = "index.bin", "ids.json", "manifest.json"
_VECTORS_FILE = "vectors.npy"


class HnswIndex:
    """Approximate index on hnswlib (space "ip", score = inner product).

    Each item_id maps to a fresh int label; deleted items become tombstones whose slots
    are reused by later new items (hnswlib ``replace_deleted``), so churn does not grow
    the index. Capacity doubles as needed.

    A float32 copy of the live vectors (``_mirror``, one row per item, rows of deleted
    items reused) answers :meth:`vectors`: hnswlib's ``get_items`` costs ~20 µs per item,
    and every "for you" query reads the vectors of the user's recent items (the taste)
    and of what it shows. It doubles the memory of the vectors (1.5 KiB per 384-d item).
    """

    def __init__(
        self,
        dim: int,
        max_elements: int = 1024,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        threads: int = 1,
    ) -> None:
        self.dim = check_dim(dim)
        self.ef_search = ef_search
        self.threads = threads
        self._index: Any = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(
            max_elements=max(1, max_elements),
            M=m,
            ef_construction=ef_construction,
            allow_replace_deleted=True,
        )
        self._ef = -1
        self._label: dict[str, int] = {}
        self._id: dict[int, str] = {}
        self._next_label = 0
        self._version = 0
        self._mirror = np.zeros((max(1, max_elements), dim), dtype=np.float32)
        self._row: dict[str, int] = {}
        self._free_rows: list[int] = []

    @property
    def version(self) -> int:
        """Grows by one per upserted or deleted item."""
        return self._version

    def empty_like(self) -> HnswIndex:
        """A new, empty index with this one's dimension and graph parameters."""
        return HnswIndex(
            self.dim,
            m=int(self._index.M),
            ef_construction=int(self._index.ef_construction),
            ef_search=self.ef_search,
            threads=self.threads,
        )

    @property
    def capacity(self) -> int:
        """Slots allocated in hnswlib (live items plus tombstones plus free)."""
        return int(self._index.get_max_elements())

    def __len__(self) -> int:
        return len(self._label)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._label

    def upsert(self, item_ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Replace live items in place; add new ones into tombstone slots or fresh ones."""
        ids, arr = prepare_batch(item_ids, vectors, self.dim)
        old = [i for i, item_id in enumerate(ids) if item_id in self._label]
        new = [i for i, item_id in enumerate(ids) if item_id not in self._label]
        if old:
            labels = [self._label[ids[i]] for i in old]
            self._index.add_items(arr[old], labels, num_threads=self.threads)
        if new:
            used = int(self._index.get_current_count())  # live + tombstones
            extra = max(0, len(new) - (used - len(self._label)))
            if used + extra > self.capacity:
                size = max(used + extra, 2 * self.capacity)
                log.info("growing hnsw index from %d to %d slots", self.capacity, size)
                self._index.resize_index(size)
            labels = list(range(self._next_label, self._next_label + len(new)))
            self._next_label += len(new)
            self._index.add_items(arr[new], labels, num_threads=self.threads, replace_deleted=True)
            for i, label in zip(new, labels, strict=True):
                self._label[ids[i]] = label
                self._id[label] = ids[i]
        self._copy_rows(ids, arr)
        self._version += len(ids)

    def _copy_rows(self, ids: Sequence[str], arr: FloatArray) -> None:
        rows = []
        for item_id in ids:
            row = self._row.get(item_id)
            if row is None:
                row = self._free_rows.pop() if self._free_rows else len(self._row)
                self._row[item_id] = row
            rows.append(row)
        needed = max(rows, default=-1) + 1
        if needed > len(self._mirror):
            grown = np.zeros((max(needed, 2 * len(self._mirror)), self.dim), dtype=np.float32)
            grown[: len(self._mirror)] = self._mirror
            self._mirror = grown
        self._mirror[rows] = arr

    def delete(self, item_ids: Iterable[str]) -> int:
        """Mark items deleted; return how many were live."""
        removed = 0
        for item_id in id_list(item_ids):
            label = self._label.pop(item_id, None)
            if label is None:
                continue
            del self._id[label]
            self._index.mark_deleted(label)
            self._free_rows.append(self._row.pop(item_id))
            removed += 1
        self._version += removed
        return removed

    def search(self, query: npt.ArrayLike, k: int, allow: Allow | None = None) -> list[Hit]:
        """Approximate top-k; a selective ``allow`` returns what exists instead of raising."""
        q = as_query(query, self.dim, k)
        k = min(k, len(self._label))
        seen: set[int] = set()

        def accept(label: int) -> bool:
            item_id = self._id.get(label)
            ok = item_id is not None and (allow is None or allow(item_id))
            if ok:
                seen.add(label)
            return ok

        use_filter = allow is not None
        while k > 0:
            self._use_ef(k)
            seen.clear()
            try:
                flt = accept if use_filter else None
                labels, dists = self._index.knn_query(q, k=k, num_threads=1, filter=flt)
            except RuntimeError as exc:
                # hnswlib says "contiguous"; its chroma-hnswlib fork "contigious"
                if "contiguous" not in str(exc) and "contigious" not in str(exc):
                    raise IndexError_(f"hnswlib search failed: {exc}") from exc
                # Fewer than k reachable. A failed filtered search never fills ef, so it
                # visits every reachable node: ``seen`` is then exactly what exists.
                if use_filter:
                    k = len(seen) if len(seen) < k else k // 2
                use_filter = True
                log.debug("hnsw search returned fewer than asked; retrying with k=%d", k)
                continue
            return self._hits(labels[0], dists[0])
        return []

    def search_many(self, queries: npt.ArrayLike, k: int) -> list[list[Hit]]:
        """``search(row, k)`` for each row of ``(m, dim)`` queries in one hnswlib call (one
        thread, rows one after the other, each with the same ef as alone); the rows one by
        one when hnswlib finds fewer than k for one of them."""
        qs = as_queries(queries, self.dim, k)
        k = min(k, len(self._label))
        if k == 0 or len(qs) == 0:
            return [[] for _ in range(len(qs))]
        self._use_ef(k)
        try:
            labels, dists = self._index.knn_query(qs, k=k, num_threads=1)
        except RuntimeError:
            return [self.search(q, k) for q in qs]
        return [self._hits(row, d) for row, d in zip(labels, dists, strict=True)]

    def _use_ef(self, k: int) -> None:
        """Search with ef = max(ef_search, k) (set on hnswlib only when it changes)."""
        if max(self.ef_search, k) != self._ef:
            self._ef = max(self.ef_search, k)
            self._index.set_ef(self._ef)

    def _hits(self, labels: np.ndarray, dists: np.ndarray) -> list[Hit]:
        """One row of knn_query's answer as hits (score = 1 - the "ip" distance, in float64
        as ``1.0 - float(dist)`` would give)."""
        scores = (1.0 - dists.astype(np.float64)).tolist()
        return make_hits(map(self._id.__getitem__, labels.tolist()), scores)

    def vectors(self, item_ids: Sequence[str]) -> FloatArray:
        """Copies of the vectors of live items (from the mirror)."""
        kept, rows = live_rows(self._row, item_ids)
        if len(kept) != len(item_ids):
            missing = [i for i in item_ids if i not in self._row]
            raise IndexError_(f"not in the index: {missing[:5]!r}")
        return self._mirror[rows].reshape(len(kept), self.dim)

    def live_vectors(self, item_ids: Sequence[str]) -> tuple[list[str], FloatArray]:
        """The live ids among ``item_ids`` (order kept) and copies of their vectors."""
        kept, rows = live_rows(self._row, item_ids)
        return kept, self._mirror[rows].reshape(len(kept), self.dim)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a snapshot folder atomically (tmp folder, then rename)."""
        final = Path(path)
        with replacing_folder(final) as tmp:
            self._index.save_index(str(tmp / _INDEX_FILE))
            ids = {"next_label": self._next_label, "items": list(self._label.items())}
            (tmp / _IDS_FILE).write_bytes(json.dumps(ids, separators=(",", ":")).encode())
            rows = [self._row[item_id] for item_id in self._label]  # the id map's order
            np.save(tmp / _VECTORS_FILE, self._mirror[rows], allow_pickle=False)
            files = (_INDEX_FILE, _IDS_FILE, _VECTORS_FILE)
            manifest = {
                "format": SNAPSHOT_FORMAT,
                "format_version": SNAPSHOT_FORMAT_VERSION,
                "space": "ip",
                "dim": self.dim,
                "count": len(self._label),
                "version": self._version,
                "sha256": {name: sha256_file(tmp / name) for name in files},
            }
            (tmp / _MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        log.info("saved hnsw snapshot to %s (%d items, version %d)", final, len(self), self.version)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        dim: int | None = None,
        ef_search: int = 64,
        threads: int = 1,
    ) -> HnswIndex:
        """Read a snapshot written by ``save``; raise SnapshotError if unusable."""
        folder = Path(path)
        try:
            manifest = json.loads((folder / _MANIFEST_FILE).read_text())
            if manifest.get("format") != SNAPSHOT_FORMAT:
                raise SnapshotError(f"{folder}: not an hnsw snapshot")
            format_version = manifest.get("format_version")
            if format_version not in (1, SNAPSHOT_FORMAT_VERSION):
                raise SnapshotError(f"{folder}: format version {format_version}")
            if dim is not None and manifest["dim"] != dim:
                raise SnapshotError(f"{folder}: snapshot dim {manifest['dim']}, expected {dim}")
            files = (_INDEX_FILE, _IDS_FILE) + ((_VECTORS_FILE,) if format_version > 1 else ())
            for name in files:
                if sha256_file(folder / name) != manifest["sha256"][name]:
                    raise SnapshotError(f"{folder}: checksum mismatch in {name}")
            ids = json.loads((folder / _IDS_FILE).read_bytes())
            items = {str(item_id): int(label) for item_id, label in ids["items"]}
            if len(items) != manifest["count"] or len(ids["items"]) != len(items):
                raise SnapshotError(f"{folder}: id map does not match the manifest count")
            out = cls(int(manifest["dim"]), max_elements=1, ef_search=ef_search, threads=threads)
            out._index = hnswlib.Index(space="ip", dim=out.dim)
            out._index.load_index(str(folder / _INDEX_FILE), allow_replace_deleted=True)
            stored = set(out._index.get_ids_list())
            next_label = int(ids["next_label"])
            if not set(items.values()) <= stored or next_label <= max(stored, default=-1):
                raise SnapshotError(f"{folder}: index file does not match the id map")
        except SnapshotError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
            raise SnapshotError(f"{folder}: unreadable snapshot: {exc}") from exc
        out._label = items
        out._id = {label: item_id for item_id, label in items.items()}
        out._next_label = next_label
        out._version = int(manifest["version"])
        order = list(items)
        if format_version > 1:
            mirror = np.load(folder / _VECTORS_FILE, allow_pickle=False)
            if mirror.shape != (len(order), out.dim) or mirror.dtype != np.float32:
                raise SnapshotError(f"{folder}: {_VECTORS_FILE} has shape {mirror.shape}")
            out._mirror = mirror if len(order) else np.zeros((1, out.dim), dtype=np.float32)
        else:  # format 1 kept no mirror: read the vectors back from hnswlib (~20 µs each)
            out._mirror = np.zeros((max(1, len(order)), out.dim), dtype=np.float32)
            for lo in range(0, len(order), 10_000):
                chunk = order[lo : lo + 10_000]
                got = out._index.get_items([items[i] for i in chunk], return_type="numpy")
                out._mirror[lo : lo + len(chunk)] = np.asarray(got, dtype=np.float32)
        out._row = {item_id: row for row, item_id in enumerate(order)}
        log.info("loaded hnsw snapshot from %s (%d items)", folder, len(out))
        return out


@contextlib.contextmanager
def replacing_folder(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final`` to write into; on success its files are synced
    and it replaces ``final`` by a rename (a reader sees the old folder or the new one,
    never half of one); on failure it is removed and ``final`` is left alone."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:12]}")
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                fsync_path(file)
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:12]}")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        fsync_path(final.parent, directory=True)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
