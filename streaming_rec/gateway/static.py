"""Where the demo page's files are (package data)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

STATIC = Path(str(resources.files("streaming_rec.gateway") / "static"))
