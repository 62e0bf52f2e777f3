"""The query parser: text + the catalog's vocabulary → hard filters, intents, and the rest.

:class:`Understander` reads one query against the vocabulary of the worker's own catalog
(core/facets.Vocabulary) and returns an :class:`Understood`:

- categories named in the text (the catalog's own names, their plurals, and the lexicon's
  English and Chinese forms of them) become category groups: names joined by "and"/"or"/
  "和"/"、" form one group (any of them), others are groups of their own (all of them);
  a one-word category inside a title phrase of an item lacking that category ("star wars")
  is left to the text search;
- negated ones ("not horror", "no horror", "不要恐怖片") become excluded categories;
- amounts with a currency, a unit or a comparison ("under $1000", "at least 16GB",
  "500-800元", "5000元以下") become ranges on the attribute they name (price for a
  currency, the attribute whose name carries the unit or is named beside the number);
- decades and years ("1990s", "the 80s", "九十年代", "before 1980") become ranges on the
  year attribute, or a window on ``published_at`` when the catalog has no year;
- boolean attributes asked for by their name or a lexicon phrase ("discounted", "in stock",
  "打折", "有货") become equality (or ``> 0`` on a numeric attribute like a discount rate);
- values of small string attributes ("brand" = "Apple") become equality;
- recency ("latest", "newest", "最新") becomes an intent, and "past 7 days"/"本周" a window,
  only when the catalog's items carry times.

What was read as structure (amounts, booleans, negations, recency) is cut from the text;
category and value words stay (the encoder uses them). When nothing is cut, ``text`` is
the query as sent. Cost: ~20-100 µs a query (bench/understand.py), rebuilding the matcher
only when the vocabulary changes. Pure: no encoder, no I/O, no exceptions on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from streaming_rec.core.facets import Vocabulary
from streaming_rec.core.filters import Condition, ItemFilter, Scalar
from streaming_rec.core.understand import lexicon as lx
from streaming_rec.core.understand import numbers as nb
from streaming_rec.core.understand.matcher import Matcher, Target
from streaming_rec.core.understand.text import CJK, normalize, stem, words

_CONNECTOR = re.compile(r"^[\s,/&、]*(?:and|or|和|或|与|或者|及|以及)?[\s,/&、]*$")


@dataclass(frozen=True)
class Facet:
    """One thing understood, for display: ``label`` ("price ≤ 1000"), ``span`` (the words
    of the query it came from), ``field`` (what it constrains: "categories",
    "exclude_categories", "attributes.<name>", "published_at" or "recency")."""

    label: str
    span: str
    field: str


@dataclass(frozen=True)
class Understood:
    """The parse of one query: the filter it implies, what to show, whether it asks for
    recent items, and ``text``, the part left for the encoder."""

    text: str
    filter: ItemFilter = field(default_factory=ItemFilter)
    facets: tuple[Facet, ...] = ()
    recency: bool = False


class Understander:
    """Parses queries against a vocabulary, keeping the compiled matcher between calls.
    Not thread-safe (one per service, used on its compute thread)."""

    def __init__(self) -> None:
        self._matcher: Matcher | None = None

    def understand(self, text: str, vocab: Vocabulary, now: float) -> Understood:
        """The parse of ``text`` (any string) against ``vocab``; ``now`` (Unix s) anchors
        time windows. Never raises on the text."""
        if self._matcher is None or self._matcher.version != vocab.version:
            self._matcher = Matcher(vocab)
        return _Parse(text, self._matcher, vocab, now).result()


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _Parse:
    """One query's parse (state while reading it)."""

    def __init__(self, text: str, matcher: Matcher, vocab: Vocabulary, now: float) -> None:
        self.original = text
        self.s = nb.digits(normalize(text))
        self.m = matcher
        self.vocab = vocab
        self.now = now
        self.taken: list[tuple[int, int]] = []
        self.cut: list[tuple[int, int]] = []
        self.conditions: list[Condition] = []
        self.facets: list[Facet] = []
        self.groups: list[set[str]] = []
        self.last_category_end = -1
        self.excluded: set[str] = set()
        self.after: float | None = None
        self.before: float | None = None
        self.recency = False

    # --- bookkeeping ----------------------------------------------------------------------
    def free(self, start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e in self.taken)

    def take(self, start: int, end: int, label: str, field_: str, cut: bool = True) -> None:
        self.taken.append((start, end))
        if cut:
            self.cut.append((start, end))
        self.facets.append(Facet(label, self.s[start:end].strip(), field_))

    def result(self) -> Understood:
        self.decades()
        self.windows()
        self.amounts()
        self.english()
        self.chinese()
        if not self.facets:
            return Understood(self.original)
        flt = ItemFilter(
            categories=tuple(frozenset(g) for g in self.groups),
            exclude_categories=frozenset(self.excluded),
            attributes=tuple(self.conditions),
            published_after=self.after,
            published_before=self.before,
        )
        return Understood(self.remainder(), flt, tuple(self.facets), self.recency)

    def remainder(self) -> str:
        if not self.cut:
            return self.original
        out, at = [], 0
        for start, end in sorted(self.cut):
            out.append(self.s[at:start])
            at = max(at, end)
        out.append(self.s[at:])
        text = re.sub(r"\s+", " ", " ".join(out)).strip(" ,.;:!?-、，。")
        return text if re.search(r"[a-z0-9]|" + CJK.pattern, text) else ""

    # --- time -----------------------------------------------------------------------------
    def windows(self) -> None:
        if not self.vocab.has_times:
            return
        found: list[tuple[int, int, int]] = []
        for pattern in (nb.WINDOW, nb.WINDOW_ZH):
            for match in pattern.finditer(self.s):
                n, u = match.group("n"), match.group("u")
                if n is None:
                    n, u = match.group("n2"), match.group("u2")
                seconds = int(n) * lx.UNIT_SECONDS[u]
                found.append((match.start(), match.end(), seconds))
        for phrase, seconds in (*lx.WINDOWS_EN.items(), *lx.WINDOWS_ZH.items()):
            for match in re.finditer(
                re.escape(phrase) if CJK.search(phrase) else rf"\b{re.escape(phrase)}\b", self.s
            ):
                found.append((match.start(), match.end(), seconds))
        for start, end, back in sorted(found):
            if self.free(start, end):
                self.after = self.now - back
                days = back / 86_400
                self.take(
                    start, end, f"published in the last {_fmt(round(days, 1))} days", "published_at"
                )

    def decades(self) -> None:
        span = self.m.numbers.get(self.m.year) if self.m.year else None
        for pattern in (nb.DECADE, nb.DECADE_ZH, nb.DECADE_WORD):
            for match in pattern.finditer(self.s):
                if not self.free(match.start(), match.end()):
                    continue
                raw = match.group("w") if "w" in match.groupdict() else match.group("d")
                digits = nb.decade_word(raw) if raw in lx.DECADE_WORDS else raw
                start = nb.decade_start(digits, span)
                self.year_range(match.start(), match.end(), start, start + 10, f"{start}s")
        for pattern in (nb.YEAR, nb.YEAR_ZH):
            for match in pattern.finditer(self.s):
                if not self.free(match.start(), match.end()):
                    continue
                year, word = int(match.group("y")), match.group("p")
                if word in ("before", "until", "pre", "以前", "之前", "前"):
                    self.year_range(match.start(), match.end(), None, year, f"before {year}")
                elif word in ("after", "post", "以后", "之后", "后"):
                    self.year_range(match.start(), match.end(), year + 1, None, f"after {year}")
                elif word == "since":
                    self.year_range(match.start(), match.end(), year, None, f"since {year}")
                else:
                    self.year_range(match.start(), match.end(), year, year + 1, str(year))

    def year_range(
        self, start: int, end: int, low: int | None, high: int | None, label: str
    ) -> None:
        """Years [low, high) on the year attribute, else a window on published_at."""
        if self.m.year is not None:
            if low is not None:
                self.conditions.append(Condition(self.m.year, "gte", low))
            if high is not None:
                self.conditions.append(Condition(self.m.year, "lt", high))
            self.take(start, end, f"{self.m.year} {label}", f"attributes.{self.m.year}")
        elif self.vocab.has_times:
            if low is not None:
                self.after = _year_start(low)
            if high is not None:
                self.before = _year_start(high)
            self.take(start, end, f"published {label}", "published_at")

    # --- amounts --------------------------------------------------------------------------
    def amounts(self) -> None:
        for bound in nb.bounds(self.s):
            if not self.free(bound.start, bound.end):
                continue
            q = bound.high if bound.low is None else bound.low
            assert q is not None
            near = {stem(w) for w, _, _ in words(self.s[max(0, bound.start - 24) : bound.end + 24])}
            near |= set(CJK.findall(self.s[max(0, bound.start - 6) : bound.end + 6]))
            attr = self.m.attribute_for(q, near)
            if attr is None:
                continue
            scale = 0.01 if q.unit == "%" and self.m.numbers[attr][1] <= 1.0 else 1.0
            low = bound.low.value * scale if bound.low else None
            high = bound.high.value * scale if bound.high else None
            if low is not None:
                self.conditions.append(Condition(attr, "gte", low))
            if high is not None:
                self.conditions.append(Condition(attr, "lte", high))
            if low is not None and high is not None:
                label = f"{attr} {_fmt(low)}–{_fmt(high)}"
            else:
                label = f"{attr} ≥ {_fmt(low)}" if low is not None else f"{attr} ≤ {_fmt(high)}"  # type: ignore[arg-type]
            self.take(bound.start, bound.end, label, f"attributes.{attr}")

    # --- words ----------------------------------------------------------------------------
    def english(self) -> None:
        toks = [(w, stem(w), a, b) for w, a, b in words(self.s) if self.free(a, b)]
        i = 0
        while i < len(toks):
            used = self.english_at(toks, i)
            i += max(used, 1)

    def english_at(self, toks: list[tuple[str, str, int, int]], i: int) -> int:
        stems = [t[1] for t in toks]
        for n in range(min(self.m.max_en, len(toks) - i), 0, -1):
            target = self.m.en.get(tuple(stems[i : i + n]))
            if target is None:
                continue
            if target.kind == "category" and n == 1 and self.in_title(stems, i, i + n):
                return n
            neg_start = self.negation_before(toks, i)
            start = toks[i][2] if neg_start is None else neg_start
            self.apply(target, start, toks[i + n - 1][3], neg_start is not None)
            return n
        return self.recency_at(toks, i)

    def in_title(self, stems: list[str], i: int, j: int) -> bool:
        pairs = self.vocab.title_pairs
        before = i > 0 and (stems[i - 1], stems[i], stems[i]) in pairs
        return before or (j < len(stems) and (stems[j - 1], stems[j], stems[j - 1]) in pairs)

    def negation_before(self, toks: list[tuple[str, str, int, int]], i: int) -> int | None:
        j = i - 1
        while j >= 0 and toks[j][0] in lx.FILLERS_EN:
            j -= 1
        if j < 0:
            return None
        if toks[j][0] in lx.NEGATIONS_EN:
            return toks[j][2]
        if j >= 1 and f"{toks[j - 1][0]} {toks[j][0]}" in lx.NEGATION_PHRASES_EN:
            return toks[j - 1][2]
        return None

    def recency_at(self, toks: list[tuple[str, str, int, int]], i: int) -> int:
        if not self.vocab.has_times:
            return 1
        stems = [t[1] for t in toks]
        for phrase in lx.RECENCY_EN:
            parts = tuple(stem(w) for w in phrase.split())
            if tuple(stems[i : i + len(parts)]) == parts:
                self.intend_recency(toks[i][2], toks[i + len(parts) - 1][3])
                return len(parts)
        if toks[i][0] == "new" and i + 1 < len(toks):
            nxt = toks[i + 1][1]
            if nxt in lx.NEW_BEFORE_EN or any(k[0] == nxt for k in self.m.en):
                self.intend_recency(toks[i][2], toks[i][3])
        return 1

    def intend_recency(self, start: int, end: int) -> None:
        if not self.recency:
            self.recency = True
            self.take(start, end, "latest", "recency")
        else:
            self.taken.append((start, end))
            self.cut.append((start, end))

    def chinese(self) -> None:
        for run in CJK.finditer(self.s):
            text, base, i = run.group(), run.start(), 0
            while i < len(text):
                i += self.chinese_at(text, base, i)

    def chinese_at(self, text: str, base: int, i: int) -> int:
        if not self.free(base + i, base + i + 1):
            return 1
        for n in range(min(max(self.m.max_zh, 4), len(text) - i), 0, -1):
            piece = text[i : i + n]
            target = self.m.zh.get(piece)
            if target is not None:
                neg = next((x for x in lx.NEGATIONS_ZH if text[:i].endswith(x)), None)
                if neg == "非" and text[i : i + 1] == "常":
                    neg = None
                start = base + i - (len(neg) if neg else 0)
                self.apply(target, start, base + i + n, neg is not None)
                return n
            if piece in lx.RECENCY_ZH and self.vocab.has_times:
                self.intend_recency(base + i, base + i + n)
                return n
        return 1

    # --- targets --------------------------------------------------------------------------
    def apply(self, target: Target, start: int, end: int, negated: bool) -> None:
        if target.kind == "category":
            if negated:
                self.excluded.add(target.name)
                self.take(start, end, f"not {target.label}", "exclude_categories")
                return
            gap = self.s[self.last_category_end : start] if self.last_category_end >= 0 else ""
            if self.groups and gap.strip() and _CONNECTOR.match(gap):
                self.groups[-1].add(target.name)
            elif not any(target.name in g for g in self.groups):
                self.groups.append({target.name})
            self.last_category_end = end
            self.take(start, end, target.label, "categories", cut=False)
        elif target.kind == "bool":
            if target.numeric:
                op: tuple[str, Scalar] = ("lte", 0) if negated else ("gt", 0)
                self.conditions.append(Condition(target.name, op[0], op[1]))  # type: ignore[arg-type]
            else:
                self.conditions.append(Condition(target.name, "eq", not negated))
            label = f"not {target.label}" if negated else target.label
            self.take(start, end, label, f"attributes.{target.name}")
        else:
            if negated:
                self.conditions.append(Condition(target.name, "none_of", values=(target.value,)))
            else:
                self.conditions.append(Condition(target.name, "eq", target.value))
            label = f"not {target.label}" if negated else target.label
            self.take(start, end, label, f"attributes.{target.name}", cut=negated)


def _year_start(year: int) -> float:
    """Unix seconds of January 1st of ``year`` (UTC)."""
    import calendar

    return float(calendar.timegm((year, 1, 1, 0, 0, 0)))
