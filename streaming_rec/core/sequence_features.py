"""The features z(h) of a history for the sequence model (core/sequence.py): the last K
items one by one, the long-term mean, the decayed mean, the mean of the disliked items and
a constant, over the newest WINDOW events. Served (:func:`features`, one history) and
trained (:func:`feature_rows`, every prefix of one history) by the same definition."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

NEGATIVE_EVENTS = frozenset({"dislike"})
"""Events whose items form the 'negative' block of the features."""
WINDOW = 200
"""Newest events the features read (the means are over them): bounds the query-time cost
of a long history; training uses the same sliding window."""


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
