"""The learned mix of the sequence model's targets (core/sequence_blend.py): the sums of
one pass equal a direct fit, on the head and on everything; the held-out slice picks
the mix that ranks its users' later items best; the choice travels with the model."""

from __future__ import annotations

import numpy as np
import pytest

from streaming_rec.core.sequence import Accumulator, Histories, SequenceModel, feature_rows, fit
from streaming_rec.core.sequence_blend import Holdout, choose_mix, horizon_means, mixes

pytestmark = pytest.mark.unit


def _factors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _direct(v: np.ndarray, seqs: list[np.ndarray], cuts: list[int], horizon: int, head: bool):
    """The ridge fit from explicit rows: every step (or only those whose next item lies
    before the cut, their targets stopping there)."""
    lags, ridge = 2, 0.5
    zs, ys = [], []
    for seq, cut in zip(seqs, cuts, strict=True):
        x = v[seq]
        neg = seq % 3 == 0
        z = feature_rows(x[:-1], neg[:-1], lags, 4.0)
        stop = cut if head else len(seq)
        for t in range(len(seq) - 1):
            if t + 1 >= stop:
                break
            zs.append(z[t])
            ys.append(x[t + 1 : min(t + 1 + horizon, stop)].mean(axis=0))
    z, y = np.array(zs, dtype=np.float64), np.array(ys, dtype=np.float64)
    w = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ y)
    return w @ np.linalg.pinv(v.T.astype(np.float64) @ v)


def test_one_pass_gives_the_head_fit_and_the_whole_fit() -> None:
    v = _factors(15, 5)
    rng = np.random.default_rng(4)
    seqs = [rng.integers(0, 15, size=int(rng.integers(2, 30))) for _ in range(40)]
    cuts = [int(rng.integers(0, len(s) + 1)) for s in seqs]
    acc = Accumulator(v, 2, 4.0, chunk=7, horizons=(1, 4))
    for seq, cut in zip(seqs, cuts, strict=True):
        acc.add(seq, seq % 3 == 0, cut)
    head = acc.head_weights(0.5)
    for j, horizon in enumerate((1, 4)):
        np.testing.assert_allclose(head[j], _direct(v, seqs, cuts, horizon, True), atol=2e-4)
        mix = (1.0, 0.0) if j == 0 else (0.0, 1.0)
        whole = acc.solve(0.5, "w", mix).weights
        np.testing.assert_allclose(whole, _direct(v, seqs, cuts, horizon, False), atol=2e-4)
    blended = acc.solve(0.5, "m", (0.25, 0.75)).weights
    expected = 0.25 * _direct(v, seqs, cuts, 1, False) + 0.75 * _direct(v, seqs, cuts, 4, False)
    np.testing.assert_allclose(blended, expected, atol=2e-4)
    assert len(acc.holdout) == sum(0 < c < len(s) for s, c in zip(seqs, cuts, strict=True))


def test_the_holdout_keeps_a_bounded_uniform_sample() -> None:
    holdout = Holdout(limit=50)
    for user in range(1000):
        holdout.add(np.full(2, user, dtype=np.float32), np.array([1]), np.array([2]))
    holdout.add(np.zeros(2), np.array([], dtype=int), np.array([2]))  # nothing before the cut
    kept = sorted(int(z[0]) for z in holdout.z)
    assert len(holdout) == 50 and holdout.offered == 1000 and len(set(kept)) == 50
    assert kept[-1] > 500  # later users replace earlier ones: not just the first 50


def test_horizon_means_and_the_grid() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    out = horizon_means(x, np.array([1, 4]), 5, (1, 3))
    np.testing.assert_allclose(out[0], [*x[1], *x[1:4].mean(axis=0)])
    np.testing.assert_allclose(out[1], [*x[4], *x[4]])  # stops at 5
    grid = mixes(3, 0.5)
    assert grid[0] == (1.0, 0.0, 0.0) and len(grid) == 6
    assert all(abs(sum(m) - 1) < 1e-9 and min(m) >= 0 for m in grid)


