"""An offline SASRec baseline, trained by the harness on the same split as everything else.

SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018): item
embeddings + learned positions → causal self-attention blocks (pre-LayerNorm, ReLU
feed-forward) → the last position's state · item embeddings (tied). Trained with the full
cross-entropy over the catalog on every position, which converges far faster than the
paper's BCE with one negative and scores higher (Klenitskiy & Vasilev, "Turning Dross Into
Gold Loss: is BERT4Rec really better than SASRec?", RecSys 2023); the architecture is the
paper's ML-1M configuration (2 blocks, 1 head, dropout 0.2, max length 200, Adam 1e-3,
batch 128) with hidden size ``dim`` (the paper: 50).

The usual protocol of the SASRec paper on leave-last-out: train on each user's history but
its last two interactions, pick the epoch by NDCG@10 on the second-to-last (validation),
then rank for the held-out last one from the whole training history. Epochs are bounded by
``max_epochs`` and by ``budget_s`` seconds of training — on a 2-core CPU it does not reach
convergence at ML-1M scale, and the report says how many epochs it ran. Needs torch (the
[torch] extra).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streaming_rec_dev.evaluation import metrics
from streaming_rec_dev.evaluation.split import Interaction, Split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SasRecConfig:
    dim: int = 64
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.2
    max_len: int = 200
    lr: float = 1e-3
    batch: int = 128
    max_epochs: int = 200
    budget_s: float = 600.0
    eval_every: int = 5
    patience: int = 3  # evaluations without a better validation NDCG before stopping
    seed: int = 0
    threads: int = 0  # torch threads (0: torch's default)


def _model(n_items: int, cfg: SasRecConfig) -> Any:
    import torch

    class SasRec(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item = torch.nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
            self.pos = torch.nn.Embedding(cfg.max_len, cfg.dim)
            self.drop = torch.nn.Dropout(cfg.dropout)
            self.blocks = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(
                    cfg.dim, cfg.heads, cfg.dim, cfg.dropout, batch_first=True, norm_first=True
                )
                for _ in range(cfg.blocks)
            )
            self.norm = torch.nn.LayerNorm(cfg.dim)
            torch.nn.init.normal_(self.item.weight, std=cfg.dim**-0.5)
            torch.nn.init.normal_(self.pos.weight, std=cfg.dim**-0.5)
            with torch.no_grad():
                self.item.weight[0].zero_()

        def forward(self, x: Any) -> Any:
            length = x.shape[1]
            h = self.item(x) * math.sqrt(cfg.dim) + self.pos.weight[None, :length]
            h = self.drop(h) * (x > 0).unsqueeze(-1)
            mask = torch.nn.Transformer.generate_square_subsequent_mask(length)
            for block in self.blocks:
                h = block(h, src_mask=mask, is_causal=True)
            return self.norm(h)

    return SasRec()


def _windows(seqs: Sequence[Sequence[int]], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets, the last ``max_len`` steps, left-padded with 0."""
    x = np.zeros((len(seqs), max_len), dtype=np.int64)
    y = np.zeros((len(seqs), max_len), dtype=np.int64)
    for row, seq in enumerate(seqs):
        inp, tgt = list(seq[:-1])[-max_len:], list(seq[1:])[-max_len:]
        if inp:
            x[row, max_len - len(inp) :] = inp
            y[row, max_len - len(tgt) :] = tgt
    return x, y


def _last(seqs: Sequence[Sequence[int]], max_len: int) -> np.ndarray:
    x = np.zeros((len(seqs), max_len), dtype=np.int64)
    for row, seq in enumerate(seqs):
        tail = list(seq)[-max_len:]
        if tail:
            x[row, max_len - len(tail) :] = tail
    return x


