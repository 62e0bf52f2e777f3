"""The test tree itself: pytest imports test modules by their file name (no packages), so
two test files with one name in different tiers stop the whole run at collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_no_two_test_modules_share_a_file_name() -> None:
    names = Counter(p.name for p in (Path(__file__).parents[1]).rglob("test_*.py"))
    assert [name for name, n in names.items() if n > 1] == []
