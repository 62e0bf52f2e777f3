"""One chart of latency vs offered load for several bench runs (docs/bench/load-compare.png).

    .venv/bin/python bench/compare.py "ONNX fp32=docs/bench" "torch fp32=docs/bench/torch"

Each argument is LABEL=FOLDER, a folder written by ``bench/run_all.py --out FOLDER``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, log
from plots import plot_compare


def main(argv: list[str]) -> int:
    runs = {}
    for arg in argv:
        label, folder = arg.split("=", 1)
        runs[label] = json.loads((ROOT / folder / "load.json").read_text())
    bound = min(r["results"].get("p99_bound_ms", 100.0) for r in runs.values())
    path = plot_compare(runs, bound, ROOT / "docs" / "bench" / "load-compare.png")
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
