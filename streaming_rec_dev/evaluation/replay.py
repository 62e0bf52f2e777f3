"""The quality harness: replay MovieLens through the real topics and a real worker, score
it against offline baselines on the same split, write docs/quality/<dataset>.{json,md,png}.

    python -m streaming_rec_dev.evaluation.replay --dataset ml-1m      (make eval)
    python -m streaming_rec_dev.evaluation.replay --dataset ml-100k    (quick mode)

1. Split: per-user leave-last-out (split.py). Baselines (baselines.py) offline.
2. A broker of its own (or KAFKA_BOOTSTRAP_SERVERS), topics with a fresh prefix, the
   catalog into `items`, one worker (devstack.WorkerProcess) with the settings of
   docs/quality/tuned-<dataset>.json (chosen on the validation split, tune.py) or the
   defaults (--defaults), always SREC_RECENT_ITEMS=10000 so every training item is
   excluded from its answers, and SREC_FEEDBACK_BATCH=500 (a bulk replay).
3. The training interactions in global time order into `feedback`; wait until the
   worker's consumer group has committed all of them and its popular-now counts equal an
   offline count of the same events.
4. One empty "for you" query (k=10) per user. Then the same users as "nouser:<id>" (no
   state: the worker's popular-now answer, the system with the user vector off); those
   queries carry the user's training items (the 1000 most popular; the query schema's
   limit) as exclude_ids, ask k=100, and drop any other training item here.
5. Known-item and attribute queries (queries.py) from fresh users.
6. The content-only ablation (no collaborative factors) with the in-process replica.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from streaming_rec.config import Settings, load_settings
from streaming_rec.core.popularity import Popularity
from streaming_rec.edge.admin import ensure_topics
from streaming_rec.edge.client import RecClient
from streaming_rec.topics import TopicCatalog
from streaming_rec_dev.datasets.movielens import Movie, load_movies, load_ratings
from streaming_rec_dev.devstack import WorkerProcess, free_port_pair, local_broker, worker_env
from streaming_rec_dev.evaluation import baselines, live, metrics, queries, report
from streaming_rec_dev.evaluation.live import Ask
from streaming_rec_dev.evaluation.split import Split, interactions, leave_last_out

log = logging.getLogger(__name__)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "quality"
EXCLUDE_LIMIT = 1000  # maxItems of filters.exclude_ids in topics/schemas/query.v1.json
PROTOCOL = (
    "per-user leave-last-out (sorted by timestamp, ties by file order); rating ≥4 → click, "
    "≤2 → dislike, 3 → skip; test cases: users whose held-out rating is ≥4 (main table) or "
    "any (second table); full catalog ranked, training items excluded"
)


def eval_settings(dataset: str, use_defaults: bool, extra: dict[str, str]) -> dict[str, str]:
    """The worker's model settings: tuned (validation) or defaults, plus --set overrides."""
    # every training item stays in the history (excluded from answers); a bulk replay
    # applies feedback in micro-batches (one state write per user per batch)
    chosen: dict[str, Any] = {"recent_items": 10_000, "feedback_batch": 500}
    tuned = DOCS / f"tuned-{dataset}.json"
    if not use_defaults and tuned.exists():
        chosen.update(orjson.loads(tuned.read_bytes()))
    chosen.update(extra)
    return {k: str(v) for k, v in sorted(chosen.items())}


@contextmanager
def _stack(bootstrap: str | None, workdir: Path) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
    else:
        with local_broker(workdir / "kafka") as own:
            yield own


