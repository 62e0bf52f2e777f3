"""Throughput with 1 and 2 worker processes in one consumer group, on this machine.

    .venv/bin/python bench/workers.py                           # backlog 3000, 20 q/s × 15 s
    .venv/bin/python bench/workers.py --quick --out /tmp/workers-smoke

One broker (or KAFKA_BOOTSTRAP_SERVERS), topics with a unique prefix and the ML-1M
catalog, started once. For each n in --counts: n workers in one group (same app id,
their own web ports and data folders), ready and the group stable (every worker answers
probes), an unrecorded warm-up backlog (a third of the backlog), then (1) saturation: a
backlog of --backlog queries from many users sent as fast as the client can, timed from
the first send to the last answer, with each worker's CPU seconds and the machine's busy
cores; (2) an open-loop Poisson step at --rate q/s for --seconds (latency p50/p99). Then
the workers stop and the next n starts. Writes <out>/workers.json with a row per n and
throughput(2) / throughput(1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    OPTIONS,
    RUN_ID,
    log,
    queries,
    set_out_dir,
    settings_record,
    stage_medians,
    write_json,
)
from e2e import Listener, cpu_seconds, machine_busy_seconds, mean_batch, step

BACKLOG_USERS = 800  # spread over every partition


def start_workers(
    settings: Any, n: int, tmp: Path, min_items: int, extra: dict[str, str]
) -> list[Any]:
    """n workers in the group of ``settings`` (ports and data folders of their own)."""
    from streaming_rec_dev.devstack import WorkerProcess, free_port_pair, worker_env

    workers = []
    for i in range(n):
        port = free_port_pair()
        data = tmp / f"n{n}-w{i}"
        env = worker_env(
            settings,
            f"bench-n{n}-w{i}",
            SREC_WEB_PORT=str(port),
            SREC_DATA_DIR=str(data),
            **extra,
        )
        workers.append(WorkerProcess(env, tmp / f"n{n}-w{i}.log", port))
    for worker in workers:
        worker.start()
    started = time.monotonic()
    for worker in workers:
        worker.wait_ready(min_items=min_items, timeout=900)
    log(f"{n} worker(s) ready in {time.monotonic() - started:.1f} s")
    return workers


def wait_stable(listener: Listener, n: int, timeout: float = 240.0) -> dict[str, Any]:
    """Until a round of probes from 32 users is all answered within 3 s, by n workers."""
    client = listener.client
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < timeout:
        rounds += 1
        rids = []
        for j in range(32):
            rid = f"stable-{uuid.uuid4().hex[:10]}"
            client.send_query(f"stable-{j}", "a warm-up query", k=10, request_id=rid)
            rids.append(rid)
        client.flush()
        deadline = time.monotonic() + 10.0
        sent_at = time.perf_counter()
        while time.monotonic() < deadline and not all(r in listener.arrived for r in rids):
            time.sleep(0.05)
        got = [listener.arrived.pop(r) for r in rids if r in listener.arrived]
        names = {reply.worker for _, reply in got}
        slowest = max(((t - sent_at) for t, _ in got), default=99.0)
        if len(got) == len(rids) and len(names) == n and slowest < 3.0:
            return {
                "rounds": rounds,
                "seconds": round(time.monotonic() - started, 1),
                "workers_seen": sorted(names),
            }
        log(f"group not stable yet: {len(got)}/{len(rids)} answered by {len(names)} worker(s)")
        time.sleep(2.0)
    raise RuntimeError(f"the group of {n} worker(s) did not settle in {timeout:g} s")


def saturate(listener: Listener, workers: list[Any], backlog: int, tag: str) -> dict[str, Any]:
    """Send ``backlog`` queries at once; time first send → last answer."""
    client = listener.client
    texts = queries(backlog)
    pids = [w.process.pid for w in workers]
    cpu0 = [cpu_seconds(p) for p in pids]
    busy0, proc0, wall0 = machine_busy_seconds(), time.process_time(), time.monotonic()
    first = time.perf_counter()
    rids = []
    for i in range(backlog):
        rid = f"{tag}-{i}"
        client.send_query(f"backlog-{i % BACKLOG_USERS}", texts[i], k=10, request_id=rid)
        rids.append(rid)
    client.flush()
    sent_s = time.perf_counter() - first
    last_count, last_change, deadline = -1, time.monotonic(), time.monotonic() + 600
    while time.monotonic() < deadline:
        count = sum(1 for r in rids if r in listener.arrived)
        if count == backlog:
            break
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > 15.0:
            break
        time.sleep(0.2)
    wall = time.monotonic() - wall0
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    busy, client_cpu = machine_busy_seconds() - busy0, time.process_time() - proc0
    got = [listener.arrived.pop(r) for r in rids if r in listener.arrived]
    last = max((t for t, _ in got), default=first)
    span = max(last - first, 1e-9)
    replies = [reply for _, reply in got]
    per_worker: dict[str, int] = {}
    for reply in replies:
        per_worker[reply.worker] = per_worker.get(reply.worker, 0) + 1
    return {
        "backlog": backlog,
        "answered": len(got),
        "send_seconds": round(sent_s, 2),
        "first_send_to_last_answer_s": round(span, 2),
        "throughput_qps": round(len(got) / span, 1),
        "answers_per_worker": per_worker,
        "worker_cpu_s": [round(c, 2) for c in cpu],
        "worker_cores_busy": [round(c / wall, 2) for c in cpu],
        "bench_client_cores_busy": round(client_cpu / wall, 2),
        "machine_cores_busy": round(busy / wall, 2),
        "others_cores_busy (broker, other users)": round((busy - sum(cpu) - client_cpu) / wall, 2),
        "worker_cpu_ms_per_answer": round(1000 * sum(cpu) / max(len(got), 1), 2),
        "mean_batch": mean_batch(replies),
        "stage_median_ms": stage_medians([r.timings for r in replies]),
        "status_counts": dict(Counter(r.status for r in replies)),
    }


def open_loop(
    listener: Listener, workers: list[Any], rate: float, seconds: float
) -> dict[str, Any]:
    """e2e.step at ``rate`` q/s, with every worker's CPU (step itself times one pid)."""
    pids = [w.process.pid for w in workers]
    cpu0, wall0 = [cpu_seconds(p) for p in pids], time.monotonic()
    row = step(listener, pids[0], rate, seconds, f"W{len(pids)}-{uuid.uuid4().hex[:6]}")
    wall = time.monotonic() - wall0
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    cores = [round(c / wall, 2) for c in cpu]
    row["worker_cpu_ms_per_answer"] = round(1000 * sum(cpu) / max(row["answered"], 1), 2)
    busy = row["cpu_cores_busy"]
    row["cpu_cores_busy"] = {
        "workers": cores,
        "bench_client": busy["bench_client"],
        "machine": busy["machine"],
        "others (broker, other users)": round(
            busy["machine"] - sum(cores) - busy["bench_client"], 2
        ),
    }
    return row


