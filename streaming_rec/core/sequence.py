"""A sequence-aware user model over the collaborative item factors, fitted in closed form.

The decayed average (core/user_state.py) treats a user's history as a bag whose newest
entries weigh more; it cannot learn that the item just watched says something different
from the one before it, nor which directions of the factor space carry over from one
step to the next. This model reads the history as a sequence and predicts the factors of
the *next* item:

    z(h) = [v_f(h_n) ; v_f(h_{n-1}) ; … ; v_f(h_{n-K+1}) ;        K lags, newest first
            mean(v_f(h)) ; decayed mean(v_f(h)) ;                  the long-term profile
            mean of v_f over the disliked items ; 1]
    u_f = z(h) · W                      W: ((K + 3)·d + 1, d) float32

and the worker searches with q = [α·x + γ·u_c ; β·u_f] as before: one HNSW search, the item
side stays [v_c ; v_f]. W is a least-squares model of what comes next in the factor space,

    W_h = argmin_W  Σ_t ‖ mean onehot(h_{t+1 … t+h}) − z(h_{≤t}) · W · Vᵀ ‖² + λ‖W‖²
        = (ZᵀZ + λI)⁻¹ · Zᵀ mean V[h_{t+1 … t+h}] · (VᵀV)⁻¹,        W = Σ_h m_h · W_h

(V: the (items, d) factor table; the right factor whitens the factor space, so the fit is
the item-space least squares, not a regression onto the factors). h = 1 is the next item;
a long horizon is what the user takes over the following months. The mix m (and the
ridge, among RIDGE_SCALES) is learned from the stream at each fit: chosen on the newest
tenth of each user's events held out, then refitted on everything
(core/sequence_blend.py). It is a linear autoregressive model of the factors — FPMC's
first-order transitions (Rendle et al., WWW 2010) and the per-position weights of Caser
(Tang & Wang, WSDM 2018) in one ridge regression, in the spirit of the closed-form linear
item models EASE (Steck, WWW 2019) and SLIST (Choi et al., WSDM 2021), but of rank d so
that it fits one inner product. The constant feature learns a popularity direction; the
mean blocks learn how much of the long-term profile to keep; the mix of horizons how far
ahead to look — all from the data, not by hand.

Fitting needs numpy and scipy only: ZᵀZ and ZᵀY are accumulated user by user
(:class:`Accumulator`), so memory is O(F²) whatever the number of events. The model
travels as bytes (:meth:`SequenceModel.to_bytes`) with a version shared with the item
factors it was fitted on.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from streaming_rec.core.sequence_blend import (
    HOLDOUT_SHARE,
    HORIZONS,
    MIN_HISTORY,
    MIN_HOLDOUT_USERS,
    RIDGE_SCALES,
    Holdout,
    choose_mix,
    horizon_means,
)
from streaming_rec.core.sequence_features import (
    NEGATIVE_EVENTS,
    WINDOW,
    feature_count,
    feature_rows,
    features,
)
from streaming_rec.core.user_state import Event, VectorLookup

__all__ = [
    "NEGATIVE_EVENTS",
    "WINDOW",
    "Accumulator",
    "Histories",
    "SequenceModel",
    "feature_count",
    "feature_rows",
    "features",
    "fit",
    "history_inputs",
]

_MAGIC = b"SRSQ1"


@dataclass(frozen=True, eq=False)
class SequenceModel:
    """The user-side model: the weights W and how z is built. ``version`` names the item
    factors it was fitted with (the trainer's refresh); answers name it."""

    version: str
    lags: int
    half_life_events: float
    weights: np.ndarray  # (F, d) float32
    blend: dict[str, Any] | None = None  # what the held-out slice chose (sequence_blend.py)

    def __post_init__(self) -> None:
        f, d = self.weights.shape
        if f != feature_count(d, self.lags):
            raise ValueError(f"weights have {f} rows, expected {feature_count(d, self.lags)}")

    @property
    def dim(self) -> int:
        """d: the factor dimension it reads and writes."""
        return int(self.weights.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.weights.nbytes)

    def encode(self, histories: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """u_f for a batch of histories, one matrix product: each history is ((n, d)
        float32 item factors oldest first, (n,) bool negative flags). Returns (B, d)
        float32 (not normalised)."""
        if not histories:
            return np.zeros((0, self.dim), dtype=np.float32)
        z = np.stack([features(f, neg, self.lags, self.half_life_events) for f, neg in histories])
        return np.asarray(z @ self.weights, dtype=np.float32)

    def to_bytes(self) -> bytes:
        """A header (JSON) and the weights (float32, little-endian): what the trainer
        publishes (in chunks: edge/sequence_wire.py)."""
        header = orjson.dumps(
            {
                "version": self.version,
                "lags": self.lags,
                "half_life_events": self.half_life_events,
                "shape": list(self.weights.shape),
                "window": WINDOW,
                "blend": self.blend,
            }
        )
        body = np.ascontiguousarray(self.weights, dtype="<f4").tobytes()
        return _MAGIC + struct.pack("<I", len(header)) + header + body

    @classmethod
    def from_bytes(cls, raw: bytes) -> SequenceModel:
        """The model written by :meth:`to_bytes`. Raises ValueError on anything else."""
        if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + 4:
            raise ValueError("not a sequence model")
        (size,) = struct.unpack_from("<I", raw, len(_MAGIC))
        start = len(_MAGIC) + 4
        try:
            header = orjson.loads(raw[start : start + size])
            rows, cols = (int(v) for v in header["shape"])
            if int(header.get("window", WINDOW)) != WINDOW:
                raise ValueError(f"window {header['window']} != {WINDOW}")
            body = np.frombuffer(raw, dtype="<f4", offset=start + size)
            if body.size != rows * cols:
                raise ValueError(f"{body.size} weights for shape ({rows}, {cols})")
            return cls(
                version=str(header["version"]),
                lags=int(header["lags"]),
                half_life_events=float(header["half_life_events"]),
                weights=body.reshape(rows, cols).astype(np.float32),
                blend=header.get("blend"),
            )
        except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"bad sequence model header: {exc}") from exc


class Accumulator:
    """The sums of the least-squares fit over every step of every history, so that the fit
    needs O(F²) memory whatever the number of events: ZᵀZ and Zᵀ[Y_h …] (one target per
    horizon, core/sequence_blend.py), kept apart for the steps whose target lies before
    the held-out cut (the *head*: its targets stop at the cut) and the rest, so that one
    pass gives both the fit that chooses the mix and the fit on everything. Steps are
    buffered (``chunk`` rows); each full buffer is one float32 product per part, added
    to float64 sums."""

    def __init__(
        self,
        factors: np.ndarray,
        lags: int,
        half_life_events: float,
        chunk: int = 16_384,
        horizons: Sequence[int] = HORIZONS,
    ) -> None:
        self.factors = factors.astype(np.float32)
        self.lags = lags
        self.half_life_events = half_life_events
        self.horizons = tuple(horizons)
        f, width = feature_count(factors.shape[1], lags), len(self.horizons) * factors.shape[1]
        # head: [ZᵀZ | ZᵀY with targets that stop at the cut]; rest: [ZᵀZ | ZᵀY]; cross:
        # Zᵀ(Y − Y cut) of the head steps whose horizon reaches past the cut
        self.head = np.zeros((f, f + width), dtype=np.float64)
        self.rest = np.zeros((f, f + width), dtype=np.float64)
        self.cross = np.zeros((f, width), dtype=np.float64)
        self.holdout = Holdout()
        self._whiten: np.ndarray | None = None
        self.steps = 0
        self._chunk = chunk
        self._parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
            "head": ([], []),
            "rest": ([], []),
            "cross": ([], []),
        }
        self._buffered = 0

    def add(self, rows: np.ndarray, negative: np.ndarray, cut: int | None = None) -> None:
        """One history: rows (n,) int indices into the factor table (oldest first; items
        without factors already dropped), negative (n,) bool; ``cut``: how many of them
        precede the held-out slice (None: all)."""
        n = len(rows)
        if n < 2:
            return
        c = n if cut is None else max(0, min(cut, n))
        x = self.factors[rows]
        z = feature_rows(x[:-1], negative[:-1], self.lags, self.half_life_events)
        whole = horizon_means(x, np.arange(1, n), n, self.horizons)
        h = max(c - 1, 0)  # steps t < c - 1 predict items before the cut
        cut_targets = horizon_means(x, np.arange(1, h + 1), c, self.horizons)
        self._buffer("head", z[:h], cut_targets)
        self._buffer("rest", z[h:], whole[h:])
        crossing = max(0, h - (max(self.horizons) - 1))  # earlier steps stop before the cut
        self._buffer("cross", z[crossing:h], whole[crossing:h] - cut_targets[crossing:])
        if 0 < c < n:
            self.holdout.add(z[c - 1], rows[:c], rows[c:])
        self.steps += n - 1
        if self._buffered >= self._chunk:
            self._flush()

    def _buffer(self, part: str, z: np.ndarray, targets: np.ndarray) -> None:
        if len(z):
            self._parts[part][0].append(z)
            self._parts[part][1].append(targets)
            self._buffered += len(z)

    def _flush(self) -> None:
        f = self.head.shape[0]
        for name, total in (("head", self.head), ("rest", self.rest), ("cross", self.cross)):
            zs, targets = self._parts[name]
            if zs:
                z = np.concatenate(zs)
                if name == "cross":
                    total += z.T @ np.concatenate(targets)
                else:
                    total[:, :f] += z.T @ z
                    total[:, f:] += z.T @ np.concatenate(targets)
            self._parts[name] = ([], [])
        self._buffered = 0

    def _weights(self, gram: np.ndarray, target: np.ndarray, ridge: float) -> list[np.ndarray]:
        """W_h = (ZᵀZ + λI)⁻¹ ZᵀY_h (VᵀV)⁻¹ per horizon (pseudo-inverse: factor tables of
        rank < d)."""
        d = self.factors.shape[1]
        w = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), target)
        if self._whiten is None:  # (VᵀV)⁻¹ once per fit, not once per ridge tried
            v = self.factors.astype(np.float64)
            self._whiten = np.linalg.pinv(v.T @ v)
        return [w[:, j * d : (j + 1) * d] @ self._whiten for j in range(len(self.horizons))]

    def head_weights(self, ridge: float) -> list[np.ndarray]:
        """W_h fitted on the steps before the cut, one per horizon, float32."""
        self._flush()
        f = self.head.shape[0]
        ws = self._weights(self.head[:, :f], self.head[:, f:], ridge)
        return [w.astype(np.float32) for w in ws]

    def solve(
        self,
        ridge: float,
        version: str,
        mix: Sequence[float] | None = None,
        blend: dict[str, object] | None = None,
    ) -> SequenceModel:
        """W = Σ_h mix_h · W_h fitted on every step (mix None: the first horizon alone)."""
        self._flush()
        f = self.head.shape[0]
        gram = self.head[:, :f] + self.rest[:, :f]
        target = self.head[:, f:] + self.cross + self.rest[:, f:]
        mix = tuple(mix) if mix is not None else (1.0,) + (0.0,) * (len(self.horizons) - 1)
        ws = self._weights(gram, target, ridge)
        w = sum((m * wh for m, wh in zip(mix, ws, strict=True) if m), np.zeros_like(ws[0]))
        return SequenceModel(version, self.lags, self.half_life_events, w.astype(np.float32), blend)