def run(
    dataset: str,
    model_settings: dict[str, str],
    bootstrap: str | None = None,
    workdir: Path | None = None,
    n_known: int = 200,
    n_attribute: int = 50,
    max_in_flight: int = 64,
    progress: bool = True,
    command: str = "",
    offline_check: bool = False,
    sasrec_budget_s: float = 0.0,
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.monotonic()
    movies = load_movies(dataset)
    split = leave_last_out(interactions(load_ratings(dataset)))
    items = [m.item_id for m in movies]
    users = sorted(split.test)
    seen = split.seen()
    data = baselines.Interactions.build(split.train, items, users)
    counts = dict(zip(items, data.counts.tolist(), strict=True))
    t = time.monotonic()
    offline = {"most_popular": baselines.most_popular(data), "item_knn": baselines.item_knn(data)}
    timings["baselines_s"] = round(time.monotonic() - t, 1)

    own_workdir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix=f"srec-eval-{dataset}-"))
    with _dropping_data(workdir, own_workdir), _stack(bootstrap, workdir) as servers:
        tag = uuid.uuid4().hex[:8]
        settings = load_settings(
            bootstrap_servers=servers,
            topic_prefix=f"eval{tag}.",
            app_id=f"srec-eval-{tag}",
            data_dir=workdir / "worker",
            web_port=free_port_pair(),
        )
        known_q = queries.known_item_queries(movies, n_known)
        attr_q = queries.attribute_queries(movies, n_attribute)
        texts = [(q.qid, q.text) for q in known_q] + [(q.qid, q.text) for q in attr_q]
        text_asks = [Ask(tag=qid, user_id=f"query-user-{tag}-{qid}", text=t) for qid, t in texts]
        live_recs, checks, live_timings = _live(
            settings,
            model_settings,
            movies,
            split,
            seen,
            text_asks,
            workdir,
            max_in_flight,
            progress,
        )
        timings.update(live_timings)
        nl = live_recs.pop("nl")
    t = time.monotonic()
    offline["content_only"] = _content_only(model_settings, movies, split, users)
    timings["content_only_s"] = round(time.monotonic() - t, 1)
    before = decayed_settings(dataset)
    if before is not None:
        t = time.monotonic()
        offline["decayed_average"] = _replica(before, movies, split, users)
        timings["decayed_average_s"] = round(time.monotonic() - t, 1)
    sasrec_run: dict[str, Any] = {}
    if sasrec_budget_s > 0:  # the offline SASRec baseline (torch), bounded in time
        from streaming_rec_dev.evaluation import sasrec

        t = time.monotonic()
        config = sasrec.SasRecConfig(budget_s=sasrec_budget_s)
        offline["sasrec"], sasrec_run = sasrec.recommend(split, items, users, config)
        timings["sasrec_s"] = round(time.monotonic() - t, 1)
    recs = {**offline, **live_recs}
    pct = metrics.popularity_percentiles(counts, items)
    results = {}
    for name, test in (("positive_last", split.positive_test()), ("all_last", split.test)):
        held = {u: i.item_id for u, i in test.items()}
        results[name] = {k: metrics.summarize(r, held, pct, len(items)) for k, r in recs.items()}
    if offline_check:
        checks.update(_offline_check(model_settings, movies, split, users, recs["ours"], pct))
    by_id = {m.item_id: m for m in movies}
    timings["total_s"] = round(time.monotonic() - started, 1)
    return {
        "dataset": dataset,
        "command": command,
        "protocol": PROTOCOL,
        "worker_settings": model_settings,
        "catalog_items": len(items),
        "train_events": len(split.train),
        "test_users": {"positive_last": len(split.positive_test()), "all_last": len(users)},
        "results": results,
        "known_item": queries.score_known_item(known_q, nl),
        "attribute": queries.score_attribute(attr_q, nl, by_id),
        "checks": checks,
        "timings": timings,
        "sasrec": sasrec_run,
    }


@contextmanager
def _dropping_data(workdir: Path, own: bool) -> Iterator[None]:
    """On leaving, delete the broker's and the worker's data under a ``workdir`` this run
    made (300-500 MB a run; CI runs the ML-100K replay every time), keeping the logs."""
    try:
        yield
    finally:
        if own:
            for name in ("kafka", "worker"):
                shutil.rmtree(workdir / name, ignore_errors=True)


