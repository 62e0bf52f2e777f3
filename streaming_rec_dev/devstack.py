"""A local stack for tests, benchmarks and the replay harness: a single-node Kafka broker
(deploy/kafka/kafka.sh) and real worker processes, each started and stopped by the caller.

    with LocalBroker.start_or_use(workdir) as bootstrap:
        worker = WorkerProcess(env_for(settings), workdir / "worker.log", settings.web_port)
        worker.start(); worker.wait_ready(min_items=3883)
        ...
        worker.stop()
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from streaming_rec.config import Settings

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"


def free_port_pair() -> int:
    """A port p such that p and p+1 are both free (broker and controller listeners)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port > 65000:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports")


@contextmanager
def local_broker(data_dir: Path, heap: str = "-Xmx768m") -> Iterator[str]:
    """A broker of our own on a free port, stopped on exit whatever happens; or the cluster
    that KAFKA_BOOTSTRAP_SERVERS / SREC_BOOTSTRAP_SERVERS names, left alone."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("SREC_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    port = free_port_pair()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_DATA_DIR": str(data_dir),
        "KAFKA_HEAP": heap,
    }

    def stop() -> None:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, timeout=60, check=False)

    atexit.register(stop)  # also when the process dies before the finally below
    try:
        subprocess.run([str(KAFKA_SH), "start"], env=env, timeout=600, check=True)
        yield f"127.0.0.1:{port}"
    finally:
        stop()
        atexit.unregister(stop)


def fresh_topics(bootstrap: str, data_dir: Path, tag: str = "t") -> Settings:
    """Settings with topics and a consumer group of their own (a random prefix) on
    ``bootstrap``, the topics created; for a test or benchmark that starts its own workers."""
    from streaming_rec.config import load_settings
    from streaming_rec.edge.admin import ensure_topics
    from streaming_rec.topics import TopicCatalog

    unique = f"{tag}{os.urandom(4).hex()}"
    settings = load_settings(
        bootstrap_servers=bootstrap,
        topic_prefix=f"{unique}.",
        app_id=f"srec-{unique}",
        data_dir=data_dir,
        web_port=free_port_pair(),
    )
    ensure_topics(settings, TopicCatalog.load())
    return settings


def worker_env(settings: Settings, name: str = "worker-0", **extra: str) -> dict[str, str]:
    """The environment of a worker process that shares ``settings`` (other SREC_ vars dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SREC_")}
    env.update(
        {
            "SREC_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "SREC_TOPIC_PREFIX": settings.topic_prefix,
            "SREC_APP_ID": settings.app_id,
            "SREC_DATA_DIR": str(settings.data_dir),
            "SREC_WEB_PORT": str(settings.web_port),
            "SREC_TRAINER_WEB_PORT": str(settings.trainer_web_port),
            "SREC_UNKNOWN_ITEM_HOLD_S": str(settings.unknown_item_hold_s),
            "SREC_WORKER_NAME": name,
            "HF_HUB_OFFLINE": "1",
            # its log file is read while it runs (tests, benches): no line waits in a buffer
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class WorkerProcess:
    """A real `streaming-rec worker` (or `trainer`) process with its own port and log file."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        port: int,
        command: str = "worker",
        argv: list[str] | None = None,
    ):
        """``argv``: what to run instead of ``python -m streaming_rec <command>`` (a test's
        fault-injecting wrapper of the worker), with this Python."""
        self.env = env
        self.log_path = log_path
        self.port = port
        self.command = command
        self.argv = argv or ["-m", "streaming_rec", command]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.argv],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        atexit.register(self._kill)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return dict(orjson.loads(r.read()))
        except OSError:
            return None

    def wait_ready(self, min_items: int = 0, timeout: float = 240.0) -> dict[str, Any]:
        """Wait until /health says ready with at least ``min_items`` in the index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise RuntimeError(f"worker exited ({code}):\n{self.log_tail()}")
            health = self.health()
            if health and health["ready"] and health.get("index_items", 0) >= min_items:
                return health
            time.sleep(0.5)
        raise RuntimeError(f"worker not ready in {timeout} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Signal the worker and wait; return the seconds it took to exit."""
        if not self.alive():
            return 0.0
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise RuntimeError(f"worker ignored signal {sig} for {timeout} s") from None
        return time.monotonic() - started

    def _kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
