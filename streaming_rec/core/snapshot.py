"""A worker's items on disk: the index, the catalog, and how far into the stream they go.

A worker rebuilds its index by reading `item-vectors` from the start; at a million items
that takes minutes. A snapshot lets a restart load the items and read only the records
after ``position`` (opaque here: the edge stores the next offset of each partition). It is
written atomically (a temporary folder renamed into place) with checksums, and carries a
fingerprint of what made the vectors (model, dimensions): a snapshot that is missing,
damaged or made by another model raises SnapshotError, and the caller rebuilds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streaming_rec.core.catalog import Catalog, ItemMeta
from streaming_rec.core.hnsw import HnswIndex, replacing_folder, sha256_file
from streaming_rec.errors import SnapshotError

log = logging.getLogger(__name__)

FORMAT = "streaming_rec.items"
FORMAT_VERSION = 1
_INDEX, _CATALOG, _MANIFEST = "index", "catalog.json", "manifest.json"


@dataclass(frozen=True)
class ItemsSnapshot:
    index: HnswIndex
    catalog: Catalog
    position: dict[str, int]
    created_at: float


def save_items(
    folder: str | os.PathLike[str],
    index: HnswIndex,
    catalog: Catalog,
    fingerprint: Mapping[str, Any],
    position: Mapping[str, int],
) -> None:
    """Write the snapshot to ``folder``, replacing the previous one atomically."""
    with replacing_folder(Path(folder)) as tmp:
        index.save(tmp / _INDEX)
        rows = []
        for item_id in catalog.ids():
            meta = catalog.get(item_id)
            assert meta is not None
            rows.append(
                [
                    meta.item_id,
                    meta.title,
                    list(meta.categories),
                    dict(meta.attributes),
                    meta.published_at,
                ]
            )
        (tmp / _CATALOG).write_bytes(orjson.dumps(rows))
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": dict(fingerprint),
            "position": dict(position),
            "items": len(index),
            "index_version": index.version,
            "created_at": time.time(),
            "sha256": {_CATALOG: sha256_file(tmp / _CATALOG)},
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2))


def load_items(
    folder: str | os.PathLike[str],
    fingerprint: Mapping[str, Any],
    ef_search: int = 64,
    threads: int = 1,
) -> ItemsSnapshot:
    """Read a snapshot written by ``save_items``; SnapshotError if it is missing, damaged,
    or was made with another ``fingerprint``."""
    path = Path(folder)
    if not (path / _MANIFEST).exists():
        raise SnapshotError(f"{path}: no snapshot")
    try:
        manifest = json.loads((path / _MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise SnapshotError(f"{path}: not a version {FORMAT_VERSION} items snapshot")
        if manifest.get("fingerprint") != dict(fingerprint):
            raise SnapshotError(
                f"{path}: made for {manifest.get('fingerprint')}, "
                f"this worker is {dict(fingerprint)}"
            )
        if sha256_file(path / _CATALOG) != manifest["sha256"][_CATALOG]:
            raise SnapshotError(f"{path}: checksum mismatch in {_CATALOG}")
        catalog = Catalog()
        for row in orjson.loads((path / _CATALOG).read_bytes()):
            item_id, title, categories, attributes = row[:4]
            published = row[4] if len(row) > 4 else None  # rows of older snapshots have 4
            catalog.put(
                ItemMeta(str(item_id), str(title), tuple(categories), attributes, published)
            )
        index = HnswIndex.load(
            path / _INDEX, dim=fingerprint.get("dim"), ef_search=ef_search, threads=threads
        )
        position = {str(k): int(v) for k, v in manifest["position"].items()}
        created_at = float(manifest["created_at"])
    except SnapshotError:
        raise
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise SnapshotError(f"{path}: unreadable snapshot: {exc}") from exc
    if len(index) != len(catalog) or len(index) != manifest["items"]:
        raise SnapshotError(
            f"{path}: {len(index)} vectors, {len(catalog)} catalog entries, "
            f"{manifest['items']} in the manifest"
        )
    return ItemsSnapshot(index, catalog, position, created_at)