def _live(
    settings: Settings,
    model_settings: dict[str, str],
    movies: Sequence[Movie],
    split: Split,
    seen: dict[str, set[str]],
    text_asks: Sequence[Ask],
    workdir: Path,
    max_in_flight: int,
    progress: bool,
) -> tuple[dict[str, dict[str, list[str]]], dict[str, Any], dict[str, float]]:
    timings: dict[str, float] = {}
    ensure_topics(settings, TopicCatalog.load())
    env = {f"SREC_{k.upper()}": v for k, v in model_settings.items()}
    worker = WorkerProcess(
        worker_env(settings, "eval-worker", **env), workdir / "worker.log", settings.web_port
    )
    t = time.monotonic()
    live.publish_catalog(settings, movies)
    worker.start()
    try:
        worker.wait_ready(min_items=len(movies), timeout=900)
        timings["catalog_indexed_s"] = round(time.monotonic() - t, 1)
        timings["publish_s"] = round(live.publish_feedback(settings, split.train, progress), 1)
        t = time.monotonic()
        rate = live.wait_applied(settings, worker, timeout=4 * 3600, progress=progress)
        timings["apply_wait_s"] = round(time.monotonic() - t, 1)
        timings["apply_rate_ev_per_s"] = round(rate, 1)
        if as_worker_factor_dim(model_settings):
            t = time.monotonic()
            checks_trainer = _train(settings, env, worker, len(movies), len(split.train), workdir)
            timings["trainer_refresh_s"] = round(time.monotonic() - t, 1)
        with RecClient(settings) as client:
            as_worker = load_settings(**model_settings)
            checks: dict[str, Any] = {
                "popular_now_matches_offline_counts": _wait_popularity(client, split, as_worker)
            }
            if as_worker.factor_dim:
                checks.update(checks_trainer)
            t = time.monotonic()
            ours, mismatched = _ask_personal(client, split, max_in_flight, progress)
            timings["personal_queries_s"] = round(time.monotonic() - t, 1)
            checks["users_with_state_behind_after_retries"] = mismatched
            checks["training_items_returned_by_worker"] = sum(
                len(set(r) & seen.get(u, set())) for u, r in ours.items()
            )
            t = time.monotonic()
            no_user = _ask_no_user(client, split, seen, max_in_flight, progress)
            timings["no_user_queries_s"] = round(time.monotonic() - t, 1)
            checks["no_user_lists_short_of_10"] = sum(len(r) < 10 for r in no_user.values())
            t = time.monotonic()
            answers = live.ask_many(
                client, text_asks, max_in_flight, desc="text queries", progress=progress
            )
            nl = {tag: [i.item_id for i in r.items] for tag, r in answers.replies.items()}
            timings["nl_queries_s"] = round(time.monotonic() - t, 1)
        checks["worker_alive_at_end"] = worker.alive()
        checks["dead_letters"] = live.topic_size(settings, "dead-letters")
    finally:
        worker.stop(timeout=60)
    return {"ours": ours, "ours_no_user": no_user, "nl": nl}, checks, timings


def as_worker_factor_dim(model_settings: dict[str, str]) -> int:
    return load_settings(**model_settings).factor_dim


