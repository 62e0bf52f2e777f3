"""Export a local sentence-transformers model to ONNX once, into a cache folder, and reuse it.

The export is ``torch.onnx.export(dynamo=True)`` of the whole sentence-transformers pipeline
(transformer, pooling, normalisation) with dynamic batch and sequence axes; the int8 model
is ONNX Runtime's own ``quantize_dynamic`` of the MatMuls with per-channel int8 weights (per
tensor loses too much: cosine 0.94-0.96 to fp32), except the feed-forward down-projections
(4d → d) of the first and the last layer, which stay fp32 (:func:`fp32_matmuls`). With them
quantised too, the mean cosine to fp32 over the generated queries was 0.9902, on the gate's
0.99; without them 0.9924 (catalog 0.9928 → 0.9949) for about 10 % more time at batch 32.
Keeping every up-projection (d → 4d) fp32 instead gave 0.9943 but cost 28 %. Nothing is
downloaded: the model is read from its local folder (``HF_HUB_OFFLINE=1``).

The cache folder is ``<cache_dir>/<model slug>-<key>``, where the key hashes the model's
files and the versions of torch, transformers, sentence-transformers, onnx, onnxscript and
onnxruntime; a change of any of them exports afresh beside the old folder. A folder is
complete when its ``meta.json`` exists; it is built in a temporary folder and renamed into
place, so two workers exporting at once never see half a model. Each export is checked
against torch on a few probe texts before it is kept (cosine >= ``FP32_MIN_COSINE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from streaming_rec.core.onnx_embedder import (
    FP32_FILE,
    INT8_FILE,
    META_FILE,
    TOKENIZER_FILE,
    OnnxEmbedder,
)
from streaming_rec.errors import StreamingRecError

log = logging.getLogger(__name__)

FP32_MIN_COSINE = 0.9999  # an fp32 export must reproduce torch's vectors
PROBES = [
    "Toy Story (1995) Genres: Animation, Children's, Comedy.",
    "a funny comedy from the 1990s",
    "usual suspects",
    "我想买一款高性能笔记本",
    "  leading and trailing spaces  ",
    "a long text " * 40,
]
VERSIONED = ("torch", "transformers", "sentence-transformers", "onnx", "onnxscript", "onnxruntime")


class ExportError(StreamingRecError):
    """The ONNX export (or its quantisation, or its check against torch) failed."""


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries an export depends on ("missing" if absent)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def cache_folder(cache_dir: Path, model: str, model_path: str) -> Path:
    """``<cache_dir>/<slug>-<key>`` for ``model`` (its id) read from ``model_path``.

    The key (16 hex digits) hashes every file of the model folder (path, size and
    content) and :func:`library_versions`. Raises OSError if the folder cannot be read.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(library_versions(), sort_keys=True).encode())
    root = Path(model_path)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(str(path.stat().st_size).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.").lower() or "model"
    return cache_dir / f"{slug}-{digest.hexdigest()[:16]}"


def ensure_export(
    cache_dir: Path,
    model: str,
    model_path: str,
    *,
    int8: bool = False,
) -> Path:
    """The export folder of ``model`` (exported now if it is not cached yet), with the int8
    file too when ``int8``. Returns the folder; takes seconds when cached (hashing the
    model files), about 10-30 s on 2 cores when it exports.

    Raises ExportError when the export, the quantisation or the check against torch
    fails, OSError when the cache cannot be written.
    """
    folder = cache_folder(cache_dir, model, model_path)
    if not (folder / META_FILE).exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
        try:
            _export(model_path, work)
            try:
                work.rename(folder)
            except OSError:
                if not (folder / META_FILE).exists():  # not a concurrent export that won
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if int8 and not (folder / INT8_FILE).exists():
        _quantize(folder)
    return folder


def _export(model_path: str, work: Path) -> None:
    """Export ``model_path`` into ``work``: model.onnx, tokenizer.json, meta.json; then load
    the export and check it against torch. Raises ExportError."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    try:
        meta, reference = _export_files(model_path, work)
    except Exception as exc:  # any failure of the exporter stack is an ExportError
        raise ExportError(f"ONNX export of {model_path} failed: {exc!r}"[:500]) from exc
    (work / "meta.partial.json").rename(work / META_FILE)
    try:
        with _quiet():
            check = OnnxEmbedder(work, "check", threads=1).encode(PROBES)
    except Exception as exc:
        raise ExportError(f"the ONNX export of {model_path} does not load: {exc!r}") from exc
    cosine = float(np.min(np.sum(check * reference, axis=1)))
    if cosine < FP32_MIN_COSINE:
        raise ExportError(f"the ONNX export differs from torch (cosine {cosine:.6f})")
    meta["export_s"] = round(time.perf_counter() - started, 1)
    meta["probe_min_cosine"] = cosine
    (work / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    log.info(
        "exported %s to ONNX in %.1f s (cosine to torch %.6f)",
        model_path,
        meta["export_s"],
        cosine,
    )


def _export_files(model_path: str, work: Path) -> tuple[dict[str, Any], np.ndarray]:
    """torch.onnx.export (dynamo) of the whole sentence-transformers pipeline into ``work``,
    its tokenizer and meta.partial.json; returns the meta and torch's vectors of PROBES,
    (len(PROBES), d) float32, L2-normalised. Raises whatever the exporter stack raises."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu").float().eval()
    features = _tensors(model.preprocess(PROBES[:2]))
    names = list(features)
    max_length = int(model.max_seq_length or 512)
    batch = torch.export.Dim("batch", min=1, max=65_536)
    seq = torch.export.Dim("seq", min=1, max=max_length)
    with torch.no_grad(), _quiet():
        torch.onnx.export(
            _pipeline(model, names),
            tuple(features[n] for n in names),
            str(work / FP32_FILE),
            input_names=names,
            output_names=["sentence_vector"],
            dynamic_shapes=(({0: batch, 1: seq},) * len(names),),  # one entry: *tensors
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    tokenizer = model.tokenizer
    source = Path(model_path) / TOKENIZER_FILE
    if source.exists():
        shutil.copyfile(source, work / TOKENIZER_FILE)
    else:  # a fast tokenizer can write its tokenizer.json
        tokenizer.backend_tokenizer.save(str(work / TOKENIZER_FILE))
    dim = model.get_embedding_dimension()
    meta: dict[str, Any] = {
        "model_path": model_path,
        "dim": int(dim) if dim is not None else None,
        "max_seq_length": max_length,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "inputs": names,
        "versions": library_versions(),
        "export_s": 0.0,
    }
    (work / "meta.partial.json").write_text(json.dumps(meta), encoding="utf-8")
    reference = model.encode(
        PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return meta, np.asarray(reference, dtype=np.float32)


def fp32_matmuls(model_path: Path) -> list[str]:
    """The MatMul nodes the int8 recipe leaves in fp32, by node name: the first and the last
    of those whose constant weight narrows its input (shape (k, d) with k > d: a
    transformer's feed-forward down-projection, one per layer, in graph order)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    down = []
    for node in graph.node:
        weight = shapes.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is not None and len(weight) == 2 and weight[0] > weight[1]:
            down.append(node.name)
    return sorted({down[0], down[-1]}, key=down.index) if down else []


def _quantize(folder: Path) -> None:
    """Write the int8 model (``INT8_FILE``) beside ``model.onnx``: dynamic int8 MatMuls with
    per-channel weights, two feed-forward down-projections left in fp32 (:func:`fp32_matmuls`).
    Raises ExportError when ONNX Runtime's quantiser fails."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        started = time.perf_counter()
        handle, partial = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=folder)
        os.close(handle)
        try:
            with _quiet():
                quantize_dynamic(
                    folder / FP32_FILE,
                    partial,
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"],
                    nodes_to_exclude=fp32_matmuls(folder / FP32_FILE),
                )
            os.replace(partial, folder / INT8_FILE)
        finally:
            Path(partial).unlink(missing_ok=True)
    except Exception as exc:
        raise ExportError(f"int8 quantisation of {folder} failed: {exc!r}"[:500]) from exc
    log.info("quantised %s to int8 in %.1f s", folder.name, time.perf_counter() - started)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Mute the exporter's and the quantiser's chatter (per-node INFO/WARNING logs on the
    root logger, progress lines on stdout, shape warnings) while they run; errors stay."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _tensors(features: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}


def _pipeline(model: Any, names: list[str]) -> Any:
    """A torch module: positional token tensors (in ``names`` order) → the model's
    sentence vector (what ONNX exports: pooling and normalisation included)."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            features = dict(zip(names, tensors, strict=True))
            return self.model(features)["sentence_embedding"]

    return Pipeline()
