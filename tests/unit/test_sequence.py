"""The sequence model (core/sequence.py): features served equal features trained, the fit
learns a transition that no bag of items can, the bytes round-trip, and the service uses
it (u_f from the order of the history, named in the answer)."""

from __future__ import annotations

import numpy as np
import pytest

from streaming_rec.core.catalog import ItemMeta
from streaming_rec.core.requests import Request
from streaming_rec.core.sequence import (
    WINDOW,
    Accumulator,
    Histories,
    SequenceModel,
    feature_count,
    feature_rows,
    features,
    fit,
)
from streaming_rec.core.user_state import UserState
from tests.unit.test_service import service

pytestmark = pytest.mark.unit


def _factors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("n", [0, 1, 3, 9, 40, WINDOW + 37])
def test_served_features_equal_the_last_trained_row(n: int) -> None:
    x = _factors(max(n, 1), 6)[:n]
    negative = np.arange(n) % 4 == 1
    rows = feature_rows(x, negative, lags=4, half_life_events=3.0)
    served = features(x, negative, lags=4, half_life_events=3.0)
    assert rows.shape == (n, feature_count(6, 4)) and served.shape == (feature_count(6, 4),)
    if n:
        np.testing.assert_allclose(rows[-1], served, atol=1e-5)
        # a history longer than the window is read through its last WINDOW entries
        tail = features(x[-WINDOW:], negative[-WINDOW:], lags=4, half_life_events=3.0)
        np.testing.assert_allclose(served, tail, atol=1e-5)
        # row t sees only the prefix: the features of x[:t+1] alone
        t = n // 2
        np.testing.assert_allclose(
            rows[t], features(x[: t + 1], negative[: t + 1], 4, 3.0), atol=1e-5
        )
    else:
        assert served[-1] == 1.0 and not served[:-1].any()


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        features(_factors(3, 4), np.zeros(2, dtype=bool), 2, 5.0)


def test_the_fit_learns_a_cycle_that_a_bag_of_items_cannot() -> None:
    """Items follow a fixed cycle 0 → 7 → 14 → … (mod 30): after any item, the next one is
    known. A decayed average of the history points at the items seen, not at the next."""
    n_items, dim = 30, 24
    v = _factors(n_items, dim, seed=1)
    ids = [f"i{j}" for j in range(n_items)]
    rng = np.random.default_rng(2)
    histories = []
    for _ in range(200):
        start, length = int(rng.integers(n_items)), int(rng.integers(5, 20))
        seq = [(start + 7 * s) % n_items for s in range(length)]
        histories.append(([ids[j] for j in seq], [False] * length))
    model = fit(histories, dict(zip(ids, v, strict=True)), lags=2, ridge=0.1, version="t")
    assert model is not None and model.version == "t" and model.dim == dim
    hits = 0
    for last in range(n_items):
        seq = [(last - 7 * s) % n_items for s in range(4, -1, -1)]  # ends at `last`
        u = model.encode([(v[seq], np.zeros(len(seq), dtype=bool))])[0]
        scores = v @ u
        scores[seq] = -np.inf
        hits += int(np.argmax(scores)) == (last + 7) % n_items
    assert hits >= 27, hits


def test_chunked_sums_equal_one_sum() -> None:
    v = _factors(12, 5)
    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, 12, size=int(rng.integers(2, 15))) for _ in range(30)]
    small, big = Accumulator(v, 2, 4.0, chunk=1), Accumulator(v, 2, 4.0, chunk=10**9)
    for seq in seqs:
        neg = seq % 3 == 0
        small.add(seq, neg)
        big.add(seq, neg)
    a, b = small.solve(1.0, "a"), big.solve(1.0, "b")
    assert small.steps == big.steps == sum(len(s) - 1 for s in seqs)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-3, atol=1e-4)


def test_nothing_to_fit_gives_no_model() -> None:
    assert fit([(["a"], [False])], {"a": np.ones(3, dtype=np.float32)}) is None
    assert fit([(["a", "b"], [False, False])], {}) is None


def test_bytes_round_trip_and_garbage_is_refused() -> None:
    weights = np.arange(feature_count(3, 2) * 3, dtype=np.float32).reshape(-1, 3)
    model = SequenceModel("0001-x", 2, 5.0, weights)
    back = SequenceModel.from_bytes(model.to_bytes())
    assert (back.version, back.lags, back.half_life_events) == ("0001-x", 2, 5.0)
    np.testing.assert_array_equal(back.weights, weights)
    for raw in (b"", b"nope", model.to_bytes()[:-4], b"SRSQ1\x05\x00\x00\x00{bad}"):
        with pytest.raises(ValueError):
            SequenceModel.from_bytes(raw)
    with pytest.raises(ValueError, match="rows"):
        SequenceModel("v", 3, 5.0, weights)


def test_histories_keep_order_bound_and_forget() -> None:
    h = Histories(max_len=3)
    for item, event in [("a", "click"), ("b", "dislike"), ("c", "click"), ("d", "skip")]:
        h.add("u", item, event)
    h.add("w", "a", "click")
    assert sorted(h) == [(["a"], [False]), (["b", "c", "d"], [True, False, False])]
    assert h.forget("u") == 3 and list(h) == [(["a"], [False])] and h.events == 5


def test_the_service_makes_u_f_with_the_model_and_names_it() -> None:
    """Two factor directions: after 'rocket' comes 'ranch', after 'ranch' comes 'kiss' —
    the model maps each last item to the next one's factors; the answer follows the last
    click and names the model's version."""
    rec = service(factor_dim=3, alpha=0.0, gamma=0.0, beta=1.0)
    f = {"rocket": [1, 0, 0], "ranch": [0, 1, 0], "kiss": [0, 0, 1], "stars": [0, 0, 0]}
    items = {
        "rocket": ("Sci-Fi",),
        "ranch": ("Western",),
        "kiss": ("Romance",),
        "stars": ("Sci-Fi",),
    }
    content = np.eye(4, dtype=np.float32)
    rec.apply_items(
        [
            (ItemMeta(i, i, items[i]), content[n], np.array(f[i], dtype=np.float32))
            for n, i in enumerate(items)
        ]
    )
    weights = np.zeros((feature_count(3, 1), 3), dtype=np.float32)
    weights[0:3, :] = [[0, 1, 0], [0, 0, 1], [1, 0, 0]]  # lag 1: rocket → ranch → kiss
    model = SequenceModel("0002-t", 1, 5.0, weights)
    with pytest.raises(ValueError, match="dim"):
        service(factor_dim=4).use_sequence_model(model)
    rec.use_sequence_model(model)
    state = rec.apply_feedback(UserState("u"), "rocket", "click", 1.0)
    [first] = rec.recommend([Request("r1", "u", k=1, user=state)])
    assert [s.item_id for s in first.items] == ["ranch"] and first.user_model == "0002-t"
    state = rec.apply_feedback(state, "ranch", "click", 2.0)
    [second] = rec.recommend([Request("r2", "u", k=1, user=state)])
    assert [s.item_id for s in second.items] == ["kiss"]
    [anonymous] = rec.recommend([Request("r3", "v", text="space", k=1)])
    assert anonymous.user_model is None
    rec.use_sequence_model(None)
    [averaged] = rec.recommend([Request("r4", "u", k=1, user=state)])
    assert averaged.user_model is None and [s.item_id for s in averaged.items] != ["kiss"]