def _train(
    settings: Settings,
    env: dict[str, str],
    worker: WorkerProcess,
    catalog_size: int,
    train_events: int,
    workdir: Path,
) -> dict[str, Any]:
    """Run the trainer over the replayed feedback until its first refresh covers all of it,
    then wait until the worker has applied every item vector the trainer published."""
    port = free_port_pair()
    trainer = WorkerProcess(
        worker_env(settings, "eval-trainer", SREC_TRAINER_WEB_PORT=str(port), **env),
        workdir / "trainer.log",
        port,
        command="trainer",
    )
    before = (worker.health() or {}).get("index_version", 0)
    trainer.start()
    try:
        deadline = time.monotonic() + 1800
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            health = trainer.health() or {}
            if (
                health.get("refreshes", 0) >= 1
                and health.get("refreshed_at_events", 0) >= train_events
            ):
                break
            if not trainer.alive():
                raise RuntimeError(f"trainer exited:\n{trainer.log_tail()}")
            time.sleep(1)
        else:
            raise RuntimeError(f"trainer did not refresh over {train_events} events: {health}")
        published = int(health["published"])
        sequence = health.get("sequence_model")  # the worker swaps it in with its factors
        while time.monotonic() < deadline:
            worker_health = worker.health() or {}
            if worker_health.get("index_version", 0) >= before + published and (
                sequence is None or worker_health.get("user_model") == sequence
            ):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the worker did not take the trainer's refresh: {health}")
        return {
            "trainer_events": health["refreshed_at_events"],
            "trainer_items_learned": health["learned"],
            "trainer_vectors_published": published,
            "trainer_fit_and_publish_s": round(float(health["last_refresh_s"]), 1),
            "trainer_sequence_fit_s": round(float(health.get("last_sequence_fit_s", 0.0)), 1),
            "sequence_model_in_use": sequence,
        }
    finally:
        trainer.stop(timeout=60)


def decayed_settings(dataset: str) -> dict[str, str] | None:
    """The model before the sequence model — the decayed average of the item vectors —
    with its own settings tuned on validation (docs/quality/tuned-<dataset>-decayed.json),
    or None when that file is missing."""
    path = DOCS / f"tuned-{dataset}-decayed.json"
    if not path.exists():
        return None
    chosen = {"recent_items": 10_000, **orjson.loads(path.read_bytes()), "sequence_model": False}
    return {k: str(v) for k, v in sorted(chosen.items())}


def _replica(
    model_settings: dict[str, str], movies: Sequence[Movie], split: Split, users: list[str]
) -> dict[str, list[str]]:
    """The in-process replica of a worker (offline.py) under ``model_settings``, trained
    as the trainer does on ``split.train``: one empty query per user."""
    from streaming_rec_dev.evaluation.offline import recommend_offline

    settings = load_settings(**model_settings)
    return recommend_offline(settings, _catalog(settings, movies), split.train, users)


_CATALOGS: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def _catalog(settings: Settings, movies: Sequence[Movie]) -> Any:
    """The catalog embedded once per encoder (the replicas of one run share it)."""
    from streaming_rec_dev.evaluation.offline import CatalogVectors

    key = (settings.model, settings.encoder, tuple(m.item_id for m in movies))
    if key not in _CATALOGS:
        _CATALOGS.clear()
        _CATALOGS[key] = CatalogVectors(settings, movies)
    return _CATALOGS[key]


def _content_only(
    model_settings: dict[str, str], movies: Sequence[Movie], split: Split, users: list[str]
) -> dict[str, list[str]]:
    """The ablation without collaborative factors (SREC_FACTOR_DIM=0): the text embeddings
    and the same user update rule, answered by the in-process replica of the worker
    (offline.py; on the test split it agrees with the live worker, see --offline-check)."""
    from streaming_rec_dev.evaluation.offline import recommend_offline

    content = load_settings(**{**model_settings, "factor_dim": "0"})
    return recommend_offline(content, _catalog(content, movies), split.train, users)


def _offline_check(
    model_settings: dict[str, str],
    movies: Sequence[Movie],
    split: Split,
    users: list[str],
    ours: dict[str, list[str]],
    pct: dict[str, float],
) -> dict[str, Any]:
    """The in-process replica used for tuning (offline.py), run on the test split: how
    often its top-10 equals the live worker's, and its NDCG@10 (positive cases)."""
    from streaming_rec_dev.evaluation.offline import recommend_offline

    as_worker = load_settings(**model_settings)
    recs = recommend_offline(as_worker, _catalog(as_worker, movies), split.train, users)
    held = {u: i.item_id for u, i in split.positive_test().items()}
    same = sum(recs.get(u) == ours.get(u) for u in users) / max(len(users), 1)
    ndcg = metrics.summarize(recs, held, pct, len(movies))["ndcg@10"]
    return {"offline_replica_same_top10_share": round(same, 4), "offline_replica_ndcg@10": ndcg}


