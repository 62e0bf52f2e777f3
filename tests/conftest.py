"""Session fixtures shared by every tier: the repository root and, for the integration
tier, a real Kafka broker of its own (started on a free port, stopped whatever happens)
unless KAFKA_BOOTSTRAP_SERVERS points at one."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"


def free_port_pair() -> int:
    """A port p such that p and p+1 are both free (broker and controller listeners)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("SREC_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    port = free_port_pair()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("kafka")),
        "KAFKA_HEAP": "-Xmx768m",
    }

    def stop() -> None:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, timeout=60, check=False)

    atexit.register(stop)  # also when the session dies before the fixture's teardown
    subprocess.run([str(KAFKA_SH), "start"], env=env, timeout=600, check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop()
        atexit.unregister(stop)
