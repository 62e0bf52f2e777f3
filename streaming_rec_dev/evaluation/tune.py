"""Tune the worker's settings on the VALIDATION split (never the test split).

    python -m streaming_rec_dev.evaluation.tune --dataset ml-100k

Validation = the leave-last-out rule applied to the training part: each user's
second-to-last interaction is held out, the ones before it are replayed. Settings are
tried with the in-process replica of the worker (offline.py) by coordinate search: one
setting at a time over its grid, keeping the best, for a few rounds. Objective: NDCG@10 on
the positive validation cases. Writes docs/quality/tuned-<dataset>.json and
docs/quality/tuning-<dataset>.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import orjson

from streaming_rec.config import load_settings
from streaming_rec_dev.datasets.movielens import load_movies, load_ratings
from streaming_rec_dev.evaluation import baselines, metrics
from streaming_rec_dev.evaluation.offline import PREPARED, CatalogVectors, OfflineReplica
from streaming_rec_dev.evaluation.split import interactions, leave_last_out, validation

log = logging.getLogger(__name__)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "quality"
DAY = 86400.0
GRID: dict[str, list[Any]] = {
    "beta": [0.0, 0.5, 1.0, 2.0],
    "gamma": [0.0, 0.1, 0.3, 1.0],
    "prior_weight": [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0],
    "candidates": [200, 500, 1000],
    "popularity_half_life_seconds": [3 * DAY, 30 * DAY, 365 * DAY, 1e9],
    "half_life_events": [1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0],
    "half_life_seconds": [7 * DAY, 30 * DAY, 1e9],
    "weight_skip": [-0.3, 0.0, 0.3, 0.6, 1.0],
    "weight_dislike": [-1.0, -0.3, 0.0, 0.3, 0.6, 1.0],
}
EVAL_BASE: dict[str, Any] = {"recent_items": 10_000}  # every training item is excluded


def _validation(dataset: str, cases: str) -> tuple[Any, ...]:
    """The validation split and what scoring needs: movies, split, item ids, the users
    scored (positive cases or all), their held-out items, the interaction matrix and the
    popularity percentiles."""
    movies = load_movies(dataset)
    split = validation(leave_last_out(interactions(load_ratings(dataset))))
    items = [m.item_id for m in movies]
    users = sorted(split.positive_test() if cases == "positive" else split.test)
    held = {u: split.test[u].item_id for u in users}
    data = baselines.Interactions.build(split.train, items, users)
    pct = metrics.popularity_percentiles(dict(zip(items, data.counts.tolist(), strict=True)), items)
    return movies, split, items, users, held, data, pct


def tune(
    dataset: str,
    rounds: int = 2,
    start: dict[str, Any] | None = None,
    names: list[str] | None = None,
    cases: str = "positive",
) -> dict[str, Any]:
    """Coordinate search from ``start`` (default: the defaults) over ``names`` (default:
    the whole grid)."""
    movies, split, items, users, held, data, pct = _validation(dataset, cases)
    most_popular = metrics.summarize(baselines.most_popular(data), held, pct, len(items))
    # the replica is prepared once, with the start's prepared settings (factor_dim, …)
    prepared = {k: v for k, v in (start or {}).items() if k in PREPARED}
    base = load_settings(**EVAL_BASE, **prepared)
    replica = OfflineReplica(base, CatalogVectors(base, movies), split.train)
    trials: list[dict[str, Any]] = []

    def score(params: dict[str, Any]) -> float:
        key = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
        for trial in trials:
            if trial["key"] == key:
                return float(trial["ndcg@10"])
        started = time.monotonic()
        recs = replica.recommend(load_settings(**{**EVAL_BASE, **prepared, **params}), users)
        result = metrics.summarize(recs, held, pct, len(items))
        trials.append({"key": key, "params": dict(params), **result})
        log.info(
            "%s → NDCG@10 %.4f (%.0f s)", params, result["ndcg@10"], time.monotonic() - started
        )
        return float(result["ndcg@10"])

    best: dict[str, Any] = dict(start or {})
    score({})
    best_score = score(best)
    for _ in range(rounds):
        changed = False
        for name in names or list(GRID):
            values = GRID[name]
            for value in values:
                candidate = {**best, name: value}
                if (value_score := score(candidate)) > best_score + 1e-9:
                    best, best_score, changed = candidate, value_score, True
        if not changed:
            break
    report = {
        "dataset": dataset,
        "split": "validation (second-to-last interaction of each user; "
        + ("positive cases)" if cases == "positive" else "every case, whatever its rating)"),
        "users": len(users),
        "objective": "ndcg@10",
        "most_popular": most_popular,
        "defaults": next(t for t in trials if t["params"] == {}),
        "start": dict(start or {}),
        "best": {"params": best, "ndcg@10": best_score},
        "trials": [{k: v for k, v in t.items() if k != "key"} for t in trials],
    }
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / f"tuned-{dataset}.json").write_bytes(
        orjson.dumps({**EVAL_BASE, **best}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
    (DOCS / f"tuning-{dataset}.md").write_text(_markdown(report))
    return report


def choose_factor_dim(dataset: str, dims: list[int], cases: str = "all") -> dict[str, Any]:
    """With the tuned settings fixed, try each factor dimension (a fresh replica each: the
    trainer's factors depend on it) on the validation split; write the best into
    tuned-<dataset>.json and the trials into factor-dim-<dataset>.md."""
    movies, split, items, users, held, _, pct = _validation(dataset, cases)
    path = DOCS / f"tuned-{dataset}.json"
    tuned = orjson.loads(path.read_bytes())
    catalog = CatalogVectors(load_settings(), movies)
    rows = []
    for dim in dims:
        settings = load_settings(**{**tuned, "factor_dim": dim})
        recs = OfflineReplica(settings, catalog, split.train).recommend(settings, users)
        rows.append({"factor_dim": dim, **metrics.summarize(recs, held, pct, len(items))})
        log.info("factor_dim %d → NDCG@10 %.4f", dim, rows[-1]["ndcg@10"])
    best = max(rows, key=lambda r: r["ndcg@10"])
    path.write_bytes(
        orjson.dumps(
            {**tuned, "factor_dim": best["factor_dim"]},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )
    )
    lines = [
        f"# Factor dimension on {dataset} — validation split only",
        "",
        f"The other settings fixed at `tuned-{dataset}.json`; validation cases: {cases} "
        f"({len(users)} users); each dimension gets its own replica (the trainer's factors "
        "depend on it). Command: `python -m streaming_rec_dev.evaluation.tune --dataset "
        f"{dataset} --factor-dims {','.join(map(str, dims))} --cases {cases}`.",
        "",
        "| factor_dim | NDCG@10 | HitRate@10 | coverage | pop. pct |",
        "|---|---|---|---|---|",
        *(
            f"| {r['factor_dim']} | {r['ndcg@10']:.4f} | {r['hit_rate@10']:.4f} "
            f"| {r['coverage']:.3f} | {r['popularity_percentile']:.1f} |"
            for r in rows
        ),
        "",
        f"Chosen: {best['factor_dim']} (written to `tuned-{dataset}.json`).",
    ]
    (DOCS / f"factor-dim-{dataset}.md").write_text("\n".join(lines) + "\n")
    return {"rows": rows, "best": best["factor_dim"]}


def _markdown(report: dict[str, Any]) -> str:
    mp = report["most_popular"]
    lines = [
        f"# Tuning on {report['dataset']} — validation split only",
        "",
        f"Split: {report['split']}, {report['users']} users. Objective: NDCG@10. "
        "Search: coordinate search over the grid of `streaming_rec/evaluation/tune.py` "
        "with the in-process replica of the worker (`offline.py`), starting from "
        f"`{report['start']}`.",
        "",
        f"MostPopular on validation: NDCG@10 {mp['ndcg@10']:.4f}, "
        f"HitRate@10 {mp['hit_rate@10']:.4f}.",
        f"Defaults: NDCG@10 {report['defaults']['ndcg@10']:.4f}. "
        f"Best: NDCG@10 {report['best']['ndcg@10']:.4f} with `{report['best']['params']}`.",
        "",
        "| trial | changed settings | NDCG@10 | HitRate@10 | coverage | pop. pct |",
        "|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(report["trials"]):
        lines.append(
            f"| {i} | `{t['params']}` | {t['ndcg@10']:.4f} | {t['hit_rate@10']:.4f} "
            f"| {t['coverage']:.3f} | {t['popularity_percentile']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--start", help="start from docs/quality/tuned-<this>.json")
    parser.add_argument("--params", help="comma-separated settings to search (default: all)")
    parser.add_argument(
        "--cases",
        default="positive",
        choices=["positive", "all"],
        help="validation cases scored: held-out item rated >= 4, or every held-out item",
    )
    parser.add_argument(
        "--factor-dims",
        help="only choose the factor dimension (e.g. 32,64,128,256) with the tuned settings",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.factor_dims:
        dims = [int(d) for d in args.factor_dims.split(",")]
        print(orjson.dumps(choose_factor_dim(args.dataset, dims, args.cases)["best"]).decode())
        return
    start = None
    if args.start:
        start = orjson.loads((DOCS / f"tuned-{args.start}.json").read_bytes())
        start = {k: v for k, v in start.items() if k not in EVAL_BASE}
    names = args.params.split(",") if args.params else None
    result = tune(args.dataset, args.rounds, start, names, args.cases)
    print(orjson.dumps(result["best"]).decode())


if __name__ == "__main__":
    main()
