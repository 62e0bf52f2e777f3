"""Part 4, freshness through Kafka and one worker.

click → effect: a fresh user clicks, then at once asks for "for you" (empty text); does the
first answer reflect the click (user_events, user_feedback_ts)? Re-ask until it does. The
client's first clicks are sent untimed (WARM_UP_CLICKS); the slowest trials are split into
where their time went.
item → searchable: a new item with a unique nonsense title; poll a query that matches only
it until it is the top answer; then delete it and poll until it is gone.
"""

from __future__ import annotations

import random
import re
import sys
import time
import uuid
from typing import Any

from common import SEED, Context, log, pct, settings_record, write_json
from tqdm import tqdm

SYLLABLES = ("zor", "blax", "quin", "vey", "trul", "mox", "fen", "drak", "pli", "ova", "susk")


def nonsense(rng: random.Random) -> str:
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize() for _ in range(3))


def ask(client: Any, user: str, text: str, k: int) -> Any:
    """client.ask, or None when no answer came within 10 s (counted, not fatal)."""
    from streaming_rec.errors import RequestTimeout

    try:
        return client.ask(user, text, k=k, timeout=10)
    except RequestTimeout:
        return None


WARM_UP_CLICKS = 3
"""Clicks sent (and answered) before the timed ones: a new client's first record to the
feedback topic waits for its metadata and connection (85-105 ms here), once per client
process, not per click; they are reported apart as warm_up_ms."""


