"""Deterministic texts for the GPU benchmark: short natural-language queries and item
titles built from word lists with a seeded RNG (no data set needed), or the MovieLens-1M
titles where that data set is installed."""

from __future__ import annotations

import random
import re

ADJECTIVES = (
    "funny", "dark", "scary", "romantic", "gritty", "quirky", "sad", "clever", "violent",
    "heartwarming", "slow", "stylish", "silly", "epic", "low budget", "award winning",
    "classic", "feel good", "twisty", "brutal", "charming", "moody", "animated", "musical",
)  # fmt: skip
GENRES = (
    "comedy", "thriller", "horror movie", "drama", "western", "war film", "documentary",
    "heist movie", "science fiction film", "fantasy adventure", "crime story", "love story",
    "mystery", "action movie", "biopic", "road movie", "musical", "family film", "satire",
    "spy thriller", "courtroom drama", "sports movie", "disaster movie", "cartoon",
)  # fmt: skip
ABOUT = (
    "about a haunted house", "with robots", "about the mafia", "with a clever twist",
    "about teenagers growing up", "about a serial killer", "with talking animals",
    "about soldiers in world war two", "with dragons and wizards", "about an underdog team",
    "about time travel", "about an alien invasion", "with a dog", "about a prison escape",
    "about pirates", "about a dysfunctional family", "with secret agents", "about hackers",
    "about a murder trial", "about two friends on a road trip", "with zombies",
    "about a famous musician", "with vampires", "about a bank robbery",
)  # fmt: skip
SETTINGS = (
    "", "", "", "set in new york", "set in the 1930s", "in space", "in ancient rome",
    "on a plane", "at summer camp", "in a small town", "in paris", "at christmas",
    "in the wild west", "under the sea", "in the future", "in tokyo",
)  # fmt: skip
TEMPLATES = (
    "a {adj} {genre} {about} {setting}",
    "{adj} {genre} {about}",
    "something {adj} {about} {setting}",
    "i want a {adj} {genre} {setting}",
    "{genre} {about}",
    "recommend me a {adj} {genre} for tonight",
)
NOUNS = (
    "Night", "River", "Ghost", "Empire", "Stranger", "Summer", "Machine", "Heart", "City",
    "Storm", "Garden", "Shadow", "Kingdom", "Road", "Secret", "Island", "Dream", "Fire",
)  # fmt: skip
ITEM_GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip


def synthetic_queries(n: int, seed: int = 20240611) -> list[str]:
    """``n`` short queries (3 to 14 words), the same for the same seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(TEMPLATES).format(
            adj=rng.choice(ADJECTIVES),
            genre=rng.choice(GENRES),
            about=rng.choice(ABOUT),
            setting=rng.choice(SETTINGS),
        )
        out.append(re.sub(r"\ba ([aeiou])", r"an \1", " ".join(text.split())))
    return out


def synthetic_items(n: int, seed: int = 7) -> list[tuple[str, str, tuple[str, ...]]]:
    """``n`` (item_id, "Title (Year)", genres) catalog rows, the same for the same seed."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.sample(NOUNS, 2)
        form = rng.randrange(3)
        title = f"The {a}" if form == 0 else f"{a} of the {b}" if form == 1 else f"{a} {b}"
        genres = tuple(rng.sample(ITEM_GENRES, rng.randint(1, 3)))
        rows.append((f"syn-{i}", f"{title} {i} ({rng.randint(1930, 2024)})", genres))
    return rows


def movielens_titles() -> list[str] | None:
    """The ML-1M titles, or None where the data set is not installed."""
    try:
        from streaming_rec_dev.datasets.movielens import load_movies

        return [m.title for m in load_movies("ml-1m")]
    except Exception:  # not installed (ConfigError), or anything else: use synthetic texts
        return None
