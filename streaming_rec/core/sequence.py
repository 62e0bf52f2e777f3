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
side stays [v_c ; v_f]. W is the least-squares next-item model in the factor space,

    W = argmin_W  Σ_t ‖ onehot(h_{t+1}) − z(h_{≤t}) · W · Vᵀ ‖² + λ‖W‖²
      = (ZᵀZ + λI)⁻¹ · Zᵀ V[h_{t+1}] · (VᵀV)⁻¹

(V: the (items, d) factor table; the right factor whitens the factor space, so the fit is
the item-space least squares, not a regression onto the factors). It is a linear
autoregressive model of the factors — FPMC's first-order transitions (Rendle et al.,
WWW 2010) and the per-position weights of Caser (Tang & Wang, WSDM 2018) in one ridge
regression, in the spirit of the closed-form linear item models EASE (Steck, WWW 2019)
and SLIST (Choi et al., WSDM 2021), but of rank d so that it fits one inner product. The
constant feature learns a popularity direction; the mean blocks learn how much of the
long-term profile to keep — both from the data, not by hand.

Fitting needs numpy and scipy only: ZᵀZ and ZᵀV are accumulated user by user
(:class:`Accumulator`), so memory is O(F²) whatever the number of events; the ML-1M fit
takes seconds beside the SVD. The model travels as bytes (:meth:`SequenceModel.to_bytes`)
with a version shared with the item factors it was fitted on.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
from scipy.signal import lfilter

from streaming_rec.core.user_state import Event, VectorLookup

NEGATIVE_EVENTS = frozenset({"dislike"})
"""Events whose items form the 'negative' block of the features."""
WINDOW = 200
"""Newest events the features read (the means are over them): bounds the query-time cost
of a long history; training uses the same sliding window."""

_MAGIC = b"SRSQ1"


def feature_count(dim: int, lags: int) -> int:
    """F: the length of z for ``dim`` factors and ``lags`` lags."""
    return (lags + 3) * dim + 1


def feature_rows(
    factors: np.ndarray, negative: np.ndarray, lags: int, half_life_events: float
) -> np.ndarray:
    """z of every prefix of one history: row t describes ``factors[: t + 1]`` (its last
    WINDOW entries).

    factors: (n, d) float32, the history's item factors oldest first; negative: (n,) bool.
    Returns (n, F) float32 (F = :func:`feature_count`). Raises ValueError when the two
    lengths differ.
    """
    n, dim = factors.shape
    if negative.shape != (n,):
        raise ValueError(f"negative has shape {negative.shape}, expected ({n},)")
    out = np.zeros((n, feature_count(dim, lags)), dtype=np.float32)
    if n == 0:
        return out
    x = factors.astype(np.float64)
    for k in range(min(lags, n)):
        out[k:, k * dim : (k + 1) * dim] = x[: n - k]
    counts = np.minimum(np.arange(1, n + 1, dtype=np.float64), WINDOW)[:, None]
    out[:, lags * dim : (lags + 1) * dim] = _windowed(np.cumsum(x, axis=0)) / counts
    w = 0.5 ** (1.0 / half_life_events)
    decayed = lfilter([1.0], [1.0, -w], x, axis=0)
    norm = lfilter([1.0], [1.0, -w], np.ones(n))[:, None]
    out[:, (lags + 1) * dim : (lags + 2) * dim] = decayed / norm
    neg = negative.astype(np.float64)[:, None]
    neg_sum = _windowed(np.cumsum(x * neg, axis=0))
    neg_count = _windowed(np.cumsum(neg, axis=0))
    out[:, (lags + 2) * dim : (lags + 3) * dim] = neg_sum / np.maximum(neg_count, 1)
    out[:, -1] = 1.0
    return out


def _windowed(cumulative: np.ndarray) -> np.ndarray:
    """Running sums over the last WINDOW rows, from running sums over all rows."""
    out = cumulative.copy()
    out[WINDOW:] -= cumulative[:-WINDOW]
    return out


