"""Query-time cost of the sequence model (core/sequence.py), in process, no Kafka.

    .venv/bin/python bench/sequence.py [--out docs/bench/sequence.json]

An ML-1M-sized worker: 3,883 items of [v_c (384) ; v_f (d)] in the HNSW index, the model
with K lags (F = (K + 3)·d + 1 rows), users with 200 events (the default
SREC_RECENT_ITEMS) and with 2,000; two configurations: the defaults (d = 64, K = 8) and
the ML-1M tuning (d = 384, K = 4). Measured for "for you" requests (no text: the
encoder is not part of it), batch 1 and batch 32, p50/p99 per query:

- ``sequence_u_f``: what the model adds — the history's factors looked up in the index,
  z built, one (B, F)·(F, d) product (Recommender._sequence_tastes);
- ``answer_with`` / ``answer_without``: the whole Recommender.recommend per query with the
  model in use and without it (the decayed average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from streaming_rec.core.catalog import ItemMeta
from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.popularity import Popularity
from streaming_rec.core.ranker import RankingWeights
from streaming_rec.core.requests import Request
from streaming_rec.core.sequence import SequenceModel, feature_count
from streaming_rec.core.service import Recommender
from streaming_rec.core.user_state import UpdateRule, UserState

CONTENT, ITEMS = 384, 3883
CONFIGS = {"defaults": (64, 8), "ml-1m": (384, 4)}  # (factor_dim, lags)


class NoText:
    """An encoder that is never called: every request here is a "for you" request."""

    name = "none"
    dim = CONTENT

    def encode(self, texts: Any) -> np.ndarray:
        raise AssertionError("no text in this benchmark")


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def build(
    rng: np.random.Generator, factor_dim: int, lags: int
) -> tuple[Recommender, SequenceModel]:
    index = HnswIndex(CONTENT + factor_dim, max_elements=ITEMS, threads=1)
    rec = Recommender(
        NoText(),
        index,
        RankingWeights(candidates=200),
        UpdateRule({"click": 1.0, "skip": 1.0, "dislike": 0.6}, max_recent=10_000),
        Popularity(30 * 86400.0),
        factor_dim,
    )
    content = _unit(rng.standard_normal((ITEMS, CONTENT)))
    factors = _unit(rng.standard_normal((ITEMS, factor_dim)))
    rec.apply_items(
        [(ItemMeta(f"i{j}", f"item {j}"), content[j], factors[j]) for j in range(ITEMS)]
    )
    weights = rng.standard_normal((feature_count(factor_dim, lags), factor_dim))
    return rec, SequenceModel("bench", lags, 5.0, (weights * 0.01).astype(np.float32))


def user(rng: np.random.Generator, name: str, events: int) -> UserState:
    rule = UpdateRule({"click": 1.0, "dislike": -1.0}, max_recent=10_000)
    state = UserState(name)
    for t, j in enumerate(rng.choice(ITEMS, size=events, replace=False)):
        state = rule.apply(state, f"i{j}", "dislike" if t % 7 == 0 else "click", float(t))
    return state


def _stats(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "n": len(ms),
    }


def measure(rec: Recommender, users: list[UserState], batch: int, rounds: int) -> dict[str, Any]:
    """Per-query milliseconds (batch wall time ÷ batch) of u_f alone and of the answer."""
    out: dict[str, list[float]] = {"sequence_u_f": [], "answer_with": [], "answer_without": []}
    model = rec.sequence
    for r in range(rounds):
        picked = [users[(r * batch + i) % len(users)] for i in range(batch)]
        requests = [Request(f"q{r}-{i}", u.user_id, user=u) for i, u in enumerate(picked)]
        t0 = time.perf_counter()
        rec._sequence_tastes(picked)
        t1 = time.perf_counter()
        rec.recommend(requests)
        t2 = time.perf_counter()
        rec.use_sequence_model(None)
        rec.recommend(requests)
        t3 = time.perf_counter()
        rec.use_sequence_model(model)
        out["sequence_u_f"].append((t1 - t0) * 1000 / batch)
        out["answer_with"].append((t2 - t1) * 1000 / batch)
        out["answer_without"].append((t3 - t2) * 1000 / batch)
    return {name: _stats(values[5:]) for name, values in out.items()}  # 5 warm-up rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/bench/sequence.json"))
    parser.add_argument("--rounds", type=int, default=205)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {"items": ITEMS, "content_dim": CONTENT},
        "results": {},
    }
    for name, (factor_dim, lags) in CONFIGS.items():
        rec, model = build(rng, factor_dim, lags)
        rec.use_sequence_model(model)
        block: dict[str, Any] = {"factor_dim": factor_dim, "lags": lags, "bytes": model.nbytes}
        for events in (200, 2000):
            users = [user(rng, f"u{events}-{n}", events) for n in range(64)]
            for batch in (1, 32):
                rounds = args.rounds if batch == 1 else max(25, args.rounds // 8)
                key = f"history_{events}_batch_{batch}"
                block[key] = measure(rec, users, batch, rounds)
                print(name, key, json.dumps(block[key]))
        result["results"][name] = block
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
