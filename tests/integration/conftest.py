"""Integration fixtures: topics with a per-session prefix, the MovieLens-1M catalog, one
real worker process (real model, real broker) and a client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streaming_rec.config import Settings, load_settings
from streaming_rec.edge.admin import ensure_topics
from streaming_rec.edge.client import RecClient
from streaming_rec.topics import TopicCatalog
from streaming_rec_dev.datasets.movielens import Movie, load_movies
from streaming_rec_dev.devstack import WorkerProcess, free_port_pair, fresh_topics, worker_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{tag}.",
        app_id=f"srec-test-{tag}",
        data_dir=tmp_path_factory.mktemp("worker"),
        web_port=free_port_pair(),
        trainer_web_port=free_port_pair(),
        unknown_item_hold_s=3.0,  # held clicks on unknown items are dead-lettered in ~3.5 s
    )


@pytest.fixture(scope="session")
def movies() -> list[Movie]:
    return load_movies("ml-1m")


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[RecClient]:
    ensure_topics(settings, TopicCatalog.load())
    with RecClient(settings) as rec_client:
        yield rec_client


@pytest.fixture(scope="session")
def worker(
    settings: Settings,
    client: RecClient,
    movies: list[Movie],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """One worker with the MovieLens-1M catalog loaded and indexed."""
    for movie in movies:
        client.upsert_item(movie.as_item())
    client.flush()
    env = worker_env(settings, "test-worker")
    process = WorkerProcess(env, tmp_path_factory.mktemp("logs") / "worker.log", settings.web_port)
    process.start()
    try:
        process.wait_ready(min_items=len(movies), timeout=300)
        yield process
    finally:
        if process.process is not None and process.process.poll() is None:
            process.stop(timeout=30)


@pytest.fixture(scope="session")
def trainer(settings: Settings, worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory):
    """The trainer process beside the worker (refreshes as soon as it sees new feedback)."""
    env = worker_env(settings, "test-trainer", SREC_TRAINER_INTERVAL_S="1")
    log = tmp_path_factory.mktemp("trainer-logs") / "trainer.log"
    process = WorkerProcess(env, log, settings.trainer_web_port, command="trainer")
    process.start()
    try:
        process.wait_ready(timeout=120)
        yield process
    finally:
        process.stop(timeout=30)


@pytest.fixture
def own_topics(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings with topics and a consumer group of their own on the session broker, for
    a test that starts its own workers (data in tmp_path/worker)."""
    return fresh_topics(kafka_bootstrap, tmp_path / "worker", "o")
