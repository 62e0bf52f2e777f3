"""The shipped defaults on the replay's split, beside the tuned figures of `make eval`.

    python -m streaming_rec_dev.evaluation.shipped --dataset ml-1m      (~5 min)

`make eval` runs the worker with docs/quality/tuned-<dataset>.json (chosen on validation);
`make run-workers` runs the defaults. This scores the defaults (SREC_RECENT_ITEMS=10000
only, as in the replay: every training item excluded), with the sequence model and
without it, in the in-process replica of the worker (offline.py) on the same
leave-last-out split. Writes docs/quality/shipped-<dataset>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson

from streaming_rec_dev.datasets.movielens import load_movies, load_ratings
from streaming_rec_dev.evaluation import baselines, metrics
from streaming_rec_dev.evaluation.replay import DOCS, _replica
from streaming_rec_dev.evaluation.split import interactions, leave_last_out

ROWS = {
    "defaults_sequence": {"recent_items": "10000"},
    "defaults_decayed_average": {"recent_items": "10000", "sequence_model": "False"},
}


def run(dataset: str) -> dict[str, Any]:
    started = time.monotonic()
    movies = load_movies(dataset)
    items = [m.item_id for m in movies]
    split = leave_last_out(interactions(load_ratings(dataset)))
    users = sorted(split.test)
    data = baselines.Interactions.build(split.train, items, users)
    pct = metrics.popularity_percentiles(dict(zip(items, data.counts.tolist(), strict=True)), items)
    results: dict[str, Any] = {}
    for name, settings in ROWS.items():
        recs = _replica(settings, movies, split, users)
        results[name] = {
            case: metrics.summarize(recs, {u: i.item_id for u, i in test.items()}, pct, len(items))
            for case, test in (("positive_last", split.positive_test()), ("all_last", split.test))
        }
    return {
        "dataset": dataset,
        "command": f"python -m streaming_rec_dev.evaluation.shipped --dataset {dataset}",
        "settings": ROWS,
        "results": results,
        "total_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-1m", "ml-100k"])
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    report = run(args.dataset)
    path = args.out / f"shipped-{args.dataset}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    for name, cases in report["results"].items():
        print(name, {case: round(row["ndcg@10"], 4) for case, row in cases.items()})


if __name__ == "__main__":
    main()