def fit(
    histories: Iterable[tuple[Sequence[str], Sequence[bool]]],
    factors: dict[str, np.ndarray],
    lags: int = 8,
    half_life_events: float = 5.0,
    ridge: float = 10.0,
    version: str = "0",
    holdout: float = HOLDOUT_SHARE,
    horizons: Sequence[int] = HORIZONS,
) -> SequenceModel | None:
    """Fit W on ``histories`` (item ids oldest first with negative flags) against the item
    factors ``factors`` (item id → (d,) float32; items without factors are skipped). None
    when there are no factors or no step to learn from.

    The newest ``holdout`` share of each user's events (users with at least
    MIN_HISTORY of them) is held out to choose the mix of the horizons' targets and the
    ridge (core/sequence_blend.py), then the chosen model is fitted on everything and
    records the choice; with too few such users (or ``holdout`` 0) it predicts the next
    item."""
    if not factors:
        return None
    ids = list(factors)
    row = {item_id: i for i, item_id in enumerate(ids)}
    acc = Accumulator(
        np.stack([factors[i] for i in ids]), lags, half_life_events, horizons=horizons
    )
    for items, negative in histories:
        kept = [(row[i], bool(n)) for i, n in zip(items, negative, strict=True) if i in row]
        n = len(kept)
        if n >= 2:
            tail = max(1, round(holdout * n)) if holdout > 0 and n >= MIN_HISTORY else 0
            rows = np.array([r for r, _ in kept])
            acc.add(rows, np.array([f for _, f in kept]), n - tail)
    if acc.steps == 0:
        return None
    if len(acc.holdout) < MIN_HOLDOUT_USERS:
        return acc.solve(ridge, version)
    scales = dict.fromkeys((1.0, *RIDGE_SCALES))  # the reference ridge first
    candidates = {ridge * scale: acc.head_weights(ridge * scale) for scale in scales}
    choice = choose_mix(candidates, acc.factors, acc.holdout, reference=ridge)
    return acc.solve(choice.ridge, version, choice.mix, choice.as_dict(acc.horizons))


