import numpy as np
import pytest

from streaming_rec.core.factors import (
    Interactions,
    fit_content_map,
    item_factors,
    predict_factors,
)

pytestmark = pytest.mark.unit


def test_items_consumed_together_get_close_factors() -> None:
    log = Interactions()
    rng = np.random.default_rng(0)
    for u in range(60):
        group = ("a1", "a2", "a3") if u % 2 else ("b1", "b2", "b3")
        for item in group:
            log.add(f"u{u}", item)
        log.add(f"u{u}", f"noise{rng.integers(20)}")
    matrix, ids = log.matrix()
    assert matrix.shape[0] == 60 and len(ids) == matrix.shape[1] and log.events == 240
    factors = item_factors(matrix, ids, dim=8)
    v = dict(zip(factors.item_ids, factors.vectors, strict=True))
    assert np.allclose(np.linalg.norm(factors.vectors, axis=1), 1.0, atol=1e-5)
    assert float(v["a1"] @ v["a2"]) > 0.9 and float(v["b1"] @ v["b3"]) > 0.9
    assert float(v["a1"] @ v["b1"]) < 0.5


def test_repeated_events_count_once_and_tiny_matrices_do_not_fail() -> None:
    log = Interactions()
    log.add("u", "a")
    log.add("u", "a")
    matrix, ids = log.matrix()
    assert matrix.nnz == 1 and log.events == 2
    factors = item_factors(matrix, ids, dim=4)  # rank 0 possible: zeros, no exception
    assert factors.vectors.shape == (1, 4)
    empty, empty_ids = Interactions().matrix()
    assert item_factors(empty, empty_ids, dim=4).vectors.shape == (0, 4)


def test_the_content_map_predicts_factors_of_unseen_items() -> None:
    rng = np.random.default_rng(1)
    true_map = rng.standard_normal((16, 4))
    content = rng.standard_normal((200, 16))
    factors = content @ true_map
    learned = fit_content_map(content[:150], factors[:150], ridge=1e-3)
    predicted = predict_factors(learned, content[150:])
    assert np.all(np.linalg.norm(predicted, axis=1) <= 1.0 + 1e-6)
    unit = predicted / np.linalg.norm(predicted, axis=1, keepdims=True)
    expected = factors[150:] / np.linalg.norm(factors[150:], axis=1, keepdims=True)
    assert np.min(np.sum(unit * expected, axis=1)) > 0.99


def test_an_uninformed_map_predicts_short_vectors() -> None:
    rng = np.random.default_rng(2)
    content = rng.standard_normal((5, 16))
    factors = rng.standard_normal((5, 4))
    factors /= np.linalg.norm(factors, axis=1, keepdims=True)
    learned = fit_content_map(content, factors, ridge=50.0)
    assert (
        np.max(np.linalg.norm(predict_factors(learned, rng.standard_normal((20, 16))), axis=1))
        < 0.5
    )


def test_learn_gives_learned_factors_and_predicts_the_rest() -> None:
    from streaming_rec.core.factors import learn

    rng = np.random.default_rng(3)
    log = Interactions()
    for u in range(80):
        for item in rng.choice(30, size=5, replace=False):
            log.add(f"u{u}", f"i{item}")
    content = {f"i{i}": rng.standard_normal(8).astype(np.float32) for i in range(31)}
    model = learn(log, content, dim=4)
    assert len(model.learned) == 30 and model.content_map is not None
    assert np.array_equal(model.factors_for("i0", content["i0"]), model.learned["i0"])
    cold = model.factors_for("i30", content["i30"])  # nobody touched it: predicted
    assert cold is not None and cold.shape == (4,) and float(np.linalg.norm(cold)) <= 1.0 + 1e-6
    assert learn(Interactions(), content, dim=4).factors_for("i0", content["i0"]) is None