def test_the_holdout_chooses_the_weights_that_rank_what_came_after() -> None:
    """Three users; W_a points each user at the item they took after the cut, W_b at
    another one: the mixes where W_a outweighs W_b rank it first, and of those ties the
    one with most of the first target (the next item) is kept."""
    v = np.eye(6, dtype=np.float32)
    z = np.eye(3, dtype=np.float32)
    good = np.zeros((3, 6), dtype=np.float32)
    bad = np.zeros((3, 6), dtype=np.float32)
    holdout = Holdout()
    for user, (after, other) in enumerate([(3, 4), (4, 5), (5, 3)]):
        good[user, after], bad[user, other] = 1.0, 1.0
        holdout.add(z[user], np.array([user]), np.array([after]))
    choice = choose_mix({2.0: [bad, good]}, v, holdout, reference=2.0)
    assert choice.mix == (0.25, 0.75) and choice.users == 3 and choice.ridge == 2.0
    first, last = choice.trials[0], choice.trials[-1]  # W_b alone, W_a alone
    assert first["mix"] == [1.0, 0.0] and first["ndcg_next"] == first["ndcg_all"] < 0.5
    assert last["mix"] == [0.0, 1.0] and last["ndcg_next"] == last["ndcg_all"] == 1.0
    assert first["gain_lower_bound"] == 0.0 < last["gain_lower_bound"]
    assert choose_mix({2.0: [good, bad]}, v, holdout, reference=2.0).mix == (1.0, 0.0)
    # a ridge is a candidate like a mix: W_a under another ridge wins over W_b
    choice = choose_mix({2.0: [bad, bad], 20.0: [good, good]}, v, holdout, reference=2.0)
    assert choice.ridge == 20.0 and choice.mix == (1.0, 0.0)


def test_a_gain_within_its_noise_keeps_the_next_item() -> None:
    """Two users: the alternative lifts one user's item from 2nd to 1st place and drops
    the other's from 2nd to 3rd. Its mean is higher, but not by a standard error."""
    v, z = np.eye(30, dtype=np.float32), np.eye(2, dtype=np.float32)
    reference = np.zeros((2, 30), dtype=np.float32)
    holdout = Holdout()
    for user in range(2):
        reference[user, [user, 20]] = [0.5, 1.0]  # the item taken after the cut is 2nd
        holdout.add(z[user], np.array([29]), np.array([user]))
    other = reference.copy()
    other[0, 0] = 2.0  # first for user 0
    other[1, 21] = 0.7  # third for user 1
    choice = choose_mix({1.0: [reference, other]}, v, holdout, reference=1.0, step=1.0)
    ref, alt = choice.trials
    assert alt["ndcg_next"] > ref["ndcg_next"] and alt["gain_lower_bound"] < 0
    assert choice.mix == (1.0, 0.0)


def test_fit_chooses_the_next_item_on_a_cycle_and_keeps_the_choice() -> None:
    """A fixed cycle 0 → 7 → 14 → … (mod 30): the next item is known, the next 100 are
    the whole catalog, so the held-out tails keep the next-item target in the mix (the
    long horizon alone misses the next item)."""
    n_items, dim = 30, 24
    v = _factors(n_items, dim, seed=1)
    ids = [f"i{j}" for j in range(n_items)]
    rng = np.random.default_rng(2)
    histories = Histories()
    for user in range(300):
        start, length = int(rng.integers(n_items)), int(rng.integers(5, 40))
        for s in range(length):
            histories.add(f"u{user}", ids[(start + 7 * s) % n_items], "click")
    table = dict(zip(ids, v, strict=True))
    model = fit(histories, table, lags=2, ridge=0.1, version="t")
    assert model is not None and model.blend is not None
    blend = model.blend
    assert blend["mix"][0] > 0 and blend["holdout_users"] >= 20 and blend["horizons"][0] == 1
    chosen = next(t for t in blend["trials"] if t["mix"] == blend["mix"])
    long_only = next(t for t in blend["trials"] if t["mix"] == [0.0, 1.0])
    assert chosen["ndcg_next"] > long_only["ndcg_next"]
    back = SequenceModel.from_bytes(model.to_bytes())
    assert back.blend == model.blend
    u = model.encode([(v[[0, 7, 14]], np.zeros(3, dtype=bool))])[0]
    assert int(np.argmax(v @ u)) == 21
    # nothing held out: the next-item target alone, at the ridge given
    plain = fit(histories, table, lags=2, ridge=0.1, holdout=0.0)
    assert plain is not None and plain.blend is None
