"""A plain (non-editable) install ships what runs: the wheel holds `streaming_rec` with its
topic contract (package data, found through importlib.resources) and nothing of the
harness (`streaming_rec_dev`), the tests or the benchmarks.

The wheel is built from a copy of the sources and installed with ``--no-deps`` into a
fresh venv; the test venv's site-packages are then put on that venv's path (a .pth file)
for the dependencies, so nothing is downloaded. No broker, no model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "README.md", "topics", "streaming_rec")


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of what the build reads (nothing written in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    pip_wheel = ("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist)
    run(sys.executable, *pip_wheel, src, cwd=src)
    (built,) = dist.glob("streaming_rec-*.whl")
    return built


def test_the_wheel_holds_the_runtime_and_the_contract_not_the_harness(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"streaming_rec", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    assert "streaming_rec/contract/topics.json" in names
    contract = {Path(n).name for n in names if n.startswith("streaming_rec/contract/schemas/")}
    assert contract == {p.name for p in (ROOT / "topics" / "schemas").glob("*.json")}
    assert "streaming_rec/py.typed" in names
    assert "streaming_rec/demo.py" in names  # the demo catalog (movies read from PyPI data)


def test_an_installed_wheel_runs_the_cli_and_reads_the_topic_contract(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    # the dependencies (torch, faust, ...) from the test venv, after the venv's own packages
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
        ).strip()
    )
    (site / "_test_venv_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SREC_")}

    assert "Create every topic" in run(
        venv / "bin" / "streaming-rec", "topics", "--help", cwd=tmp_path, env=env
    )
    probe = (
        "import streaming_rec, streaming_rec.topics as t\n"
        "print(streaming_rec.__file__)\n"
        "print(t.TOPICS_DIR)\n"
        "print(len(t.TopicCatalog.load().all()))\n"
        "import importlib.util as u; print(u.find_spec('streaming_rec_dev'))\n"
    )
    package_file, contract_dir, topics, dev = run(
        python, "-c", probe, cwd=tmp_path, env=env
    ).split()
    assert Path(package_file).is_relative_to(site), package_file
    assert Path(contract_dir) == site / "streaming_rec" / "contract"
    assert int(topics) == len(json.loads((ROOT / "topics" / "topics.json").read_text())["topics"])
    assert dev == "None"  # the harness is not installed
    installed = tree_bytes(site / "streaming_rec")
    print(f"installed runtime package: {installed / 1024:.0f} KiB ({site / 'streaming_rec'})")
