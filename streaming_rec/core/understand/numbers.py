"""Numbers in a query: amounts with currencies and units, comparisons, ranges, decades,
years and time windows, in English and Chinese.

Number words are made digits first by two PyPI libraries: ``text2num`` (English, "one
thousand five hundred" → 1500; a Rust extension, ~4 µs a query) and ``cn2an`` (Chinese,
"一千五百" → 1500, "九十年代" → "90年代"; only numerals before a currency, a unit, 年代 or a
range/bound word, so "二手" stays a word; ~0.05 ms each). Then one regular expression per
form finds the constraints. A bare number is never a constraint ("2001 a space odyssey",
"Apollo 13"): it needs a comparison word, a currency, a unit, a decade suffix or a
preposition before a year.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass
from typing import Literal

import cn2an
from text_to_num import alpha2digit

from streaming_rec.core.understand.lexicon import DECADE_WORDS, UNIT_ALIASES

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_MULT = r"(?:\s?(?P<{g}m>k|m|thousand|million|grand|千|万)(?![a-z]))?"
_PRE = r"(?P<{g}c>[$€£¥]|usd\s?|rmb\s?)?"
_POST = (
    r"(?:\s?(?P<{g}cur>usd|dollars?|bucks?|eur|euros?|pounds?|yuan|rmb|元|块钱|块|美元|欧元)"
    r"|\s?(?P<{g}u>gb|gigs?|tb|mb|inch(?:es)?|\"|英寸|寸|kg|kilos?|公斤|千克|grams?|g|克|lbs?"
    r"|mah|毫安|hz|mp|watts?|w|瓦|stars?|星|mins?|minutes?|分钟|hours?|hrs|小时|%|percent)"
    r"(?![a-z]))?"
)


def _amount(g: str) -> str:
    return (_PRE + r"(?P<{g}n>" + _NUM + ")" + _MULT + _POST).replace("{g}", g)


_UPPER_EN = (
    r"under|below|less than|cheaper than|lower than|at most|up to|no more than|not more than"
    r"|max(?:imum)?|within|budget(?: of)?|<=|<|≤"
)
_LOWER_EN = (
    r"over|above|more than|greater than|higher than|at least|min(?:imum)?|>=|>|≥|starting at"
)
_UPPER_ZH = r"低于|不超过|不到|少于|小于|不高于|最多|预算"
_LOWER_ZH = r"高于|超过|大于|至少|不低于|起码|最少"

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("between", r"\bbetween\s+" + _amount("a") + r"\s+and\s+" + _amount("b")),
        (
            "range",
            r"(?:\bfrom\s+)?"
            + _amount("a")
            + r"\s?(?:-|~|to|到|至)\s?"
            + _amount("b")
            + "(?:之间)?",
        ),
        ("upper", r"(?<![a-z])(?:" + _UPPER_EN + r")\s?(?:a\s)?" + _amount("a")),
        ("lower", r"(?<![a-z])(?:" + _LOWER_EN + r")\s?(?:a\s)?" + _amount("a")),
        ("upper", r"(?:" + _UPPER_ZH + r")\s?" + _amount("a")),
        ("lower", r"(?:" + _LOWER_ZH + r")\s?" + _amount("a")),
        (
            "upper",
            _amount("a")
            + r"\s?(?:or (?:less|under|below|cheaper|lower)|and under|max|以下|以内|之内)",
        ),
        ("lower", _amount("a") + r"\s?(?:or (?:more|above|higher|over)|and (?:up|over)|\+|以上)"),
    )
)
DECADE = re.compile(r"(?:\b(?:the|in the|from the)\s)?(?<![\d.])'?(?P<d>\d{2}|\d{4})s\b")
DECADE_ZH = re.compile(r"(?P<d>\d{2}|\d{4})年代")
DECADE_WORD = re.compile(r"(?:\bthe\s)?\b(?P<w>" + "|".join(DECADE_WORDS) + r")\b")
YEAR = re.compile(
    r"\b(?P<p>before|after|since|until|pre|post|in|from|made in)\s(?P<y>(?:19|20)\d{2})\b(?!s)"
)
YEAR_ZH = re.compile(r"(?P<y>(?:19|20)\d{2})年(?P<p>以前|之前|前|以后|之后|后)")
WINDOW = re.compile(
    r"\b(?:within|(?:in\s|from\s)?(?:the\s)?(?:past|last))\s(?P<n>\d+)\s"
    r"(?P<u>hour|day|week|month|year)s?\b"
)
WINDOW_ZH = re.compile(
    r"(?:最近|近|过去)(?P<n>\d+)(?P<u>小时|天|日|周|星期|个月|年)(?:内|以内|之内)?"
    r"|(?P<n2>\d+)(?P<u2>小时|天|日|周|星期|个月)(?:内|以内|之内)"
)
_CN_NUMERAL = re.compile(r"[零一二两三四五六七八九十百千万亿]")
# a Chinese numeral that is an amount: before a currency, a unit, 年代, a range or a bound
# word ("五百元", "九十年代", "一千到两千", "近三天"), so that "二手" or "一款" stay words
_CN_NUMBER = re.compile(
    r"[零一二两三四五六七八九十百千万亿点]+"
    r"(?=元|块|美元|欧元|年|个月|月|天|日|周|星期|小时|分钟|寸|英寸|克|公斤|千克|毫安|瓦|星|到|至|以|之|~|-|gb|tb|%)"
)
_EN_NUMBER_WORD = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty"
    r"|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million)\b"
)
_MULTIPLIERS = {"k": 1e3, "thousand": 1e3, "grand": 1e3, "千": 1e3, "m": 1e6, "million": 1e6}
_MULTIPLIERS["万"] = 1e4


@dataclass(frozen=True)
class Quantity:
    value: float
    currency: bool
    unit: str | None  # canonical (lexicon.UNIT_ALIASES values) or None


@dataclass(frozen=True)
class Bound:
    """A comparison found in the text: ``kind`` says how ``low``/``high`` bound it."""

    kind: Literal["upper", "lower", "range"]
    low: Quantity | None
    high: Quantity | None
    start: int
    end: int


def digits(text: str) -> str:
    """``text`` (normalised) with English and Chinese number words written as digits."""
    if _EN_NUMBER_WORD.search(text):
        text = alpha2digit(text, "en")
    if _CN_NUMERAL.search(text):
        text = _CN_NUMBER.sub(_cn_digits, text)
    return text


def _cn_digits(match: re.Match[str]) -> str:
    """One Chinese numeral as digits ("一千五百" → "1500"); unchanged if cn2an cannot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cn2an warns about pieces it cannot read
        with contextlib.suppress(Exception):  # its failures are its own: keep the text
            value = cn2an.cn2an(match.group(), "smart")
            return str(int(value)) if float(value).is_integer() else str(value)
    return match.group()


