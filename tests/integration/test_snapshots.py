"""Items snapshots at the worker: a restart loads the snapshot and reads only the tail of
`item-vectors`; a damaged snapshot, or one that does not fit the topic, is reported in
the log and the index is rebuilt from the whole topic."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.schemas import ItemVector
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

FIRST, LATER = 150, 10


def replayed(log_text: str) -> int:
    """Records of item-vectors the last start had to read (from the replica's log line)."""
    found = re.findall(r"replicating \S+item-vectors \((\d+) records to catch up\)", log_text)
    assert found, "no replica line in the log"
    return int(found[-1])


def restart(worker: WorkerProcess, items: int) -> str:
    """Start the worker, wait until it has ``items`` and has written a snapshot of them,
    stop it; the log of that run."""
    before = worker.log_path.read_text() if worker.log_path.exists() else ""
    worker.start()
    try:
        deadline = time.monotonic() + 240
        health = worker.wait_ready(timeout=240)
        while health["index_items"] != items and time.monotonic() < deadline:
            time.sleep(0.3)
            health = worker.health() or health
        assert health["index_items"] == items, worker.log_tail()
        manifest = worker_snapshot(worker) / "manifest.json"
        while time.monotonic() < deadline:
            written = "items snapshot written" in worker.log_path.read_text()[len(before) :]
            if written and json.loads(manifest.read_text())["items"] == items:
                break
            time.sleep(0.3)
    finally:
        assert worker.stop(timeout=30) < 10
    return worker.log_path.read_text()[len(before) :]


def worker_snapshot(worker: WorkerProcess) -> Path:
    return Path(worker.env["SREC_DATA_DIR"]) / "items-snapshot"


def test_restart_reads_only_the_tail_and_a_bad_snapshot_is_rebuilt(
    own_topics: Settings, movies: list[Movie], tmp_path: Path
) -> None:
    env = worker_env(own_topics, "snap-worker", SREC_SNAPSHOT_INTERVAL_S="1")
    worker = WorkerProcess(env, tmp_path / "worker.log", own_topics.web_port)
    with RecClient(own_topics, listen=False) as client:
        for movie in movies[:FIRST]:
            client.upsert_item(movie.as_item())
        client.flush()
        first = restart(worker, FIRST)
        assert "no items snapshot" in first
        manifest = json.loads((worker_snapshot(worker) / "manifest.json").read_text())
        assert manifest["items"] == FIRST

        # while the worker is away, the trainer (say) publishes LATER new item vectors
        # and one tombstone straight to item-vectors: the tail the restart must read
        rng = np.random.default_rng(7)
        for n in range(LATER):
            vector = rng.normal(size=384).astype(np.float32)
            message = ItemVector(
                item_id=f"late-{n}",
                vector=vector / np.linalg.norm(vector),
                dim=384,
                title=f"A late item {n}",
                model="all-MiniLM-L6-v2",
                updated_at=time.time(),
            )
            client.send_raw("item-vectors", b"late-%d" % n, codec.encode_item_vector(message))
        client.send_raw("item-vectors", movies[0].item_id.encode(), None)
        client.flush()
        total = FIRST + LATER - 1
        second = restart(worker, total)
        assert "items snapshot loaded" in second
        tail = replayed(second)
        print(f"restart from the snapshot read {tail} records of item-vectors")
        assert tail == LATER + 1  # only what came after the snapshot, not the whole topic

        # a damaged snapshot: one flipped byte in the index file
        index_file = worker_snapshot(worker) / "index" / "index.bin"
        raw = bytearray(index_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        index_file.write_bytes(bytes(raw))
        third = restart(worker, total)
        assert re.search(r"items snapshot unusable \(.*checksum mismatch", third), third
        assert replayed(third) >= FIRST + LATER  # the whole topic again

        # a snapshot whose offsets do not fit the topic (as if it had been recreated)
        manifest_file = worker_snapshot(worker) / "manifest.json"
        manifest = json.loads(manifest_file.read_text())
        manifest["position"] = {p: 10**9 for p in manifest["position"]}
        manifest_file.write_text(json.dumps(manifest))
        fourth = restart(worker, total)
        assert "items snapshot does not fit item-vectors" in fourth, fourth
