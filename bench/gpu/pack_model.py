"""Write an fp16 copy of the default model to var/gpu-model (git-ignored), small enough to
travel to a machine that has sentence-transformers but not our model package.

    .venv/bin/python bench/gpu/pack_model.py [--out var/gpu-model]

all-MiniLM-L6-v2's fp32 weights are 91 MB; the fp16 copy is 46 MB. The benchmark loads
it and casts to the precision it measures (fp16 or fp32): the throughput is that of the
original model, the fp32 vectors differ from the original ones by the weight rounding.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "var" / "gpu-model"))
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    from sentence_transformers import SentenceTransformer

    from streaming_rec.core.embedder import resolve_model

    model = SentenceTransformer(resolve_model(args.model), device="cpu")
    model.half()
    model.save(args.out)
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file())
    print(f"wrote {args.out} ({size / 2**20:.1f} MiB, fp16)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
