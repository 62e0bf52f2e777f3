"""deploy/run-workers.sh notices a process that dies while it waits for readiness, within
seconds, and names it with the tail of its log (it used to wait out the 600 s timeout)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = """#!/usr/bin/env bash
shift 2  # -m streaming_rec
case "$1" in
  topics|demo-catalog) exit 0 ;;
  worker) echo "loading the model"; sleep 1; echo "UnsupportedCodecError: no snappy"; exit 3 ;;
  *) exec sleep 600 ;;  # the trainer and wait-ready: never ready
esac
"""


def test_a_dead_worker_is_named_within_seconds(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    env = {**os.environ, "PY": str(python), "SREC_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "deploy" / "run-workers.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    assert done.returncode == 1
    assert took < 10, took
    assert "worker-0 (pid" in done.stderr and "exited with status 3" in done.stderr
    assert "UnsupportedCodecError: no snappy" in done.stderr