def history_inputs(
    history: Sequence[Event], lookup: VectorLookup, content_dim: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The encoder's input for one user: the factors (the part after ``content_dim`` of
    each indexed item's vector, (n, d) float32, oldest first) and the negative flags
    ((n,) bool) of the history entries whose item is indexed; None when none is."""
    history = history[-WINDOW:]
    if not history:
        return None
    found, vectors = lookup([e.item_id for e in history])
    if not found:
        return None
    row = {item_id: i for i, item_id in enumerate(found)}
    kept = [(row[e.item_id], e.event in NEGATIVE_EVENTS) for e in history if e.item_id in row]
    factors = vectors[[r for r, _ in kept], content_dim:]
    return np.asarray(factors, dtype=np.float32), np.array([n for _, n in kept], dtype=bool)


class Histories:
    """Each user's events in arrival order (item id, negative flag): what the trainer keeps
    to fit the sequence model, one list append per event. ``max_len`` bounds each user's
    list (the oldest go), like the workers' SREC_RECENT_ITEMS."""

    def __init__(self, max_len: int = 10_000) -> None:
        self.max_len = max_len
        self._users: dict[str, list[tuple[str, bool]]] = {}
        self.events = 0

    def add(self, user_id: str, item_id: str, event: str) -> None:
        history = self._users.setdefault(user_id, [])
        history.append((item_id, event in NEGATIVE_EVENTS))
        if len(history) > self.max_len:
            del history[: len(history) - self.max_len]
        self.events += 1

    def forget(self, user_id: str) -> int:
        """Drop the user's events; returns how many."""
        return len(self._users.pop(user_id, ()))

    def __iter__(self) -> Iterator[tuple[list[str], list[bool]]]:
        for history in list(self._users.values()):
            yield [i for i, _ in history], [n for _, n in history]
