"""The catalog by column: filters as numpy masks, and the vocabulary the parser reads.

Each item has a row. Categories are kept as posting sets (lower-cased name → rows);
numeric attributes as float64 columns (NaN = absent); boolean ones as int8 columns (-1
absent); string ones as int32 codes of their case-folded values (-1 absent); the item's
``published_at`` as a float64 column. :meth:`Facets.mask` turns an ItemFilter into a
boolean row mask in one numpy pass per condition (~0.1 ms per condition at 100k items),
so the service can count the matching items before it searches and choose between the
filtered HNSW search and an exact scan of the matching items (core/service.py).

The vocabulary (categories and their display names, attribute names by kind, the values of
small string attributes, the value range of numeric ones, whether items carry times)
changes ``version`` when a term appears or disappears, so that the parser rebuilds its
matcher only then. ``title_pairs`` counts adjacent title words where one word names a
category the item does not have ("star wars" of a film that is not a War film: the entry
is ("star", "war", "war")): the parser
leaves such a phrase to the text search instead of reading it as a category.

Memory: 8 bytes per item per numeric attribute, 4 per string attribute, 1 per boolean one,
plus the posting sets. Not thread-safe (the service owns it on its compute thread).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streaming_rec.core.filters import Condition, ItemFilter, Scalar, is_number
from streaming_rec.core.understand.lexicon import CATEGORY_CONCEPTS
from streaming_rec.core.understand.text import key, normalize, stem, words

Mask = npt.NDArray[np.bool_]
STRING_VALUES_MAX = 200  # a string attribute with more distinct values is free text to the parser
_CONCEPT_WORDS = frozenset(
    stem(w) for forms in CATEGORY_CONCEPTS for form in forms for w, _, _ in words(form)
)
# a category's key → the words of every English form of its concept ("technology" → tech…)
_CONCEPT_OF = {
    key(form): frozenset(stem(w) for f in forms for w, _, _ in words(f))
    for forms in CATEGORY_CONCEPTS
    for form in forms
    if key(form)
}


@dataclass(frozen=True)
class Vocabulary:
    """What the parser may read a query against (a snapshot; see Facets.vocabulary)."""

    version: int
    categories: Mapping[str, str]  # lower-cased → display name
    numbers: Mapping[str, tuple[float, float]]  # attribute → (min, max) ever seen
    booleans: frozenset[str]
    strings: Mapping[str, Mapping[str, str]]  # small string attributes: folded → display
    has_times: bool
    title_pairs: Mapping[tuple[str, str, str], int]  # (word, next word, the foreign one)


class _Strings:
    """One string attribute: codes by row, code by folded value, display names."""

    def __init__(self, capacity: int) -> None:
        self.codes = np.full(capacity, -1, dtype=np.int32)
        self.code: dict[str, int] = {}
        self.display: dict[str, str] = {}
        self.count: Counter[str] = Counter()


class Facets:
    """Rows, columns and vocabulary of the catalog (see the module docstring)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._cap = max(1, capacity)
        self._row: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._free: list[int] = []
        self._live = np.zeros(self._cap, dtype=bool)
        self._categories: dict[str, set[int]] = {}
        self._display: dict[str, str] = {}
        self._cat_arrays: dict[str, npt.NDArray[np.intp]] = {}
        self._numbers: dict[str, npt.NDArray[np.float64]] = {}
        self._number_count: Counter[str] = Counter()
        self._ranges: dict[str, tuple[float, float]] = {}
        self._bools: dict[str, npt.NDArray[np.int8]] = {}
        self._bool_count: Counter[str] = Counter()
        self._strings: dict[str, _Strings] = {}
        self._published = np.full(self._cap, np.nan)
        self._published_count = 0
        self._pairs: Counter[tuple[str, str, str]] = Counter()
        self._category_words: set[str] = set(_CONCEPT_WORDS)
        self.version = 0
        self._vocabulary: Vocabulary | None = None

    def __len__(self) -> int:
        return len(self._row)

    # --- updates ------------------------------------------------------------------------
    def put(
        self,
        item_id: str,
        title: str,
        categories: Iterable[str],
        attributes: Mapping[str, Any],
        published_at: float | None,
    ) -> None:
        """Add one item; to replace one, :meth:`remove` its old version first. Raises
        ValueError when ``item_id`` is present."""
        if item_id in self._row:
            raise ValueError(f"{item_id!r} is present: remove its old version first")
        categories = tuple(categories)
        row = self._free.pop() if self._free else len(self._ids)
        if row == len(self._ids):
            self._ids.append(None)
        self._grow(row + 1)
        self._ids[row] = item_id
        self._row[item_id] = row
        self._live[row] = True
        for name in {c.lower() for c in categories}:
            rows = self._categories.setdefault(name, set())
            if not rows:
                self._changed()
                self._display[name] = next(c for c in categories if c.lower() == name)
                self._category_words.update(stem(w) for w, _, _ in words(normalize(name)))
            rows.add(row)
            self._cat_arrays.pop(name, None)
        for name, value in attributes.items():
            self._put_value(row, name, value)
        if published_at is not None:
            self._published[row] = published_at
            self._published_count += 1
            if self._published_count == 1:
                self._changed()
        self._count_pairs(title, categories, +1)

    def remove(
        self,
        item_id: str,
        title: str,
        categories: Iterable[str],
        attributes: Mapping[str, Any],
    ) -> None:
        """Forget one item, given the version that was put (unknown ids are ignored)."""
        row = self._row.pop(item_id, None)
        if row is None:
            return
        categories = tuple(categories)
        for name in {c.lower() for c in categories}:
            rows = self._categories[name]
            rows.discard(row)
            self._cat_arrays.pop(name, None)
            if not rows:
                self._changed()
        for name, value in attributes.items():
            self._drop_value(row, name, value)
        if not np.isnan(self._published[row]):
            self._published[row] = np.nan
            self._published_count -= 1
            if self._published_count == 0:
                self._changed()
        self._count_pairs(title, categories, -1)
        self._live[row] = False
        self._ids[row] = None
        self._free.append(row)

    def _put_value(self, row: int, name: str, value: Any) -> None:
        if isinstance(value, bool):
            column = self._bools.get(name)
            if column is None:
                column = self._bools[name] = np.full(self._cap, -1, dtype=np.int8)
            column[row] = int(value)
            self._bool_count[name] += 1
            if self._bool_count[name] == 1:
                self._changed()
        elif is_number(value):
            numbers = self._numbers.get(name)
            if numbers is None:
                numbers = self._numbers[name] = np.full(self._cap, np.nan)
            numbers[row] = float(value)
            self._number_count[name] += 1
            lo, hi = self._ranges.get(name, (float(value), float(value)))
            self._ranges[name] = (min(lo, float(value)), max(hi, float(value)))
            if self._number_count[name] == 1:
                self._changed()
        elif isinstance(value, str):
            strings = self._strings.get(name)
            if strings is None:
                strings = self._strings[name] = _Strings(self._cap)
            folded = value.casefold()
            code = strings.code.setdefault(folded, len(strings.code))
            strings.codes[row] = code
            strings.count[folded] += 1
            if strings.count[folded] == 1:
                strings.display[folded] = value
                if len(strings.display) <= STRING_VALUES_MAX + 1:
                    self._changed()

    def _drop_value(self, row: int, name: str, value: Any) -> None:
        if isinstance(value, bool):
            self._bools[name][row] = -1
            self._bool_count[name] -= 1
            if self._bool_count[name] == 0:
                self._changed()
        elif is_number(value):
            self._numbers[name][row] = np.nan
            self._number_count[name] -= 1
            if self._number_count[name] == 0:
                self._changed()
        elif isinstance(value, str):
            strings = self._strings[name]
            strings.codes[row] = -1
            folded = value.casefold()
            strings.count[folded] -= 1
            if strings.count[folded] == 0:
                del strings.count[folded]
                strings.display.pop(folded, None)
                self._changed()

    def _count_pairs(self, title: str, categories: Iterable[str], sign: int) -> None:
        """Count adjacent title words where one is a category word the item lacks."""
        own = {stem(w) for c in categories for w, _, _ in words(normalize(c))}
        for c in categories:
            own |= _CONCEPT_OF.get(key(c), frozenset())
        stems = [stem(w) for w, _, _ in words(normalize(title))]
        for pair in itertools.pairwise(stems):
            for word in pair:
                if word in self._category_words and word not in own:
                    entry = (*pair, word)
                    self._pairs[entry] += sign
                    if self._pairs[entry] <= 0:
                        del self._pairs[entry]

    def _grow(self, needed: int) -> None:
        if needed <= self._cap:
            return
        cap = max(needed, 2 * self._cap)

        def grown(column: npt.NDArray[Any], fill: Any) -> npt.NDArray[Any]:
            out = np.full(cap, fill, dtype=column.dtype)
            out[: self._cap] = column
            return out

        self._live = grown(self._live, False)
        self._published = grown(self._published, np.nan)
        self._numbers = {n: grown(c, np.nan) for n, c in self._numbers.items()}
        self._bools = {n: grown(c, -1) for n, c in self._bools.items()}
        for strings in self._strings.values():
            strings.codes = grown(strings.codes, -1)
        self._cap = cap

    def _changed(self) -> None:
        self.version += 1
        self._vocabulary = None

    # --- vocabulary ---------------------------------------------------------------------
    def vocabulary(self) -> Vocabulary:
        """The current vocabulary (cached until it changes)."""
        if self._vocabulary is None:
            self._vocabulary = Vocabulary(
                version=self.version,
                categories={n: self._display[n] for n, rows in self._categories.items() if rows},
                numbers={n: self._ranges[n] for n, c in self._number_count.items() if c > 0},
                booleans=frozenset(n for n, c in self._bool_count.items() if c > 0),
                strings={
                    n: dict(s.display)
                    for n, s in self._strings.items()
                    if 0 < len(s.display) <= STRING_VALUES_MAX
                },
                has_times=self._published_count > 0,
                title_pairs=self._pairs,
            )
        return self._vocabulary

    # --- filters ------------------------------------------------------------------------
    def mask(self, flt: ItemFilter) -> Mask:
        """Rows passing ``flt`` (excluded ids aside), as a bool array over the rows in use."""
        n = len(self._ids)
        out = self._live[:n].copy()
        for group in flt.categories:
            any_of = np.zeros(n, dtype=bool)
            for name in group:
                any_of[self._category_rows(name)] = True
            out &= any_of
        for name in flt.exclude_categories:
            out[self._category_rows(name)] = False
        for condition in flt.attributes:
            out &= self._condition(condition, n)
        published = self._published[:n]
        with np.errstate(invalid="ignore"):
            if flt.published_after is not None:
                out &= published >= flt.published_after
            if flt.published_before is not None:
                out &= published < flt.published_before
        return out

    def ids(self, mask: Mask) -> list[str]:
        """The item ids of the rows set in ``mask``."""
        return list(map(self._ids.__getitem__, np.flatnonzero(mask).tolist()))  # type: ignore[arg-type]

    def allows(self, mask: Mask) -> Callable[[str], bool]:
        """item_id → whether its row is set in ``mask`` (unknown ids: False)."""
        row, n = self._row, len(mask)

        def allow(item_id: str) -> bool:
            r = row.get(item_id)
            return r is not None and r < n and bool(mask[r])

        return allow

    def published_at(self, item_ids: Iterable[str]) -> npt.NDArray[np.float64]:
        """Each item's time (NaN when it has none or is unknown)."""
        rows = [self._row.get(i, -1) for i in item_ids]
        out = np.full(len(rows), np.nan)
        for k, r in enumerate(rows):
            if r >= 0:
                out[k] = self._published[r]
        return out

    def _category_rows(self, name: str) -> npt.NDArray[np.intp]:
        cached = self._cat_arrays.get(name)
        if cached is None:
            rows = self._categories.get(name, ())
            cached = np.fromiter(rows, dtype=np.intp, count=len(rows))
            self._cat_arrays[name] = cached
        return cached

    def _condition(self, condition: Condition, n: int) -> Mask:
        op = condition.op
        if op in ("eq", "one_of", "none_of"):
            wanted: tuple[Scalar, ...] = (
                condition.values if op != "eq" else (condition.value,)  # type: ignore[assignment]
            )
            hit = np.zeros(n, dtype=bool)
            for value in wanted:
                hit |= self._equal(condition.name, value, n)
            return ~hit if op == "none_of" else hit
        column = self._numbers.get(condition.name)
        bound = condition.value
        if column is None or not isinstance(bound, int | float) or isinstance(bound, bool):
            return np.zeros(n, dtype=bool)
        x: npt.NDArray[np.float64] = column[:n]
        b = float(bound)
        with np.errstate(invalid="ignore"):
            if op == "gt":
                return x > b
            if op == "gte":
                return x >= b
            if op == "lt":
                return x < b
            return x <= b

    def _equal(self, name: str, value: Scalar, n: int) -> Mask:
        if isinstance(value, bool):
            flags = self._bools.get(name)
            if flags is None:
                return np.zeros(n, dtype=bool)
            same: Mask = flags[:n] == int(value)
            return same
        if isinstance(value, str):
            strings = self._strings.get(name)
            code = strings.code.get(value.casefold()) if strings is not None else None
            if strings is None or code is None:
                return np.zeros(n, dtype=bool)
            coded: Mask = strings.codes[:n] == code
            return coded
        numbers = self._numbers.get(name)
        if numbers is None:
            return np.zeros(n, dtype=bool)
        equal: Mask = numbers[:n] == float(value)
        return equal
