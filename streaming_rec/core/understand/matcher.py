"""The lookup tables the parser matches a query against, compiled from one version of the
catalog's vocabulary: category names (the catalog's own and the lexicon's English and
Chinese forms), boolean concepts, small string values, and which numeric attribute is the
price and which the year."""

from __future__ import annotations

from dataclasses import dataclass

from streaming_rec.core.facets import Vocabulary
from streaming_rec.core.understand import lexicon as lx
from streaming_rec.core.understand import numbers as nb
from streaming_rec.core.understand.text import CJK, key

SKIP_VALUES = frozenset({"the", "and", "for", "new", "other", "none", "unknown", "yes", "no"})


@dataclass(frozen=True)
class Target:
    """What a matched phrase means: a category, a boolean attribute or a string value."""

    kind: str  # "category", "bool" or "value"
    name: str  # category (lower-cased) or attribute name
    value: str = ""  # a string attribute's folded value
    numeric: bool = False  # a boolean concept stored as a number (a discount rate)
    label: str = ""


class Matcher:
    """Lookup tables compiled from one vocabulary version."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.version = vocab.version
        self.en: dict[tuple[str, ...], Target] = {}
        self.zh: dict[str, Target] = {}
        by_key = {key(display): lower for lower, display in vocab.categories.items()}
        for group in lx.CATEGORY_CONCEPTS:
            en = [key(f) for f in group if not CJK.search(f)]
            hit = next((by_key[k] for k in en if k in by_key), None)
            if hit is not None:
                for form in group:
                    self._add(form, Target("category", hit, label=vocab.categories[hit]))
        for k, lower in by_key.items():  # the catalog's own names win over the lexicon's
            self._add(k, Target("category", lower, label=vocab.categories[lower]), True)
        attr_keys = {key(n): n for n in (*vocab.numbers, *vocab.booleans)}
        for names, phrases in lx.BOOL_CONCEPTS:
            attr = next((attr_keys[key(n)] for n in names if key(n) in attr_keys), None)
            if attr is not None:
                numeric = attr not in vocab.booleans
                for phrase in phrases:
                    self._add(phrase, Target("bool", attr, numeric=numeric, label=attr))
        for name in vocab.booleans:
            self._add(name, Target("bool", name, label=name))
        for name, values in vocab.strings.items():
            for folded, display in values.items():
                k = key(folded)
                if len(k) >= 3 and k not in SKIP_VALUES and not k.replace(" ", "").isdigit():
                    label = f"{name}: {display}"
                    self._add(folded, Target("value", name, folded, label=label), False)
        self.max_en = max((len(k) for k in self.en), default=1)
        self.max_zh = max((len(k) for k in self.zh), default=1)
        self.numbers = vocab.numbers
        self.name_words = {n: set(key(n).split()) for n in vocab.numbers}
        self.year = next(
            (n for n in vocab.numbers if key(n) in {key(y) for y in lx.YEAR_NAMES}),
            next((n for n, w in self.name_words.items() if "year" in w), None),
        )
        prices = {key(p) for p in lx.PRICE_NAMES}
        self.price = next((n for n in vocab.numbers if key(n) in prices), None) or next(
            (n for n, w in self.name_words.items() if w & {"price", "cost"}), None
        )

    def _add(self, term: str, target: Target, replace: bool = False) -> None:
        k = key(term)
        if not k:
            return
        if CJK.fullmatch(k.replace(" ", "")):
            if replace or k.replace(" ", "") not in self.zh:
                self.zh[k.replace(" ", "")] = target
        elif not CJK.search(k):
            t = tuple(k.split())
            if replace or t not in self.en:
                self.en[t] = target

    def attribute_for(self, q: nb.Quantity, near: set[str]) -> str | None:
        """The numeric attribute an amount constrains (None when unclear)."""
        if q.currency:
            return self.price
        named = [n for n, w in self.name_words.items() if w & near]
        if q.unit is not None:
            unit_words = set(lx.UNITS.get(q.unit, (q.unit,)))
            fits = [n for n, w in self.name_words.items() if w & unit_words]
            both = [n for n in fits if n in named]
            if len(both) == 1:
                return both[0]
            return fits[0] if len(fits) == 1 else None
        if len(named) == 1:
            return named[0]
        return self.price if not named else None
