"""Would a popularity prior weighted by each user's absence beat one constant weight on the
global time split? A check of one hypothesis, not a tuning:

    python -m streaming_rec_dev.evaluation.timesplit_gap --dataset ml-1m     (~13 min)

On the time split of timesplit.py, the sequence model's replica (leave-last-out settings)
answers every scored user under a grid of prior weights × candidates (the popular-now
prior, 7-day half-life), on the validation and on the test period, and keeps each user's
NDCG@10 with the days from their last training event to the split date (the gap; cold
users have none). Then, in one run:

- the constant weight chosen on validation, scored on test (what timesplit.py does);
- a weight per gap bucket (validation quantiles of the gap), each chosen on validation,
  scored on test — the gap-aware prior;
- the same per bucket of the user's training events (history length);
- the oracles: the best constant weight on test, the best weight per test-gap quartile.

If the per-bucket choice does not beat the constant, and the per-quartile oracle equals
the constant oracle, the absence is not what the prior should depend on. Writes
docs/quality/timesplit-gap-<dataset>.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from streaming_rec.config import load_settings
from streaming_rec_dev.datasets.movielens import load_movies, load_ratings
from streaming_rec_dev.evaluation import metrics
from streaming_rec_dev.evaluation.offline import CatalogVectors, OfflineReplica
from streaming_rec_dev.evaluation.replay import eval_settings
from streaming_rec_dev.evaluation.split import (
    TimeSplit,
    global_time_split,
    interactions,
    time_quantile,
)
from streaming_rec_dev.evaluation.timesplit import DAY, DOCS

log = logging.getLogger(__name__)
WEIGHTS = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
CANDIDATES = (500, 2000)
BUCKETS = (2, 4, 6)


def per_user_ndcg(
    replica: OfflineReplica, base: Mapping[str, str], split: TimeSplit, users: Sequence[str]
) -> dict[str, list[float]]:
    """NDCG@10 of each user (in ``users`` order) under every grid point, keyed
    ``"<candidates>:<weight>"``."""
    out: dict[str, list[float]] = {}
    for candidates in CANDIDATES:
        for weight in WEIGHTS:
            settings = load_settings(
                **{
                    **base,
                    "prior_weight": str(weight),
                    "popularity_half_life_seconds": str(7 * DAY),
                    "candidates": str(candidates),
                }
            )
            recs = replica.recommend(settings, users)
            key = f"{candidates}:{weight}"
            out[key] = [metrics.ndcg_at_k(recs.get(u, []), split.test[u], 10) for u in users]
            log.info("%s → NDCG@10 %.4f", key, float(np.mean(out[key])))
    return out


def choose_per_bucket(
    val_scores: Mapping[str, Sequence[float]],
    val_feature: np.ndarray,
    test_scores: Mapping[str, Sequence[float]],
    test_feature: np.ndarray,
    buckets: int,
) -> dict[str, Any]:
    """Split users into ``buckets`` by validation quantiles of a feature (users whose
    feature is negative — cold, no gap — form a bucket of their own), choose the grid point
    with the best mean NDCG on validation in each bucket, and score that choice on test.

    val_scores / test_scores: {grid point: per-user NDCG, in the feature arrays' order}.
    Returns {"edges", "chosen" (bucket "0", "1", … or "cold" → grid point), "validation",
    "test"} (mean NDCG@10).
    Raises ValueError when ``buckets`` < 1 or the score lists and features differ in length.
    """
    if buckets < 1:
        raise ValueError("buckets must be ≥ 1")
    val = {k: np.asarray(v, dtype=np.float64) for k, v in val_scores.items()}
    test = {k: np.asarray(v, dtype=np.float64) for k, v in test_scores.items()}
    for arrays, feature in ((val, val_feature), (test, test_feature)):
        if any(len(a) != len(feature) for a in arrays.values()):
            raise ValueError("per-user scores and features differ in length")
    known = val_feature[val_feature >= 0]
    edges = np.percentile(known, np.linspace(0, 100, buckets + 1)[1:-1]) if len(known) else []
    edges = np.asarray(edges, dtype=np.float64)

    def bucket_of(feature: np.ndarray) -> np.ndarray:
        return np.where(feature < 0, -1, np.digitize(feature, edges))

    val_bucket, test_bucket = bucket_of(val_feature), bucket_of(test_feature)
    chosen: dict[str, str] = {}
    val_total, test_total = np.zeros(len(val_feature)), np.zeros(len(test_feature))
    first = next(iter(val))
    for b in sorted(set(val_bucket.tolist()) | set(test_bucket.tolist())):
        in_val, in_test = val_bucket == b, test_bucket == b
        best = max(val, key=lambda k: val[k][in_val].mean()) if in_val.any() else first
        chosen["cold" if b < 0 else str(b)] = best
        val_total[in_val] = val[best][in_val]
        test_total[in_test] = test[best][in_test]
    return {
        "edges": edges.round(2).tolist(),
        "chosen": chosen,
        "validation": float(val_total.mean()) if len(val_total) else 0.0,
        "test": float(test_total.mean()) if len(test_total) else 0.0,
    }


def _period(replica: OfflineReplica, base: Mapping[str, str], split: TimeSplit) -> dict[str, Any]:
    users = sorted(split.test)
    last: dict[str, float] = {}
    events: dict[str, int] = {}
    for r in split.train:
        last[r.user_id] = max(last.get(r.user_id, r.ts), r.ts)
        events[r.user_id] = events.get(r.user_id, 0) + 1
    return {
        "users": users,
        "gap_days": [(split.date - last[u]) / DAY if u in last else -1.0 for u in users],
        "events": [events.get(u, -1) for u in users],  # -1: cold, a bucket of its own
        "ndcg": per_user_ndcg(replica, base, split, users),
    }


def run(dataset: str, test_q: float = 0.9, val_q: float = 0.8) -> dict[str, Any]:
    started = time.monotonic()
    movies = load_movies(dataset)
    rows = interactions(load_ratings(dataset))
    test_date, val_date = time_quantile(rows, test_q), time_quantile(rows, val_q)
    base = eval_settings(dataset, use_defaults=False, extra={})
    catalog = CatalogVectors(load_settings(**base), movies)
    periods = {}
    for name, split in (
        ("validation", global_time_split(rows, val_date, test_date)),
        ("test", global_time_split(rows, test_date)),
    ):
        periods[name] = _period(
            OfflineReplica(load_settings(**base), catalog, split.train), base, split
        )
    val, test = periods["validation"], periods["test"]
    means = {p: {k: float(np.mean(v)) for k, v in periods[p]["ndcg"].items()} for p in periods}
    constant = max(means["validation"], key=means["validation"].__getitem__)
    oracle = max(means["test"], key=means["test"].__getitem__)
    by_feature = {
        feature: {
            str(n): choose_per_bucket(
                val["ndcg"], np.array(val[feature]), test["ndcg"], np.array(test[feature]), n
            )
            for n in BUCKETS
        }
        for feature in ("gap_days", "events")
    }
    test_gaps = np.array(test["gap_days"])
    quartile_oracle = choose_per_bucket(test["ndcg"], test_gaps, test["ndcg"], test_gaps, 4)
    known = {p: np.array(periods[p]["gap_days"]) for p in periods}
    return {
        "dataset": dataset,
        "command": f"python -m streaming_rec_dev.evaluation.timesplit_gap --dataset {dataset}",
        "base_settings": base,
        "users": {p: len(periods[p]["users"]) for p in periods},
        "cold_users": {p: int((known[p] < 0).sum()) for p in periods},
        "gap_days_quantiles": {
            p: np.percentile(known[p][known[p] >= 0], [10, 25, 50, 75, 90]).round(1).tolist()
            for p in periods
        },
        "mean_ndcg": means,
        "constant_chosen_on_validation": {
            "chosen": constant,
            "validation": means["validation"][constant],
            "test": means["test"][constant],
        },
        "per_bucket_chosen_on_validation": by_feature,
        "oracle_constant_on_test": {"chosen": oracle, "test": means["test"][oracle]},
        "oracle_per_test_gap_quartile": quartile_oracle,
        "total_s": round(time.monotonic() - started, 1),
    }


def markdown(report: dict[str, Any]) -> str:
    const = report["constant_chosen_on_validation"]
    oracle = report["oracle_constant_on_test"]
    quart = report["oracle_per_test_gap_quartile"]
    lines = [
        f"# A gap-aware popularity prior? Global time split on {report['dataset']}",
        "",
        f"Command: `{report['command']}` ({report['total_s']:.0f} s). Sequence model, "
        "leave-last-out settings; grid: prior weight × candidates (`<candidates>:<weight>`), "
        "popular-now half-life 7 days. Users scored: validation "
        f"{report['users']['validation']} ({report['cold_users']['validation']} cold), test "
        f"{report['users']['test']} ({report['cold_users']['test']} cold). Days since the last "
        "training event, quantiles 10/25/50/75/90: validation "
        f"{report['gap_days_quantiles']['validation']}, "
        f"test {report['gap_days_quantiles']['test']}.",
        "",
        "| choice | chosen | validation NDCG@10 | test NDCG@10 |",
        "|---|---|---|---|",
        f"| one constant weight, chosen on validation | `{const['chosen']}` | "
        f"{const['validation']:.4f} | {const['test']:.4f} |",
    ]
    names = {"gap_days": "days since the last event", "events": "training events"}
    for feature, rows in report["per_bucket_chosen_on_validation"].items():
        for n, row in rows.items():
            lines.append(
                f"| a weight per bucket of {names[feature]} ({n} buckets, edges {row['edges']}), "
                f"chosen on validation | `{row['chosen']}` | {row['validation']:.4f} | "
                f"{row['test']:.4f} |"
            )
    lines += [
        f"| oracle: the best constant on test | `{oracle['chosen']}` | | {oracle['test']:.4f} |",
        f"| oracle: the best weight per test-gap quartile | `{quart['chosen']}` | | "
        f"{quart['test']:.4f} |",
        "",
        "Mean NDCG@10 per grid point (validation / test): "
        + ", ".join(
            f"`{k}` {v:.4f} / {report['mean_ndcg']['test'][k]:.4f}"
            for k, v in report["mean_ndcg"]["validation"].items()
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = run(args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"timesplit-gap-{args.dataset}"
    (args.out / f"{stem}.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
