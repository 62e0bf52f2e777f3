"""The learning curve: NDCG@10 against the number of feedback events seen.

    python -m streaming_rec_dev.evaluation.curve --dataset ml-100k     (~4 min on 2 cores)

The leave-last-out test split (split.py); the first share of the training events in global
time order is replayed — what the stream had delivered by then — and every test user
(positive held-out item) is asked one "for you" query. Ours (the sequence model) and the
model before it (the decayed average, its own tuned settings) are the in-process replica
of the worker with the trainer's fit over the events seen (offline.py); MostPopular and
ItemKNN are fitted on the same events. Writes docs/quality/learning-curve-<dataset>.json
and .png.
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
from streaming_rec_dev.evaluation.offline import CatalogVectors, OfflineReplica
from streaming_rec_dev.evaluation.replay import decayed_settings, eval_settings
from streaming_rec_dev.evaluation.split import interactions, leave_last_out

log = logging.getLogger(__name__)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "quality"
SHARES = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
LABELS = {
    "ours": "streaming_rec: sequence model",
    "decayed_average": "before: decayed average",
    "item_knn": "ItemKNN",
    "most_popular": "MostPopular",
}


def run(dataset: str, shares: tuple[float, ...] = SHARES) -> dict[str, Any]:
    started = time.monotonic()
    movies = load_movies(dataset)
    items = [m.item_id for m in movies]
    split = leave_last_out(interactions(load_ratings(dataset)))
    test = split.positive_test()
    users = sorted(test)
    held = {u: i.item_id for u, i in test.items()}
    models = {"ours": eval_settings(dataset, use_defaults=False, extra={})}
    before = decayed_settings(dataset)
    if before is not None:
        models["decayed_average"] = before
    catalog = CatalogVectors(load_settings(**models["ours"]), movies)
    points = []
    for share in shares:
        seen = split.train[: int(share * len(split.train))]
        # counts over everyone's events (as in the replay), scored over the test users
        everyone = sorted({r.user_id for r in split.train} | set(users))
        data = baselines.Interactions.build(seen, items, everyone)
        counts = dict(zip(items, data.counts.tolist(), strict=True))
        pct = metrics.popularity_percentiles(counts, items)
        recs = {"most_popular": baselines.most_popular(data), "item_knn": baselines.item_knn(data)}
        for name, chosen in models.items():
            settings = load_settings(**chosen)
            recs[name] = OfflineReplica(settings, catalog, seen).recommend(settings, users)
        point = {
            "events": len(seen),
            "share": share,
            **{k: metrics.summarize(r, held, pct, len(items))["ndcg@10"] for k, r in recs.items()},
        }
        log.info("%s", point)
        points.append(point)
    return {
        "dataset": dataset,
        "command": f"python -m streaming_rec_dev.evaluation.curve --dataset {dataset}",
        "protocol": "leave-last-out, positive held-out items, full ranking; the first share "
        "of the training events (global time order) replayed",
        "users": len(users),
        "points": points,
        "total_s": round(time.monotonic() - started, 1),
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    events = [p["events"] for p in report["points"]]
    for key, label in LABELS.items():
        if key in report["points"][0]:
            values = [p[key] for p in report["points"]]
            ax.plot(events, values, marker="o", label=label, lw=2.2 if key == "ours" else 1.2)
    ax.set_xscale("log")
    ax.set_xlabel("feedback events seen (global time order)")
    ax.set_ylabel("NDCG@10 (positive held-out items)")
    ax.set_title(f"{report['dataset']}: learning curve, leave-last-out, full ranking")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = run(args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / f"learning-curve-{args.dataset}"
    base.with_suffix(".json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    plot(report, base.with_suffix(".png"))
    print(base.with_suffix(".png"))


if __name__ == "__main__":
    main()