def _rank(model: Any, seqs: Sequence[Sequence[int]], cfg: SasRecConfig, k: int = 10) -> np.ndarray:
    """Top-k item indices (1-based) per sequence, the sequence's own items excluded."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(seqs), 256):
            chunk = seqs[start : start + 256]
            h = model(torch.from_numpy(_last(chunk, cfg.max_len)))[:, -1]
            scores = h @ model.item.weight.T
            scores[:, 0] = -torch.inf
            for row, seq in enumerate(chunk):
                scores[row, list(seq)] = -torch.inf
            out.append(torch.topk(scores, k).indices.numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def recommend(
    split: Split, items: Sequence[str], users: Sequence[str], cfg: SasRecConfig | None = None
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Train on ``split.train`` minus each user's last event, choose the epoch on that
    last event, rank for ``users`` from their whole training history. Returns the top-10
    item ids per user and what the run did (epochs, seconds, validation NDCG@10)."""
    import torch

    cfg = cfg or SasRecConfig()
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    col = {item: j + 1 for j, item in enumerate(items)}
    by_user: dict[str, list[int]] = defaultdict(list)
    row: Interaction
    for row in split.train:  # global (ts, seq) order: each user's list is in time order
        if row.item_id in col:
            by_user[row.user_id].append(col[row.item_id])
    train_users = [u for u, s in by_user.items() if len(s) >= 3]
    fit_seqs = [by_user[u][:-1] for u in train_users]  # the last one is validation
    val_target = {u: by_user[u][-1] for u in train_users}
    model = _model(len(items), cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98))
    rng = np.random.default_rng(cfg.seed)
    best: tuple[float, int, dict[str, Any]] = (-1.0, 0, {})
    started, epoch, stale, history = time.monotonic(), 0, 0, []
    while epoch < cfg.max_epochs and time.monotonic() - started < cfg.budget_s:
        order = rng.permutation(len(fit_seqs))
        total = 0.0
        for start in range(0, len(order), cfg.batch):
            x, y = _windows([fit_seqs[i] for i in order[start : start + cfg.batch]], cfg.max_len)
            target = torch.from_numpy(y)
            states = model(torch.from_numpy(x))[target > 0]  # padding has no target: skipped
            logits = states @ model.item.weight.T
            loss = torch.nn.functional.cross_entropy(logits, target[target > 0])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach())
        epoch += 1
        if epoch % cfg.eval_every and epoch < cfg.max_epochs:
            continue
        top = _rank(model, fit_seqs, cfg)
        ndcg = float(
            np.mean(
                [
                    metrics.ndcg_at_k([str(j) for j in t], {str(val_target[u])}, 10)
                    for u, t in zip(train_users, top, strict=True)
                ]
            )
        )
        history.append({"epoch": epoch, "loss": round(total, 3), "val_ndcg@10": round(ndcg, 4)})
        log.info("SASRec epoch %d: loss %.3f, validation NDCG@10 %.4f", epoch, total, ndcg)
        if ndcg > best[0]:
            best = (ndcg, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
            stale = 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    train_s = time.monotonic() - started
    if best[2]:
        model.load_state_dict(best[2])
    known = [u for u in users if by_user.get(u)]
    top = _rank(model, [by_user[u] for u in known], cfg)
    recs = {u: [items[j - 1] for j in t] for u, t in zip(known, top, strict=True)}
    run = {
        "config": cfg.__dict__,
        "epochs_run": epoch,
        "best_epoch": best[1],
        "best_val_ndcg@10": round(best[0], 4),
        "train_s": round(train_s, 1),
        "stopped_by": "budget"
        if train_s >= cfg.budget_s
        else ("max_epochs" if epoch >= cfg.max_epochs else "patience"),
        "curve": history,
    }
    return recs, run


def main() -> None:
    """python -m streaming_rec_dev.evaluation.sasrec --dataset ml-1m --budget-s 2400: the
    baseline alone, on the replay's split (leave-last-out), scored like the replay's rows;
    writes docs/quality/sasrec-<dataset>.json."""
    import argparse
    from pathlib import Path

    import orjson

    from streaming_rec_dev.datasets.movielens import load_movies, load_ratings
    from streaming_rec_dev.evaluation import baselines
    from streaming_rec_dev.evaluation.split import interactions, leave_last_out

    parser = argparse.ArgumentParser(description="The offline SASRec baseline")
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-1m", "ml-100k"])
    parser.add_argument("--budget-s", type=float, default=2400.0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=1, help="epochs between validations")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[2] / "docs/quality")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    movies = load_movies(args.dataset)
    items = [m.item_id for m in movies]
    split = leave_last_out(interactions(load_ratings(args.dataset)))
    users = sorted(split.test)
    config = SasRecConfig(budget_s=args.budget_s, threads=args.threads, eval_every=args.eval_every)
    recs, run = recommend(split, items, users, config)
    data = baselines.Interactions.build(split.train, items, users)
    pct = metrics.popularity_percentiles(dict(zip(items, data.counts.tolist(), strict=True)), items)
    results = {
        name: metrics.summarize(recs, {u: i.item_id for u, i in test.items()}, pct, len(items))
        for name, test in (("positive_last", split.positive_test()), ("all_last", split.test))
    }
    report = {
        "dataset": args.dataset,
        "command": f"python -m streaming_rec_dev.evaluation.sasrec --dataset {args.dataset} "
        f"--budget-s {args.budget_s:g}",
        "results": results,
        "run": run,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"sasrec-{args.dataset}.json").write_bytes(
        orjson.dumps(report, option=orjson.OPT_INDENT_2)
    )
    print(orjson.dumps({"results": results, "epochs": run["epochs_run"]}).decode())


if __name__ == "__main__":
    main()
