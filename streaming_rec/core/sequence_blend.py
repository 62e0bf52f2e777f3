"""What the sequence model predicts, learned from the stream at each fit.

The fit (core/sequence.py) regresses the history's features z onto several targets at
once, one per horizon h: the mean one-hot of the next h items (the next item when h = 1,
what the user takes over the following months when h = 100). The model in use predicts a
mix of them,

    W = Σ_h m_h · W_h,      m ≥ 0, Σ m = 1,

and the mix (with the ridge, among RIDGE_SCALES × SREC_SEQUENCE_RIDGE) is **learned from
the stream**, not set by hand: the fit holds the newest tenth of each user's events out,
fits every W_h on the rest (one pass of the sums serves both fits), and scores each
candidate on a sample of those users — NDCG@10 of their ranking of the whole catalog
(the items before the tail excluded) against the first held-out item (what comes next)
and against all of them (what comes over a while), each relative to the next-item model,
so that both count alike. A candidate must beat the next-item model by more than one
standard error of its gain. The chosen mix is then refitted on everything. Because the
constant and the long-term-profile features are part of z, the mix also decides how much
popularity and long-term taste u_f carries: a next-item target rewards the last items, a
long horizon the stable taste and what is broadly liked.

Pure numpy; the accumulator of the sums lives beside the model (core/sequence.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

HORIZONS = (1, 100)
"""The targets' horizons (items ahead); the first one is the next item."""
HOLDOUT_SHARE = 0.1
"""The newest share of each user's events held out to choose the mix."""
MIN_HISTORY = 10
"""Users with fewer events (with factors) hold nothing out."""
HOLDOUT_USERS = 2000
"""At most this many users score the mixes (a uniform sample with a fixed seed, so that a
refit on the same stream makes the same choice)."""
MIN_HOLDOUT_USERS = 20
"""Fewer users after the cut: no choice, the next-item target alone."""
MIX_STEP = 0.25
RIDGE_SCALES = (0.1, 1.0, 10.0)
"""The ridges tried on the held-out slice, as multiples of SREC_SEQUENCE_RIDGE."""
K = 10


def horizon_means(
    x: np.ndarray, starts: np.ndarray, stop: int, horizons: Sequence[int]
) -> np.ndarray:
    """For each start s: [mean x[s : min(s + h, stop)] for h in horizons], concatenated.

    x: (n, d) oldest first; starts: (m,) ints < stop ≤ n. Returns (m, len(horizons)·d)
    float32."""
    d = x.shape[1]
    out = np.zeros((len(starts), len(horizons) * d), dtype=np.float32)
    if not len(starts):
        return out
    cumulative = np.zeros((stop + 1, d), dtype=np.float64)
    np.cumsum(x[:stop], axis=0, dtype=np.float64, out=cumulative[1:])
    for j, h in enumerate(horizons):
        ends = np.minimum(starts + h, stop)
        sums = cumulative[ends] - cumulative[starts]
        out[:, j * d : (j + 1) * d] = sums / (ends - starts)[:, None]
    return out


def mixes(count: int, step: float = MIX_STEP) -> list[tuple[float, ...]]:
    """Every mix of ``count`` targets on a grid of ``step`` (non-negative, summing to 1),
    the first target alone first."""
    units = round(1 / step)
    grid = [
        tuple(c / units for c in combo)
        for combo in itertools.product(range(units + 1), repeat=count)
        if sum(combo) == units
    ]
    return sorted(grid, key=lambda m: (-m[0], m))


@dataclass
class Holdout:
    """The users with a held-out tail: z at the cut, factor rows before it (excluded from
    their rankings) and after it (what they took, in order); at most ``limit`` of them,
    a uniform sample of those offered (reservoir sampling, seeded)."""

    limit: int = HOLDOUT_USERS
    z: list[np.ndarray] = field(default_factory=list)
    seen: list[np.ndarray] = field(default_factory=list)
    after: list[np.ndarray] = field(default_factory=list)
    offered: int = 0
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def add(self, z: np.ndarray, seen: np.ndarray, after: np.ndarray) -> None:
        if not (len(seen) and len(after)):
            return
        self.offered += 1
        if len(self.z) < self.limit:
            self.z.append(z)
            self.seen.append(seen)
            self.after.append(after)
            return
        slot = int(self._rng.integers(self.offered))
        if slot < self.limit:
            self.z[slot], self.seen[slot], self.after[slot] = z, seen, after

    def __len__(self) -> int:
        return len(self.z)


