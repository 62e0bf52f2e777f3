"""The per-bucket choice of the gap-aware prior check (evaluation/timesplit_gap.py)."""

import numpy as np
import pytest

from streaming_rec_dev.evaluation.timesplit_gap import choose_per_bucket


def test_each_bucket_gets_the_weight_that_won_it_on_validation() -> None:
    # users 0-1 came back soon and prefer no prior; users 2-3 after long and prefer it
    gaps = np.array([1.0, 2.0, 50.0, 60.0])
    scores = {"500:0.0": [0.9, 0.8, 0.1, 0.2], "500:10.0": [0.2, 0.1, 0.7, 0.9]}
    row = choose_per_bucket(scores, gaps, scores, gaps, buckets=2)
    assert row["chosen"] == {"0": "500:0.0", "1": "500:10.0"}
    assert row["test"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.9) / 4)


def test_one_bucket_is_the_constant_choice_and_cold_users_form_their_own() -> None:
    gaps = np.array([-1.0, 3.0, 40.0])
    val = {"a": [0.0, 0.5, 0.5], "b": [1.0, 0.4, 0.4]}
    test = {"a": [0.0, 0.1, 0.1], "b": [0.3, 0.2, 0.2]}
    row = choose_per_bucket(val, gaps, test, gaps, buckets=1)
    assert row["chosen"] == {"cold": "b", "0": "a"}
    assert row["test"] == pytest.approx((0.3 + 0.1 + 0.1) / 3)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        choose_per_bucket({"a": [0.1]}, np.array([1.0, 2.0]), {"a": [0.1]}, np.array([1.0]), 2)
    with pytest.raises(ValueError, match="buckets"):
        choose_per_bucket({"a": [0.1]}, np.array([1.0]), {"a": [0.1]}, np.array([1.0]), 0)
