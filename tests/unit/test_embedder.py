"""SentenceTransformerEmbedder's device, precision and micro-batch choices, with a fake
sentence-transformers module (the real model is exercised by the integration tests)."""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from streaming_rec.core.embedder import SentenceTransformerEmbedder, resolve_device
from streaming_rec.errors import ConfigError

pytestmark = pytest.mark.unit


class FakeModel:
    """Records the device, the casts and the encode calls; returns unit vectors."""

    instances: ClassVar[list[FakeModel]] = []

    def __init__(self, path: str, device: str) -> None:
        self.path, self.device = path, device
        self.casts: list[str] = []
        self.calls: list[dict[str, Any]] = []
        FakeModel.instances.append(self)

    def half(self) -> FakeModel:
        self.casts.append("half")
        return self

    def float(self) -> FakeModel:
        self.casts.append("float")
        return self

    def get_embedding_dimension(self) -> int:
        return 3

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        self.calls.append({"n": len(texts), **kwargs})
        out = np.zeros((len(texts), 3), dtype=np.float16 if "half" in self.casts else np.float64)
        out[:, 0] = 1.0
        return out


@pytest.fixture
def fake_st(monkeypatch: pytest.MonkeyPatch) -> type[FakeModel]:
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = FakeModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    FakeModel.instances = []
    return FakeModel


def cuda(monkeypatch: pytest.MonkeyPatch, available: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda(monkeypatch, False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    cuda(monkeypatch, True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"


def test_cpu_default_is_fp32(monkeypatch: pytest.MonkeyPatch, fake_st: type[FakeModel]) -> None:
    cuda(monkeypatch, False)
    emb = SentenceTransformerEmbedder("/models/m", "auto", batch_size=16)
    (model,) = fake_st.instances
    assert (emb.device, model.device) == ("cpu", "cpu")
    assert (emb.fp16, emb.precision, model.casts) == (False, "fp32", ["float"])
    assert emb.dim == 3 and emb.batch_size == 16


def test_cuda_default_is_fp16(monkeypatch: pytest.MonkeyPatch, fake_st: type[FakeModel]) -> None:
    cuda(monkeypatch, True)
    emb = SentenceTransformerEmbedder("/models/m", "auto")
    (model,) = fake_st.instances
    assert (emb.device, model.device) == ("cuda", "cuda")
    assert (emb.fp16, emb.precision, model.casts) == (True, "fp16", ["half"])


@pytest.mark.parametrize(("fp16", "cast"), [(True, "half"), (False, "float")])
def test_precision_can_be_forced(
    monkeypatch: pytest.MonkeyPatch, fake_st: type[FakeModel], fp16: bool, cast: str
) -> None:
    cuda(monkeypatch, True)
    emb = SentenceTransformerEmbedder("/models/m", "cuda", fp16=fp16)
    assert fake_st.instances[0].casts == [cast]
    assert emb.precision == ("fp16" if fp16 else "fp32")


def test_encode_uses_the_micro_batch_and_returns_float32(
    monkeypatch: pytest.MonkeyPatch, fake_st: type[FakeModel]
) -> None:
    cuda(monkeypatch, True)
    emb = SentenceTransformerEmbedder("/models/m", "cuda", batch_size=7)
    vectors = emb.encode(["a", "b"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 3)
    assert vectors.flags["C_CONTIGUOUS"]
    (call,) = fake_st.instances[0].calls
    assert call["batch_size"] == 7 and call["normalize_embeddings"] is True
    empty = emb.encode([])
    assert empty.shape == (0, 3) and empty.dtype == np.float32
    assert len(fake_st.instances[0].calls) == 1


def test_bad_batch_size(fake_st: type[FakeModel]) -> None:
    with pytest.raises(ConfigError, match="batch size"):
        SentenceTransformerEmbedder("/models/m", "cpu", batch_size=0)