@dataclass(frozen=True)
class Choice:
    """The mix chosen on the held-out slice and what every mix scored there."""

    mix: tuple[float, ...]
    users: int
    trials: list[dict[str, object]]
    objective: float = 0.0
    ridge: float = 0.0

    def as_dict(self, horizons: Sequence[int]) -> dict[str, object]:
        return {
            "horizons": list(horizons),
            "mix": list(self.mix),
            "ridge": self.ridge,
            "holdout_users": self.users,
            "objective": round(self.objective, 4),
            "trials": self.trials,
        }


def ndcg_rows(scores: np.ndarray, holdout: Holdout) -> tuple[np.ndarray, np.ndarray]:
    """NDCG@10 of each held-out user's ranking (``scores``: (U, items); items before the
    cut excluded) against the first item after the cut and against all of them."""
    scores = scores.copy()
    for row, seen in enumerate(holdout.seen):
        scores[row, seen] = -np.inf
    k = min(K, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    gains = 1.0 / np.log2(np.arange(2, K + 2))
    first, every = np.zeros(len(top)), np.zeros(len(top))
    for row, (ranked, after) in enumerate(zip(top, holdout.after, strict=True)):
        relevant = set(after.tolist())
        hits = np.array([i in relevant for i in ranked.tolist()])
        every[row] = gains[:k][hits].sum() / gains[: min(len(relevant), K)].sum()
        first[row] = gains[:k][ranked == after[0]].sum()
    return first, every


def choose_mix(
    candidates: Mapping[float, Sequence[np.ndarray]],
    factors: np.ndarray,
    holdout: Holdout,
    reference: float,
    step: float = MIX_STEP,
) -> Choice:
    """The (ridge, mix) whose W = Σ m_h · W_h ranks best for the held-out users.

    ``candidates``: ridge → one (F, d) W per horizon, fitted before the cut. Against the
    next-item target at the ``reference`` ridge, each user's gain is the mean of the
    relative gains in NDCG@10 against the first item after the cut and against all of them
    (each divided by the reference's mean, so that both count alike); a candidate is
    judged by its mean gain minus one standard error, so that a mix that wins by noise on a
    small slice does not replace the next item (the reference itself scores 0)."""
    z = np.stack(holdout.z).astype(np.float32)
    trials: list[dict[str, object]] = []
    per_user: dict[tuple[float, tuple[float, ...]], tuple[np.ndarray, np.ndarray]] = {}
    for ridge, head_weights in candidates.items():
        parts = [(z @ w) @ factors.T for w in head_weights]  # (U, items) per horizon
        for mix in mixes(len(head_weights), step):
            scores = sum(
                (m * p for m, p in zip(mix, parts, strict=True) if m), np.zeros_like(parts[0])
            )
            first, every = ndcg_rows(scores, holdout)
            per_user[ridge, mix] = (first, every)
            trials.append(
                {
                    "ridge": ridge,
                    "mix": list(mix),
                    "ndcg_next": round(float(first.mean()), 4),
                    "ndcg_all": round(float(every.mean()), 4),
                }
            )
    base_first, base_every = per_user[reference, mixes(len(candidates[reference]), step)[0]]
    scale = (max(float(base_first.mean()), 1e-6), max(float(base_every.mean()), 1e-6))
    best: tuple[float, float, tuple[float, ...]] | None = None
    for trial, ((ridge, mix), (first, every)) in zip(trials, per_user.items(), strict=True):
        gain = ((first - base_first) / scale[0] + (every - base_every) / scale[1]) / 2
        bound = float(gain.mean() - gain.std() / np.sqrt(len(gain)))
        trial["gain_lower_bound"] = round(bound, 4)
        if best is None or bound > best[0] + 1e-9:
            best = (bound, ridge, mix)
    assert best is not None
    first, every = per_user[best[1], best[2]]
    objective = float((first.mean() + every.mean()) / 2)
    return Choice(best[2], len(holdout), trials, objective, best[1])