def click_to_effect(ctx: Context, n: int) -> dict[str, Any]:
    client = ctx.client()
    rng = random.Random(SEED)
    movies = ctx.movies()
    first_reflected, delays, asks_needed, timeouts, lost = 0, [], [], 0, 0
    trials: list[dict[str, float]] = []  # where each reflected trial's time went
    warm_up: list[float] = []
    for trial in tqdm(range(-WARM_UP_CLICKS, n), desc="click → effect", file=sys.stderr):
        user = f"fresh-{uuid.uuid4().hex[:10]}"
        t0 = time.perf_counter()
        client.feedback(user, rng.choice(movies).item_id, "click", ts=time.time())
        client.flush()
        flushed = time.perf_counter()
        asks, reply = 0, None
        while time.perf_counter() < t0 + 10.0:
            asks += 1
            reply = ask(client, user, "", 10)
            lost += reply is None and trial >= 0
            if reply is not None and reply.user_events >= 1 and reply.user_feedback_ts is not None:
                break
            reply = None
        delay_ms = (time.perf_counter() - t0) * 1000.0
        if trial < 0:
            warm_up.append(round(delay_ms, 2))
        elif reply is None:
            timeouts += 1
        else:
            delays.append(delay_ms)
            trials.append(_split(trial, delay_ms, (flushed - t0) * 1000.0, reply))
            first_reflected += asks == 1
            asks_needed.append(asks)
        time.sleep(0.1)
    return {
        "users": n,
        "warm_up_ms": warm_up,
        "reflected_on_first_answer_share": round(first_reflected / n, 3),
        "click_to_reflected_answer_ms": pct(delays, 50, 95, 99),
        "asks_needed": pct(asks_needed, 50, 99),
        "never_reflected_within_10s": timeouts,
        "asks_unanswered_within_10s": lost,
        "slowest_trials_ms": sorted(trials, key=lambda t: -t["delay"])[: max(3, n // 20)],
        "how": "after WARM_UP_CLICKS untimed clicks of the same client (warm_up_ms): "
        "feedback(click) + flush, then ask(user, '') at once; delay = click publish → "
        "client receives the first answer with user_events ≥ 1 (resolution: one round trip); "
        "slowest_trials_ms splits the slowest 5 % (at least 3): the click's publish and flush, "
        "the ask's way in (client send → the worker has its batch: Kafka and the batch wait), "
        "the worker's handling (total − in), and the rest (reply out and the client)",
    }


def _split(trial: int, delay_ms: float, flush_ms: float, reply: Any) -> dict[str, float]:
    """One trial's delay (ms) in parts: click publish + flush, the ask's Kafka in + batch
    wait (reply.timings.queue_ms), the worker's handling, and what is left (out + client)."""
    t = reply.timings
    rest = delay_ms - flush_ms - t.total_ms
    return {
        "trial": trial,
        "delay": round(delay_ms, 2),
        "click_flush": round(flush_ms, 2),
        "ask_in": round(t.queue_ms, 2),
        "worker": round(t.total_ms - t.queue_ms, 2),
        "out_and_client": round(rest, 2),
    }


def item_to_searchable(ctx: Context, trials: int) -> dict[str, Any]:
    client = ctx.client()
    rng = random.Random(SEED + 7)
    found_ms, gone_ms, polls, misses, lost = [], [], [], 0, 0
    for _ in tqdm(range(trials), desc="item → searchable", file=sys.stderr):
        item_id = f"bench-new-{uuid.uuid4().hex[:8]}"
        title = nonsense(rng)
        t0 = time.perf_counter()
        client.upsert_item({"item_id": item_id, "title": title})
        client.flush()
        n, hit = 0, False
        while time.perf_counter() - t0 < 10.0:
            n += 1
            reply = ask(client, "bench-fresh", title, 5)
            lost += reply is None
            if reply is not None and reply.items and reply.items[0].item_id == item_id:
                hit = True
                break
        if hit:
            found_ms.append((time.perf_counter() - t0) * 1000.0)
            polls.append(n)
        else:
            misses += 1
        t1 = time.perf_counter()
        client.delete_item(item_id)
        client.flush()
        while time.perf_counter() - t1 < 10.0:
            reply = ask(client, "bench-fresh", title, 100)
            lost += reply is None
            if reply is not None and item_id not in {i.item_id for i in reply.items}:
                gone_ms.append((time.perf_counter() - t1) * 1000.0)
                break
        time.sleep(0.1)
    return {
        "trials": trials,
        "publish_to_top_answer_ms": pct(found_ms, 50, 95, 99),
        "polls_needed": pct(polls, 50, 99),
        "not_found_within_10s": misses,
        "asks_unanswered_within_10s": lost,
        "delete_to_gone_ms": pct(gone_ms, 50, 99),
        "how": "upsert_item(unique nonsense title) + flush, then ask(title) back to back until "
        "the item is the top answer (resolution: one round trip); then delete_item and ask "
        "until it is absent from the top 100",
    }


def run(ctx: Context) -> dict[str, Any]:
    n, trials = (10, 5) if ctx.quick else (60, 25)
    ctx.client()  # the stack up: the worker's start-up collections are not counted below
    gc_before = len(slow_gc_pauses(ctx))
    log(f"freshness: click → effect for {n} fresh users")
    clicks = click_to_effect(ctx, n)
    log(f"click → effect p99 {clicks['click_to_reflected_answer_ms']['p99']} ms")
    log(f"freshness: item → searchable, {trials} trials")
    items = item_to_searchable(ctx, trials)
    log(f"item → searchable p99 {items['publish_to_top_answer_ms']['p99']} ms")
    results = {
        "click_to_effect": clicks,
        "item_to_searchable": items,
        "worker_slow_gc_pauses_ms": slow_gc_pauses(ctx)[gc_before:],
    }
    settings = settings_record(ctx.settings())
    settings.update({"users": n, "item_trials": trials})
    write_json("freshness", results, settings)
    return results


def slow_gc_pauses(ctx: Context) -> list[float]:
    """The garbage collections of ≥ 50 ms the worker has logged so far (edge/gcwatch.py),
    in ms, oldest first."""
    if ctx.worker is None:
        return []
    text = ctx.worker.log_path.read_text(errors="replace")
    return [float(ms) for ms in re.findall(r"collection paused the process for (\d+) ms", text)]
