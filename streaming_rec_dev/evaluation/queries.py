"""Natural-language test queries generated from the catalog metadata (no query log exists).

Known-item queries (seeded): for a random movie, either a partial title (a contiguous run
of about half of its words, at least one; the year dropped) or the whole title with one
light misspelling (two adjacent letters of a word of 5+ letters swapped, or one letter
dropped). "Usual Suspects, The" is read as "The Usual Suspects" first. Target: that
movie. Scored by MRR@10 and Recall@10 (= HitRate@10, one target).

Attribute queries (seeded): a genre phrase ("a horror movie"), optionally with a decade
("from the 1980s", "a 1990s ..."), over the genre/decade pairs with at least 10 matching
movies, plus a few fixed ones. Scored by metadata: precision@10 = share of the 10 results
whose genres include one of the query's genres and, when it names a decade, whose year is
in it (genre and decade precision are reported apart as well).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.evaluation.metrics import recall_at_k, reciprocal_rank_at_k

GENRE_PHRASES = {
    "Action": "an action movie",
    "Adventure": "an adventure film",
    "Animation": "an animated film",
    "Children's": "a film for children",
    "Comedy": "a comedy",
    "Crime": "a crime film",
    "Documentary": "a documentary",
    "Drama": "a drama",
    "Fantasy": "a fantasy film",
    "Film-Noir": "a film noir",
    "Horror": "a horror movie",
    "Musical": "a musical",
    "Mystery": "a mystery film",
    "Romance": "a romantic movie",
    "Sci-Fi": "a science fiction film",
    "Thriller": "a thriller",
    "War": "a war film",
    "Western": "a western",
}
FIXED: list[tuple[str, tuple[str, ...], int | None]] = [
    ("animated films for children", ("Animation", "Children's"), None),
    ("a scary horror movie from the 80s", ("Horror",), 1980),
    ("a funny comedy from the 1990s", ("Comedy",), 1990),
    ("a classic film noir from the 1940s", ("Film-Noir",), 1940),
    ("a space science fiction adventure", ("Sci-Fi",), None),
]
_ARTICLE = re.compile(r"^(.*), (The|A|An|La|Le|Les|L'|Il|Das|Der|Die|El)$")


@dataclass(frozen=True)
class KnownItemQuery:
    qid: str
    text: str
    item_id: str
    kind: str  # "partial" or "misspelled"


@dataclass(frozen=True)
class AttributeQuery:
    qid: str
    text: str
    genres: tuple[str, ...]  # a result matches with any of them
    decade: int | None  # 1980 = 1980..1989


def plain_title(title: str) -> str:
    """'Usual Suspects, The (1995)' → 'The Usual Suspects' (year and alternate titles gone)."""
    name = re.sub(r"\s*\(\d{4}\)\s*$", "", title).strip()
    name = re.sub(r"\s*\([^)]*\)\s*$", "", name).strip() or name  # "(a.k.a. ...)"
    match = _ARTICLE.match(name)
    return f"{match.group(2)} {match.group(1)}" if match else name


def misspell(text: str, rng: random.Random) -> str:
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    word = words[i]
    j = rng.randrange(1, len(word) - 1)
    if rng.random() < 0.5:
        word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]  # swap j, j+1
    else:
        word = word[:j] + word[j + 1 :]  # drop j
    words[i] = word
    return " ".join(words)


def partial(text: str, rng: random.Random) -> str:
    words = text.split()
    size = max(1, (len(words) + 1) // 2)
    start = rng.randrange(0, len(words) - size + 1)
    return " ".join(words[start : start + size])


def known_item_queries(
    movies: Sequence[Movie], n: int = 200, seed: int = 7
) -> list[KnownItemQuery]:
    rng = random.Random(seed)
    out: list[KnownItemQuery] = []
    for movie in rng.sample(list(movies), min(n, len(movies))):
        title = plain_title(movie.title)
        if len(out) % 2 == 0:
            out.append(
                KnownItemQuery(f"ki{len(out)}", partial(title, rng), movie.item_id, "partial")
            )
        else:
            text = misspell(title, rng)
            out.append(KnownItemQuery(f"ki{len(out)}", text, movie.item_id, "misspelled"))
    return out


def matches(movie: Movie, genres: Sequence[str], decade: int | None) -> tuple[bool, bool]:
    """(genre matches, decade matches) — the decade part is True when none is asked."""
    genre_ok = bool(set(genres) & set(movie.genres))
    decade_ok = decade is None or (movie.year is not None and decade <= movie.year < decade + 10)
    return genre_ok, decade_ok


def attribute_queries(movies: Sequence[Movie], n: int = 50, seed: int = 7) -> list[AttributeQuery]:
    rng = random.Random(seed)
    phrasing = ["{g} from the {d}s", "a {d}s {gg}", "{g} made in the {d}s", "{g} from the {dd}s"]
    pairs: list[tuple[str, int | None]] = []
    decades = sorted({m.year // 10 * 10 for m in movies if m.year})
    for genre in GENRE_PHRASES:
        if sum(matches(m, [genre], None)[0] for m in movies) >= 10:
            pairs.append((genre, None))
        for start in decades:
            if sum(all(matches(m, [genre], start)) for m in movies) >= 10:
                pairs.append((genre, start))
    out = [AttributeQuery(f"at{i}", t, tuple(g), d) for i, (t, g, d) in enumerate(FIXED)]
    for genre, decade in rng.sample(pairs, min(max(0, n - len(out)), len(pairs))):
        phrase = GENRE_PHRASES[genre]
        if decade is None:
            text = phrase
        else:
            template = rng.choice(phrasing)
            bare = phrase.split(" ", 1)[1]  # "horror movie"
            text = template.format(g=phrase, gg=bare, d=decade, dd=str(decade)[2:])
        out.append(AttributeQuery(f"at{len(out)}", text, (genre,), decade))
    return out


def score_known_item(
    queries: Sequence[KnownItemQuery], answers: Mapping[str, Sequence[str]], k: int = 10
) -> dict[str, dict[str, float]]:
    """MRR@k and Recall@k, overall and per kind (a query with no answer scores 0)."""
    out: dict[str, dict[str, float]] = {}
    for kind in ("all", "partial", "misspelled"):
        chosen = [q for q in queries if kind in ("all", q.kind)]
        rr = [reciprocal_rank_at_k(answers.get(q.qid, []), {q.item_id}, k) for q in chosen]
        rec = [recall_at_k(answers.get(q.qid, []), {q.item_id}, k) for q in chosen]
        out[kind] = {
            "queries": float(len(chosen)),
            f"mrr@{k}": float(np.mean(rr)) if rr else 0.0,
            f"recall@{k}": float(np.mean(rec)) if rec else 0.0,
        }
    return out


def score_attribute(
    queries: Sequence[AttributeQuery],
    answers: Mapping[str, Sequence[str]],
    movies: Mapping[str, Movie],
    k: int = 10,
) -> dict[str, float]:
    """Mean precision@k (genre and decade), and of the genre and decade parts alone.

    A missing result counts as a miss (the denominator is always k), and so does an item
    that is not one of ``movies`` (another catalog's item, e.g. one a test added to the
    same topics): it has neither the genre nor the decade asked for."""
    both, genre, decade = [], [], []
    for q in queries:
        flags = [
            matches(movies[i], q.genres, q.decade) if i in movies else (False, False)
            for i in answers.get(q.qid, [])[:k]
        ]
        both.append(sum(g and d for g, d in flags) / k)
        genre.append(sum(g for g, _ in flags) / k)
        if q.decade is not None:
            decade.append(sum(d for _, d in flags) / k)
    return {
        "queries": float(len(queries)),
        f"precision@{k}": float(np.mean(both)) if both else 0.0,
        f"genre_precision@{k}": float(np.mean(genre)) if genre else 0.0,
        f"decade_precision@{k}": float(np.mean(decade)) if decade else 0.0,
    }