def _expected_popular(split: Split, settings: Settings, k: int) -> list[float]:
    popularity = Popularity(settings.popularity_half_life_seconds)
    weights = settings.event_weights
    for row in split.train:
        popularity.observe(row.item_id, weights[row.event], row.ts)
    return [round(p, 6) for _, p in popularity.top(k, lambda _: True)]


def _wait_popularity(
    client: RecClient, split: Split, as_worker: Settings, timeout: float = 120.0
) -> bool:
    """Poll until the worker's popular-now top-10 priors equal an offline count of the same
    events (the popularity replica reads `feedback` apart from the consumer group)."""
    expected = _expected_popular(split, as_worker, 10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = client.ask(f"nouser:probe-{uuid.uuid4().hex[:6]}", k=10, timeout=30)
        if [round(i.score, 6) for i in reply.items] == expected:
            return True
        time.sleep(1.0)
    log.warning("popular-now never matched the offline counts")
    return False


def _ask_personal(
    client: RecClient, split: Split, max_in_flight: int, progress: bool, rounds: int = 5
) -> tuple[dict[str, list[str]], int]:
    """One empty query per user; re-ask users whose reply shows fewer applied events."""
    expected = Counter(row.user_id for row in split.train)
    pending = sorted(split.test)
    out: dict[str, list[str]] = {}
    for attempt in range(rounds):
        asks = [Ask(tag=u, user_id=u) for u in pending]
        result = live.ask_many(
            client, asks, max_in_flight, desc="for-you queries", progress=progress
        )
        pending = list(result.failed)
        for user, reply in result.replies.items():
            out[user] = [i.item_id for i in reply.items]
            if reply.user_events != expected[user]:
                pending.append(user)
        if not pending:
            break
        log.warning("%d users not answered with full state (attempt %d)", len(pending), attempt)
        time.sleep(2.0)
    return out, len(pending)


def _ask_no_user(
    client: RecClient,
    split: Split,
    seen: dict[str, set[str]],
    max_in_flight: int,
    progress: bool,
) -> dict[str, list[str]]:
    rank = Counter(row.item_id for row in split.train)
    asks = []
    for user in sorted(split.test):
        mine = sorted(seen.get(user, ()), key=lambda i: (-rank[i], i))[:EXCLUDE_LIMIT]
        asks.append(Ask(tag=user, user_id=f"nouser:{user}", k=100, exclude_ids=tuple(mine)))
    result = live.ask_many(client, asks, max_in_flight, desc="no-user queries", progress=progress)
    return {
        user: [i.item_id for i in reply.items if i.item_id not in seen.get(user, set())][:10]
        for user, reply in result.replies.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Streaming replay quality harness")
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-1m", "ml-100k"])
    parser.add_argument("--defaults", action="store_true", help="default model settings")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--offline-check", action="store_true", help="also run the tuning replica on test"
    )
    parser.add_argument(
        "--sasrec-budget-s",
        type=float,
        default=0.0,
        help="seconds of SASRec training for a baseline row in this run (0: none; on 2 CPU "
        "cores it does not converge within make eval's budget: run "
        "streaming_rec_dev.evaluation.sasrec on its own)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    extra = dict(item.split("=", 1) for item in args.set)
    model_settings = eval_settings(args.dataset, args.defaults, extra)
    command = "python -m streaming_rec_dev.evaluation.replay " + shlex.join(sys.argv[1:])
    result = run(
        args.dataset,
        model_settings,
        max_in_flight=args.max_in_flight,
        progress=not args.no_progress,
        command=command,
        offline_check=args.offline_check,
        sasrec_budget_s=args.sasrec_budget_s,
    )
    for path in report.write(result, args.out):
        print(path)
    print(report.markdown(result))


if __name__ == "__main__":
    main()
