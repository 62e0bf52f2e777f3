"""Ready means ready: a fresh worker says ready only once its index holds the whole
catalog that `items` held when it started; until then /health says how far it is."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess, worker_env

pytestmark = pytest.mark.integration
CATALOG = 600


def test_a_fresh_worker_is_ready_only_with_the_whole_catalog_indexed(
    own_topics: Settings, movies: list[Movie], tmp_path: Path
) -> None:
    with RecClient(own_topics, listen=False) as client:
        for movie in movies[:CATALOG]:
            client.upsert_item(movie.as_item())
        client.flush()
    worker = WorkerProcess(
        worker_env(own_topics, "ready-worker"), tmp_path / "worker.log", own_topics.web_port
    )
    worker.start()
    try:
        progress: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert worker.alive(), worker.log_tail()
            health = worker.health()
            if health is not None:
                progress.append(health["items"])
                if health["ready"]:
                    break
            time.sleep(0.05)
        assert health is not None and health["ready"], worker.log_tail()
        assert health["index_items"] == CATALOG  # not the 20-600 of a partial index
        assert health["items"] == f"{CATALOG} of {CATALOG} items embedded"
        counts = [int(m.group(1)) for p in progress if (m := re.match(r"(\d+) of", p))]
        assert counts == sorted(counts)  # it only moves forward
        assert "ready: 600 items in the index" in worker.log_path.read_text()
    finally:
        worker.stop(timeout=30)