def features(
    factors: np.ndarray, negative: np.ndarray, lags: int, half_life_events: float
) -> np.ndarray:
    """z of one whole history (the last row of :func:`feature_rows`, in O(WINDOW·d)).

    factors: (n, d) float32 oldest first; negative: (n,) bool. Returns (F,) float32."""
    if negative.shape != (factors.shape[0],):
        raise ValueError(f"negative has shape {negative.shape}, expected ({factors.shape[0]},)")
    factors, negative = factors[-WINDOW:], negative[-WINDOW:]
    n, dim = factors.shape
    z = np.zeros(feature_count(dim, lags), dtype=np.float32)
    z[-1] = 1.0
    if n == 0:
        return z
    x = factors.astype(np.float64)
    for k in range(min(lags, n)):
        z[k * dim : (k + 1) * dim] = x[n - 1 - k]
    z[lags * dim : (lags + 1) * dim] = x.mean(axis=0)
    decay = 0.5 ** (np.arange(n - 1, -1, -1, dtype=np.float64) / half_life_events)
    z[(lags + 1) * dim : (lags + 2) * dim] = decay @ x / decay.sum()
    neg = negative.astype(np.float64)
    if neg.any():
        z[(lags + 2) * dim : (lags + 3) * dim] = neg @ x / neg.sum()
    return z


@dataclass(frozen=True, eq=False)
class SequenceModel:
    """The user-side model: the weights W and how z is built. ``version`` names the item
    factors it was fitted with (the trainer's refresh); answers name it."""

    version: str
    lags: int
    half_life_events: float
    weights: np.ndarray  # (F, d) float32

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
            )
        except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"bad sequence model header: {exc}") from exc


class Accumulator:
    """ZᵀZ and ZᵀV[next] summed over every step of every history, so that the fit needs
    O(F²) memory whatever the number of events: steps are buffered (``chunk`` rows) and
    each full buffer is one float32 matrix product added to float64 sums."""

    def __init__(
        self, factors: np.ndarray, lags: int, half_life_events: float, chunk: int = 16_384
    ) -> None:
        self.factors = factors.astype(np.float32)
        self.lags = lags
        self.half_life_events = half_life_events
        f = feature_count(factors.shape[1], lags)
        self.gram = np.zeros((f, f), dtype=np.float64)
        self.target = np.zeros((f, factors.shape[1]), dtype=np.float64)
        self.steps = 0
        self._chunk = chunk
        self._z: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._buffered = 0

    def add(self, rows: np.ndarray, negative: np.ndarray) -> None:
        """One history: rows (n,) int indices into the factor table (oldest first; items
        without factors already dropped), negative (n,) bool."""
        if len(rows) < 2:
            return
        x = self.factors[rows]
        self._z.append(feature_rows(x[:-1], negative[:-1], self.lags, self.half_life_events))
        self._y.append(x[1:])
        self._buffered += len(rows) - 1
        self.steps += len(rows) - 1
        if self._buffered >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if not self._z:
            return
        z, y = np.concatenate(self._z), np.concatenate(self._y)
        self.gram += z.T @ z
        self.target += z.T @ y
        self._z, self._y, self._buffered = [], [], 0

    def solve(self, ridge: float, version: str) -> SequenceModel:
        """W = (ZᵀZ + λI)⁻¹ ZᵀV[next] (VᵀV)⁻¹ (pseudo-inverse: factor tables of rank < d)."""
        self._flush()
        f = self.gram.shape[0]
        w = np.linalg.solve(self.gram + ridge * np.eye(f), self.target)
        v = self.factors.astype(np.float64)
        w = w @ np.linalg.pinv(v.T @ v)
        return SequenceModel(version, self.lags, self.half_life_events, w.astype(np.float32))


def fit(
    histories: Iterable[tuple[Sequence[str], Sequence[bool]]],
    factors: dict[str, np.ndarray],
    lags: int = 8,
    half_life_events: float = 5.0,
    ridge: float = 10.0,
    version: str = "0",
) -> SequenceModel | None:
    """Fit W on ``histories`` (item ids oldest first with negative flags) against the item
    factors ``factors`` (item id → (d,) float32; items without factors are skipped). None
    when there are no factors or no step to learn from."""
    if not factors:
        return None
    ids = list(factors)
    row = {item_id: i for i, item_id in enumerate(ids)}
    acc = Accumulator(np.stack([factors[i] for i in ids]), lags, half_life_events)
    for items, negative in histories:
        kept = [(row[i], bool(n)) for i, n in zip(items, negative, strict=True) if i in row]
        if len(kept) >= 2:
            acc.add(np.array([r for r, _ in kept]), np.array([n for _, n in kept]))
    if acc.steps == 0:
        return None
    return acc.solve(ridge, version)


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
