"""bench/ imports one way: entry points (scripts with a ``__main__`` block) import library
modules (common, the parts, summary, plots), and nothing imports an entry point, so no
circle runs through a ``__main__`` block."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in BENCH.rglob("*.py")}


def _is_entry_point(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
    )


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_bench_module_imports_an_entry_point() -> None:
    modules = _modules()
    entry_points = {path.stem for path, tree in modules.items() if _is_entry_point(tree)}
    assert {"run_all", "soak", "workers"} <= entry_points
    wrong = {
        f"{path.relative_to(BENCH)} imports {name}"
        for path, tree in modules.items()
        for name in _imported(tree) & entry_points
    }
    assert not wrong, sorted(wrong)


def test_the_parts_are_library_modules() -> None:
    modules = _modules()
    for part in ("floor", "e2e", "freshness", "index_scale", "common", "summary", "plots"):
        assert not _is_entry_point(modules[BENCH / f"{part}.py"]), part