def run(args: argparse.Namespace) -> int:
    from streaming_rec.config import load_settings
    from streaming_rec.edge.admin import ensure_topics
    from streaming_rec.edge.client import RecClient
    from streaming_rec.topics import TopicCatalog
    from streaming_rec_dev.devstack import free_port_pair, local_broker

    counts = [int(c) for c in args.counts.split(",") if c]
    backlog = args.backlog or (300 if args.quick else 3000)
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    extra = {f"SREC_{k.upper()}": v for k, v in (s.split("=", 1) for s in args.set)}
    if args.torch_threads:
        extra.update({k: str(args.torch_threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    tmp = Path(tempfile.mkdtemp(prefix="srec-bench-workers-"))
    rows: list[dict[str, Any]] = []
    settings: Any = None
    stack = ExitStack()
    stack.callback(shutil.rmtree, tmp, True)
    with stack:
        log("starting the broker (or using KAFKA_BOOTSTRAP_SERVERS)")
        bootstrap = stack.enter_context(local_broker(tmp / "kafka"))
        tag = RUN_ID.rsplit("-", 1)[1]
        settings = load_settings(
            bootstrap_servers=bootstrap,
            topic_prefix=f"benchw{tag}.",
            app_id=f"srec-bench-workers-{tag}",  # one group for every n: offsets carry over
            data_dir=tmp / "unused",
            web_port=free_port_pair(),
        )
        ensure_topics(settings, TopicCatalog.load())
        from streaming_rec_dev.datasets.movielens import load_movies

        movies = load_movies("ml-1m")
        with RecClient(settings, listen=False, bulk=True) as loader:
            for movie in movies:
                loader.upsert_item(movie.as_item())
            loader.flush(timeout=120)
        log(f"published {len(movies)} movies")
        for n in counts:
            log(f"=== {n} worker(s) ===")
            workers = start_workers(settings, n, tmp, len(movies), extra)
            listener: Listener | None = None
            try:
                listener = Listener(settings)
                stable = wait_stable(listener, n)
                time.sleep(args.settle)
                # warm every worker's encoder at large batches (round 1's worker embedded
                # the catalog, later rounds' workers only read item-vectors): not recorded
                warm = saturate(listener, workers, max(100, backlog // 3), f"U{n}-{tag}")
                log(f"{n} worker(s): warm-up backlog at {warm['throughput_qps']} answers/s")
                log(f"{n} worker(s): backlog of {backlog} queries")
                sat = saturate(listener, workers, backlog, f"B{n}-{uuid.uuid4().hex[:6]}")
                log(
                    f"{n} worker(s): {sat['throughput_qps']} answers/s, machine busy"
                    f" {sat['machine_cores_busy']} cores, workers {sat['worker_cores_busy']}"
                )
                log(f"{n} worker(s): open loop {args.rate:g} q/s for {seconds:g} s")
                ol = open_loop(listener, workers, args.rate, seconds)
                log(f"{n} worker(s): p50/p99 {ol['latency_ms']['p50']}/{ol['latency_ms']['p99']}")
                rows.append(
                    {
                        "workers": n,
                        "stable": stable,
                        "warm_up_qps": warm["throughput_qps"],
                        "saturation": sat,
                        "open_loop": ol,
                    }
                )
            except BaseException:
                for w in workers:
                    log(f"{w.log_path.name} tail:\n{w.log_tail(30)}")
                raise
            finally:
                if listener is not None:
                    listener.close()
                for w in workers:
                    try:
                        w.stop(timeout=30)
                    except RuntimeError as exc:
                        log(str(exc))
    by_n = {r["workers"]: r["saturation"]["throughput_qps"] for r in rows}
    ratio = round(by_n[2] / by_n[1], 3) if 1 in by_n and 2 in by_n and by_n[1] else None
    results = {
        "rows": rows,
        "throughput_qps_by_workers": by_n,
        "ratio_2_over_1": ratio,
        "worker_cpu_ms_per_answer_by_workers": {
            r["workers"]: r["saturation"]["worker_cpu_ms_per_answer"] for r in rows
        },
        "machine_cores_busy_by_workers": {
            r["workers"]: r["saturation"]["machine_cores_busy"] for r in rows
        },
        "cores": os.cpu_count(),
        "bound_hint": (
            "machine_cores_busy near the core count means the cores bound it: the workers "
            "(each with its own model and torch threads), the broker and the client share "
            "them; worker CPU ms per answer rising with n means the workers slow each "
            "other (torch threads oversubscribed: try --torch-threads 1)"
        ),
    }
    # the workers' settings: the bench's with every --set applied (their environment drops
    # other SREC_* variables)
    overrides = dict(s.split("=", 1) for s in args.set)
    doc = settings_record(load_settings(**{**settings.model_dump(), **overrides}))
    doc.update(
        {
            "counts": counts,
            "backlog": backlog,
            "backlog_users": BACKLOG_USERS,
            "open_loop_rate_qps": args.rate,
            "open_loop_seconds": seconds,
            "settle_s": args.settle,
            "worker_env_extra": extra,
            "group": "one app_id for every n (committed offsets carry over between rounds)",
        }
    )
    write_json("workers", results, doc)
    print(f"{'workers':>7} {'answers/s':>10} {'machine cores':>13} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        s, o = r["saturation"], r["open_loop"]["latency_ms"]
        print(
            f"{r['workers']:>7} {s['throughput_qps']:>10} {s['machine_cores_busy']:>13}"
            f" {o['p50']!s:>8} {o['p99']!s:>8}"
        )
    print(f"throughput(2) / throughput(1) = {ratio}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,2", help="worker counts, e.g. 1,2")
    parser.add_argument("--backlog", type=int, default=0, help="queries (default 3000; quick 300)")
    parser.add_argument("--rate", type=float, default=20.0, help="open-loop step rate (q/s)")
    parser.add_argument("--seconds", type=float, default=0.0, help="open-loop step (default 15)")
    parser.add_argument("--settle", type=float, default=3.0, help="wait after a stable group (s)")
    parser.add_argument("--quick", action="store_true", help="backlog 300, 5 s step")
    parser.add_argument("--torch-threads", type=int, default=None, help="OMP/MKL threads/worker")
    parser.add_argument("--out", default="", help="output folder (default docs/bench)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a worker setting"
    )
    args = parser.parse_args(argv)
    if args.out:
        set_out_dir(Path(args.out))
    OPTIONS.update(vars(args))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
