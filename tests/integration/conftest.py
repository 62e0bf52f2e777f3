"""Integration fixtures: topics with a per-session prefix, the MovieLens-1M catalog, one
real worker process (real model, real broker) and a client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streaming_rec.config import Settings, load_settings
from streaming_rec.datasets.movielens import Movie, load_movies
from streaming_rec.edge.admin import ensure_topics
from streaming_rec.edge.client import RecClient
from streaming_rec.topics import TopicCatalog
from tests.conftest import free_port_pair

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A real `streaming-rec worker` process with its own web port and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        self.env = env
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streaming_rec", "worker"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return dict(orjson.loads(r.read()))
        except OSError:
            return None

    def wait_ready(self, min_items: int = 0, timeout: float = 240.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.log_tail()}")
            health = self.health()
            if health and health["ready"] and health["index_items"] >= min_items:
                return health
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Signal the worker and wait; return the seconds it took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"worker ignored signal {sig} for {timeout} s") from None
        return time.monotonic() - started

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{tag}.",
        app_id=f"srec-test-{tag}",
        data_dir=tmp_path_factory.mktemp("worker"),
        web_port=free_port_pair(),
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
    settings: Settings, client: RecClient, movies: list[Movie], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker with the MovieLens-1M catalog loaded and indexed."""
    for movie in movies:
        client.upsert_item(movie.as_item())
    client.flush()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SREC_")}
    env.update({
        "SREC_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "SREC_TOPIC_PREFIX": settings.topic_prefix,
        "SREC_APP_ID": settings.app_id,
        "SREC_DATA_DIR": str(settings.data_dir),
        "SREC_WEB_PORT": str(settings.web_port),
        "SREC_WORKER_NAME": "test-worker",
        "HF_HUB_OFFLINE": "1",
    })
    process = WorkerProcess(env, tmp_path_factory.mktemp("logs") / "worker.log", settings.web_port)
    process.start()
    try:
        process.wait_ready(min_items=len(movies), timeout=300)
        yield process
    finally:
        if process.process is not None and process.process.poll() is None:
            process.stop(timeout=30)
