"""The replay harness deletes the broker's and the worker's data of a work folder it made
(300-500 MB a run) and keeps the logs; a folder the caller passed is left alone."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from streaming_rec_dev.evaluation.replay import _dropping_data

pytestmark = pytest.mark.unit


def folder(root: Path) -> Path:
    for name in ("kafka", "worker"):
        (root / name).mkdir(parents=True)
        (root / name / "data").write_bytes(b"x" * 10)
    (root / "worker.log").write_text("log")
    return root


@pytest.mark.parametrize("raises", [False, True])
def test_a_folder_the_run_made_loses_its_data_and_keeps_its_logs(
    tmp_path: Path, raises: bool
) -> None:
    work = folder(tmp_path / "w")
    expect = pytest.raises(RuntimeError) if raises else contextlib.nullcontext()
    with expect, _dropping_data(work, own=True):
        if raises:
            raise RuntimeError("the replay failed")
    assert sorted(p.name for p in work.iterdir()) == ["worker.log"]


def test_a_folder_the_caller_passed_is_left_alone(tmp_path: Path) -> None:
    work = folder(tmp_path / "w")
    with _dropping_data(work, own=False):
        pass
    assert sorted(p.name for p in work.iterdir()) == ["kafka", "worker", "worker.log"]
