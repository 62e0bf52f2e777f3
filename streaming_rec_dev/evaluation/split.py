"""Ratings → events, and the per-user chronological leave-last-out split.

Order: each user's ratings are sorted by (timestamp, position in the file). The file
position is the stable tie-break: about 3/4 of ML-1M ratings share their second with
another rating of the same user, and without it "the last interaction" would depend on
the sort algorithm. The global replay order uses the same key.

Events: rating ≥ 4 → click, rating ≤ 2 → dislike, rating 3 → skip (its weight is the
setting SREC_WEIGHT_SKIP; docs/quality/README.md says what each choice measured).

Test cases: each user's last interaction is held out (never replayed). Only users whose
held-out interaction is positive (rating ≥ 4) are test cases of the main table, as is
usual for implicit-feedback evaluation; the figures over every held-out interaction
are reported beside them ("all last").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streaming_rec_dev.datasets.movielens import Rating

POSITIVE_MIN = 4.0  # rating ≥ 4: click; also what makes a held-out item a test case
NEGATIVE_MAX = 2.0  # rating ≤ 2: dislike; 3 in between: skip


def event_of(rating: float) -> str:
    """The feedback event a rating is replayed as."""
    if rating >= POSITIVE_MIN:
        return "click"
    if rating <= NEGATIVE_MAX:
        return "dislike"
    return "skip"


@dataclass(frozen=True)
class Interaction:
    user_id: str
    item_id: str
    rating: float
    ts: float
    seq: int  # position in the ratings file: the tie-break

    @property
    def event(self) -> str:
        return event_of(self.rating)

    @property
    def positive(self) -> bool:
        return self.rating >= POSITIVE_MIN

    @property
    def key(self) -> tuple[float, int]:
        return (self.ts, self.seq)


@dataclass(frozen=True)
class Split:
    """``train`` in global (ts, seq) order; ``test`` = each user's held-out interaction."""

    train: list[Interaction]
    test: dict[str, Interaction]

    def positive_test(self) -> dict[str, Interaction]:
        return {u: i for u, i in self.test.items() if i.positive}

    def seen(self) -> dict[str, set[str]]:
        """Every item each user interacted with in training (excluded from rankings)."""
        out: dict[str, set[str]] = defaultdict(set)
        for i in self.train:
            out[i.user_id].add(i.item_id)
        return dict(out)


def interactions(ratings: Sequence[Rating]) -> list[Interaction]:
    """Ratings in file order, numbered."""
    return [
        Interaction(r.user_id, r.item_id, r.rating, r.timestamp, seq)
        for seq, r in enumerate(ratings)
    ]


def leave_last_out(rows: Iterable[Interaction], min_train: int = 1) -> Split:
    """Hold out each user's last interaction (by ts, then file order).

    A user keeps a test case only with at least ``min_train`` interactions left to train on.
    """
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for row in rows:
        by_user[row.user_id].append(row)
    train: list[Interaction] = []
    test: dict[str, Interaction] = {}
    for user, history in by_user.items():
        history.sort(key=lambda i: i.key)
        if len(history) > min_train:
            test[user] = history[-1]
            train.extend(history[:-1])
        else:
            train.extend(history)
    train.sort(key=lambda i: i.key)
    return Split(train, test)


def validation(split: Split) -> Split:
    """The tuning split: the same rule applied to the training part (second-to-last held out).

    The test interactions are not in it at all, so nothing tuned here has seen them.
    """
    return leave_last_out(split.train)


@dataclass(frozen=True)
class TimeSplit:
    """The global time split: ``train`` = every interaction before ``date`` (global
    (ts, seq) order); ``test`` = for each user active in [date, until), what they
    interacted with there (item ids, any rating)."""

    train: list[Interaction]
    test: dict[str, set[str]]
    date: float
    until: float


def global_time_split(
    rows: Iterable[Interaction], date: float, until: float = math.inf
) -> TimeSplit:
    """Train on everything before ``date``; score each user active in [date, until) on
    every item they rated there (users with no training history included: they get the
    cold-start answer)."""
    ordered = sorted(rows, key=lambda i: i.key)
    train = [r for r in ordered if r.ts < date]
    test: dict[str, set[str]] = defaultdict(set)
    for r in ordered:
        if date <= r.ts < until:
            test[r.user_id].add(r.item_id)
    return TimeSplit(train, dict(test), date, until)


def time_quantile(rows: Sequence[Interaction], q: float) -> float:
    """The timestamp below which a share ``q`` of the interactions fall (a split date)."""
    stamps = sorted(r.ts for r in rows)
    return stamps[min(len(stamps) - 1, int(q * len(stamps)))]
