"""The results of a replay as JSON, a markdown table and a bar plot (docs/quality/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

ROW_NAMES = {
    "most_popular": "MostPopular (training counts)",
    "item_knn": "ItemKNN (cosine co-occurrence)",
    "content_only": "content only: text vectors, no factors (in-process replica)",
    "decayed_average": "before: decayed average of SVD factors, own tuned settings (replica)",
    "sasrec": "SASRec (offline, torch, harness-trained on the same split)",
    "ours": "streaming_rec (live worker)",
    "ours_no_user": "streaming_rec, no user vector",
}
COLUMNS = ["ndcg@10", "recall@10", "hit_rate@10", "mrr@10", "coverage", "popularity_percentile"]


def write(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["dataset"]
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / f"{name}.png"]
    paths[0].write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    paths[1].write_text(markdown(report))
    plot(report, paths[2])
    return paths


def _table(rows: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| system | users | NDCG@10 | Recall@10 | HitRate@10 | MRR@10 | coverage | pop. pct |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, row in rows.items():
        values = " | ".join(
            f"{row[c]:.1f}" if c == "popularity_percentile" else f"{row[c]:.4f}" for c in COLUMNS
        )
        lines.append(f"| {ROW_NAMES.get(key, key)} | {int(row['users'])} | {values} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    t = report["timings"]
    known, attr = report["known_item"], report["attribute"]
    lines = [
        f"# Quality on {report['dataset']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Worker settings (besides the topic/app ids): `{report['worker_settings']}`  ",
        f"Split: {report['protocol']}",
        "",
        "## For-you ranking, positive held-out items (the main table)",
        "",
        *_table(report["results"]["positive_last"]),
        "",
        "## For-you ranking, every held-out item",
        "",
        *_table(report["results"]["all_last"]),
        "",
        "Recall@10 = HitRate@10 here: each test user has one held-out item. Coverage: distinct "
        "items in the top-10 lists ÷ catalog. Pop. pct: mean percentile (0–100, by training "
        "interactions) of the recommended items.",
        "",
        "## Natural-language queries (fresh users, no personalization)",
        "",
        "| query set | queries | MRR@10 | Recall@10 | precision@10 | genre prec. | decade prec. |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("partial", "misspelled", "all"):
        k = known[kind]
        lines.append(
            f"| known-item: {kind} | {int(k['queries'])} | {k['mrr@10']:.3f} | "
            f"{k['recall@10']:.3f} | | | |"
        )
    lines.append(
        f"| attribute | {int(attr['queries'])} | | | {attr['precision@10']:.3f} | "
        f"{attr['genre_precision@10']:.3f} | {attr['decade_precision@10']:.3f} |"
    )
    sas = report.get("sasrec") or {}
    if sas:
        lines += [
            "",
            "## The SASRec baseline",
            "",
            f"Trained by the harness on this split's training part on the CPU (torch, "
            f"{sas['config']['threads'] or 'default'} threads): {sas['epochs_run']} epochs in "
            f"{sas['train_s']:.0f} s, stopped by {sas['stopped_by']}; epoch {sas['best_epoch']} "
            f"kept (validation NDCG@10 {sas['best_val_ndcg@10']:.4f}; config "
            f"`{sas['config']}`). Far from converged when stopped by the budget.",
        ]
    lines += ["", "## Checks and timings", ""]
    lines += [f"- {key}: {value}" for key, value in report["checks"].items()]
    lines += [f"- {key}: {value}" for key, value in t.items()]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]["positive_last"]
    names = [ROW_NAMES.get(k, k).split(" (")[0] for k in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, metric in zip(axes, ["ndcg@10", "hit_rate@10", "coverage"], strict=True):
        values = [rows[k][metric] for k in rows]
        colors = ["#1f77b4" if k == "ours" else "#999" for k in rows]
        bars = ax.bar(range(len(values)), values, color=colors)
        ax.set_xticks(range(len(values)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    fig.suptitle(f"{report['dataset']}: leave-last-out, positive held-out items, full ranking")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
