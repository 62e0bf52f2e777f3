"""Warm the encoder cache of the container image (run by the Dockerfile's build stage).

    python warm_encoder.py export DIR   # in an environment with torch: export fp32 + int8
    python warm_encoder.py adopt DIR    # in the runtime environment (no torch): file the
                                        # export under the runtime's cache key, then encode

The export cache is keyed by the model's files and the versions of the libraries an export
depends on (streaming_rec.core.onnx_export.cache_folder), torch among them. The runtime
environment has no torch, so its key differs from the exporter's: ``adopt`` moves the one
complete export to the key the runtime computes, then loads it as a worker would
(SREC_ENCODER=onnx and onnx-int8) and encodes a probe, so an image whose workers would
try to export at start (and fail without torch) is never built. ONNX Runtime, onnx and
tokenizers are the same versions in both environments (one pip resolution of the same
pyproject), so the adopted export is exactly what the runtime would have made.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

MODEL = os.environ.get("SREC_MODEL", "all-MiniLM-L6-v2")


def export(cache_dir: Path) -> None:
    from streaming_rec.core.embedder import resolve_model
    from streaming_rec.core.onnx_export import ensure_export

    folder = ensure_export(cache_dir, MODEL, resolve_model(MODEL), int8=True)
    print(f"exported {MODEL} to {folder}")


def adopt(cache_dir: Path) -> None:
    from streaming_rec.core.embedder import open_embedder, resolve_model
    from streaming_rec.core.onnx_embedder import META_FILE
    from streaming_rec.core.onnx_export import cache_folder

    exports = [p for p in cache_dir.iterdir() if (p / META_FILE).exists()]
    if len(exports) != 1:
        raise SystemExit(f"expected one export in {cache_dir}, found {exports}")
    target = cache_folder(cache_dir, MODEL, resolve_model(MODEL))
    if exports[0] != target:
        exports[0].rename(target)
    for leftover in cache_dir.glob(".*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for encoder in ("onnx", "onnx-int8"):
        embedder = open_embedder(MODEL, encoder, device="cpu", onnx_threads=1, cache_dir=cache_dir)
        vectors = embedder.encode(["a funny film"])
        backend = getattr(embedder, "backend", "?")
        if not backend.startswith("onnx"):
            raise SystemExit(f"{encoder}: the runtime fell back to {backend}")
        print(f"{encoder}: {embedder.name} on {backend}, dim {vectors.shape[1]}, from {target}")


if __name__ == "__main__":
    command, directory = sys.argv[1], Path(sys.argv[2])
    {"export": export, "adopt": adopt}[command](directory)