def quantity(match: re.Match[str], g: str) -> Quantity:
    value = float(match.group(g + "n").replace(",", ""))
    mult = match.group(g + "m")
    if mult:
        value *= _MULTIPLIERS[mult]
    unit = match.group(g + "u")
    return Quantity(
        value,
        bool(match.group(g + "c") or match.group(g + "cur")),
        UNIT_ALIASES.get(unit.strip()) if unit else None,
    )


def bounds(text: str) -> list[Bound]:
    """The comparisons and ranges in ``text``, leftmost first, none overlapping."""
    found: list[Bound] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(text):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            a = quantity(match, "a")
            if kind == "upper":
                found.append(Bound("upper", None, a, match.start(), match.end()))
            elif kind == "lower":
                found.append(Bound("lower", a, None, match.start(), match.end()))
            else:
                b = quantity(match, "b")
                if kind == "range" and not _range_like(a, b, match.group()):
                    continue
                a, b = _share_units(a, b)
                found.append(Bound("range", a, b, match.start(), match.end()))
            taken.append((match.start(), match.end()))
    return sorted(found, key=lambda b: b.start)


def _range_like(a: Quantity, b: Quantity, span: str) -> bool:
    """'500-1000', '$500 to $1000', '8 to 16gb' are ranges; '2-1', 'route 66-2' are not:
    the first must be below the second and one side must carry a unit, a currency, or the
    word 'from'/'到'."""
    if a.value >= b.value:
        return False
    marked = a.currency or b.currency or a.unit or b.unit
    return bool(marked or span.startswith("from") or "到" in span or "至" in span)


def _share_units(a: Quantity, b: Quantity) -> tuple[Quantity, Quantity]:
    """'$500-1000': the currency or unit of one side applies to both."""
    currency = a.currency or b.currency
    unit = a.unit or b.unit
    return Quantity(a.value, currency, unit), Quantity(b.value, currency, unit)


def decade_start(two_or_four: str, known: tuple[float, float] | None) -> int:
    """'1990' → 1990; '90' → 1990 or 2090 ... the century in which the catalog's years
    (``known``: the year attribute's min and max) fall, else the 1900s for 30-99 and the
    2000s for 00-29."""
    value = int(two_or_four)
    if value >= 100:
        return value - value % 10
    candidates = (1900 + value, 2000 + value)
    if known is not None:
        inside = [c for c in candidates if known[0] <= c + 9 and c <= known[1]]
        if len(inside) == 1:
            return inside[0]
    return candidates[0] if value >= 30 else candidates[1]


def decade_word(word: str) -> str:
    return str(DECADE_WORDS[word])
