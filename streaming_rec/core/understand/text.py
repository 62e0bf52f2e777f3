"""Text normalisation shared by the catalog's vocabulary and the query parser.

``normalize`` folds width and case (NFKC + casefold: "ＧＢ" → "gb", "１６" → "16");
``words`` yields the Latin-script words with their character spans; ``stem`` is a small
English plural folding ("comedies" → "comedy", "laptops" → "laptop", "children's" →
"children") applied the same way to catalog terms and query words, so both meet in the
middle; ``key`` is the stemmed, space-joined form of a term ("Sci-Fi" → "sci fi").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_KEEP_S = ("ss", "us", "is", "ics", "ous")


def normalize(text: str) -> str:
    """NFKC, case-folded, typographic quotes and dashes made ASCII."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return folded.translate(_PUNCT)


_PUNCT = str.maketrans({"’": "'", "‘": "'", "–": "-", "—": "-", "“": '"', "”": '"'})


def stem(word: str) -> str:
    """The plural-folded form of one lower-case word (``'s`` and a trailing ``s`` dropped,
    ``ies`` → ``y``, ``ches``/``shes``/``xes``/``sses`` → without ``es``)."""
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "")
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(_KEEP_S):
        return word[:-1]
    return word


def words(text: str) -> Iterator[tuple[str, int, int]]:
    """(word, start, end) of each Latin-script word or number in normalised ``text``."""
    for match in WORD.finditer(text):
        yield match.group(), match.start(), match.end()


def key(term: str) -> str:
    """A term's matching key: normalised, split into words, each stemmed, space-joined;
    CJK runs are kept whole ("Sci-Fi" → "sci fi", "笔记本电脑" → "笔记本电脑")."""
    text = normalize(term)
    parts = [stem(w) for w, _, _ in words(text)]
    parts += CJK.findall(text)
    return " ".join(parts)


def has_cjk(text: str) -> bool:
    return CJK.search(text) is not None
