"""The encoder on ONNX Runtime (CPU): an exported sentence-transformers model, run without torch.

The folder it loads is written by :func:`streaming_rec.core.onnx_export.export_model`:
``model.onnx`` (fp32; tokens → pooled, L2-normalised sentence vector, the pooling and the
normalisation are inside the graph), optionally ``model.int8-v2.onnx`` (dynamic int8, per-
channel weights, the first and last feed-forward down-projections left in fp32), the model's
``tokenizer.json`` and ``meta.json`` (input names, truncation length, pad id). Tokenisation
is done by the ``tokenizers`` package from that ``tokenizer.json``, the same fast tokenizer
sentence-transformers uses.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streaming_rec.errors import ConfigError

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8-v2.onnx"  # the recipe of onnx_export._quantize, v2
META_FILE = "meta.json"
TOKENIZER_FILE = "tokenizer.json"


def default_onnx_threads(cores: int | None = None) -> int:
    """Intra-op threads when none are set: half the cores (``os.cpu_count()`` unless
    given), at least 1. On 2 shared cores one thread answered a single query in 8.8 ms p50
    / 14.5 ms p99 against 14.8 / 66 ms with two (docs/bench/encoders.json): the event
    loop, the Kafka client and a local broker need the other core."""
    return max(1, (cores if cores is not None else os.cpu_count() or 2) // 2)


def session_options(threads: int) -> Any:
    """ONNX Runtime session options for a worker that shares its cores.

    ``threads`` intra-op threads (>= 1), one inter-op thread, sequential execution, and
    no spin-waiting between ops: idle threads sleep instead of burning a core the event
    loop and the broker client need. Raises ConfigError if ``threads`` < 1.
    """
    import onnxruntime as ort

    if threads < 1:
        raise ConfigError(f"ONNX intra-op threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


class OnnxEmbedder:
    """An exported sentence-transformers model on ONNX Runtime's CPU provider.

    ``folder`` is an export folder (see the module docstring); ``int8`` picks
    ``model.int8-v2.onnx`` instead of ``model.onnx``. ``name`` is the model id recorded with
    every vector (the caller decides it: the fp32 export shares the torch model's id, int8
    has its own). ``threads`` is ONNX Runtime's intra-op thread count, ``batch_size`` the
    most texts run at once (longer inputs are split, shortest first, to pad less).

    ``encode`` returns (n, dim) float32, L2-normalised rows. Thread-safe (one run at a
    time). Raises OSError or ValueError (from ONNX Runtime or json) when the folder is
    incomplete or corrupt, ConfigError on bad arguments.
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        *,
        int8: bool = False,
        threads: int = 1,
        batch_size: int = 64,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if batch_size < 1:
            raise ConfigError(f"encoder batch size must be >= 1, got {batch_size}")
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        path = folder / (INT8_FILE if int8 else FP32_FILE)
        self.name = name
        self.backend = "onnx-int8" if int8 else "onnx-fp32"
        self.precision = "int8" if int8 else "fp32"
        self.batch_size = batch_size
        self.threads = threads
        self.folder = folder
        self.dim = int(meta["dim"])
        self._session = ort.InferenceSession(
            str(path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        self._tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=meta["pad_token"])
        self._lock = threading.Lock()
        log.info(
            "encoder %s on ONNX Runtime %s (%s, %d intra-op threads, micro-batch %d, dim %d)",
            name,
            ort.__version__,
            self.precision,
            threads,
            batch_size,
            self.dim,
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised; (0, dim) for no texts."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if len(texts) <= self.batch_size:
            order = list(range(len(texts)))
        else:  # similar lengths together: less padding per run
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                out[chunk] = self._run([texts[i] for i in chunk])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, np.maximum(norms, 1e-12), out=out)  # int8 drifts off the unit sphere
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self._inputs}
        (vectors,) = self._session.run(None, feed)
        return np.asarray(vectors, dtype=np.float32)
