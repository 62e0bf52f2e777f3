"""docs/bench/summary.md: the tracked ratios from the latest docs/bench/<part>.json files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import out_dir, read_json


def _f(x: float | None, unit: str = "", nd: int = 1) -> str:
    return "—" if x is None else f"{x:.{nd}f}{unit}"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def rows(docs: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    floor, idle, load = docs.get("floor"), docs.get("idle"), docs.get("load")
    fresh, scale = docs.get("freshness"), docs.get("index_scale")
    out = []
    disturbed = False
    if floor and idle:  # the same encoder, warm, one query: in process should not be slower
        local = floor["results"]["one_at_a_time"]["stage_median_ms"]["embed_ms"]
        worker = idle["results"]["stage_median_ms"]["embed_ms"]
        disturbed = local > 2 * worker
    note = (
        " **Floor disturbed**: in-process embed p50 > 2× the worker's at idle (other load "
        "on the machine); the ratio is not meaningful, rerun `--only floor,idle,load`."
        if disturbed
        else ""
    )

    # 1. e2e max throughput ÷ in-process batched ceiling
    if floor and load:
        f, lo = floor["results"], load["results"]
        ratio = lo["max_achieved_qps"] / f["ceiling_qps"]
        top = max(lo["steps"], key=lambda s: s["achieved_qps"])
        batch_ms = {r["batch"]: r["batch_ms_p50"] for r in f["batched"]}
        why = (
            f"{lo['max_achieved_qps']:g} q/s end to end vs {f['ceiling_qps']:g} q/s in process "
            f"(batch {f['ceiling_batch']}); at the top step the worker's mean batch was "
            f"{top['mean_batch']} and its embed_ms p50 {top['stage_median_ms']['embed_ms']} ms, "
            f"where in process a batch of 8 / 32 takes {batch_ms.get(8)} / {batch_ms.get(32)} "
            "ms: the encoder's threads share the 2 cores with the worker's event loop, "
            "the broker and the load client"
        )
        busy = top.get("cpu_cores_busy")
        if busy:
            why += f"; CPU cores busy at that step: {busy}"
        out.append(
            (
                "e2e throughput ÷ in-process ceiling",
                f"{ratio:.2f}",
                "≥ 0.8",
                _met(None if disturbed else ratio >= 0.8),
                why + note,
            )
        )
    # 2. idle e2e p50 − in-process p50 (same texts, same run)
    if idle:
        r = idle["results"]
        parts = r["where_the_time_goes_median_ms"]
        big = max(parts, key=lambda k: parts[k] or 0)
        why = (
            f"e2e p50 {r['e2e_ms']['p50']:.1f} ms vs in process {r['in_process_ms']['p50']:.1f} ms;"
            f" largest share: {big} {parts[big]:.1f} ms (medians: "
            + ", ".join(f"{k.split(' ')[0]} {v:.1f}" for k, v in parts.items())
            + ")"
        )
        hops = docs.get("hops")
        if hops:
            two = hops["results"]["two_hop_ms"]
            product = next(v for k, v in two.items() if k.startswith("product"))
            aim = product["p50"] + r["in_process_ms"]["p50"] + 2.0
            e2e = r["e2e_ms"]["p50"]
            why += (
                f"; two-hop floor of the same path (kafka-python ↔ aiokafka, same broker) "
                f"p50 {product['p50']:.1f} ms ("
                + ", ".join(f"{k} {v['p50']:.1f}" for k, v in two.items())
                + f"); aim = floor + in-process p50 + 2 ms = {aim:.1f} ms"
            )
            out.append(("idle e2e p50", _f(e2e, " ms"), f"≤ {aim:.1f} ms", _met(e2e <= aim), why))
        else:
            out.append(
                (
                    "idle e2e p50 − in-process p50",
                    _f(r["e2e_minus_in_process_p50_ms"], " ms"),
                    "tracked (no aim set)",
                    "n/a",
                    why + note,
                )
            )
    # the speed issue's throughput aims: offered rate under p99 100 ms, CPU per answer
    if load:
        lo = load["results"]
        under = lo.get("max_offered_qps_under_bound")
        bound = lo.get("p99_bound_ms", 100.0)
        closed = lo.get("closed_loop")
        why = f"open loop, Poisson, 15 s a step; stop: {lo['stop_reason']}"
        if closed:
            why += (
                f"; closed loop ({closed['askers']} askers): {closed['answers_per_s']:g} "
                f"answers/s, p50 {closed['latency_ms']['p50']} ms"
            )
        out.append(
            (
                f"offered q/s with p99 ≤ {bound:g} ms",
                "—" if under is None else f"{under:g}",
                "≥ 200",
                _met(under is not None and under >= 200),
                why,
            )
        )
    if floor and load:
        steps = [st for st in load["results"]["steps"] if st.get("mean_batch")]
        if steps:
            top = max(steps, key=lambda st: st["achieved_qps"])
            rows_f = floor["results"]["batched"]
            near = min(rows_f, key=lambda r: abs(r["batch"] - top["mean_batch"]))
            local = near.get("cpu_ms_per_query")
            if local:
                ratio = top["worker_cpu_ms_per_answer"] / local
                why = (
                    f"worker {top['worker_cpu_ms_per_answer']} ms CPU per answer at "
                    f"{top['achieved_qps']:g} answers/s (mean batch {top['mean_batch']}) vs "
                    f"in process {local} ms per query at batch {near['batch']}; the rest of "
                    f"the machine at that step: {top['cpu_cores_busy']}"
                )
                out.append(
                    (
                        "worker CPU per answer ÷ in-process CPU per query",
                        f"{ratio:.2f}",
                        "≤ 1.3",
                        _met(ratio <= 1.3),
                        why,
                    )
                )
    # 3. p99 at half max load ÷ floor p50
    if floor and load:
        half = load["results"]["half_load"]
        fp50 = floor["results"]["one_at_a_time"]["latency_ms"]["p50"]
        p99 = half["latency_ms"]["p99"]
        ratio = p99 / fp50 if p99 is not None else None
        why = (
            f"p99 {p99:.1f} ms at {half['offered_qps']:g} q/s (achieved {half['achieved_qps']:g})"
            f" vs floor p50 {fp50:.1f} ms; medians there: queue "
            f"{half['stage_median_ms']['queue_ms']} ms (waiting behind the batch in compute), "
            f"embed {half['stage_median_ms']['embed_ms']} ms for a mean batch of "
            f"{half['mean_batch']} (in process, batch 1: "
            f"{floor['results']['one_at_a_time']['stage_median_ms']['embed_ms']} ms)"
        )
        out.append(
            (
                "p99 at half max load ÷ floor p50",
                _f(ratio, "", 2),
                "≤ 3",
                _met(None if disturbed else ratio is not None and ratio <= 3),
                why + note,
            )
        )
    if fresh:
        c = fresh["results"]["click_to_effect"]
        p99 = c["click_to_reflected_answer_ms"]["p99"]
        share = c["reflected_on_first_answer_share"]
        why = (
            f"{100 * share:.0f}% of first answers reflect the click (p50 "
            f"{c['click_to_reflected_answer_ms']['p50']} ms, p95 "
            f"{c['click_to_reflected_answer_ms']['p95']} ms); the figure is a whole round trip "
            "of a 'for you' ask (no encode), so its tail is Kafka/Faust/client scheduling on a "
            "busy 2-core machine"
            + (
                "; feedback and queries are separate topics read by separate agents, so a "
                "query can overtake its click"
                if share < 1
                else ""
            )
        )
        out.append(
            (
                "click → effect p99",
                _f(p99, " ms"),
                "≤ 20 ms",
                _met(p99 is not None and p99 <= 20),
                why,
            )
        )
        i = fresh["results"]["item_to_searchable"]
        p99 = i["publish_to_top_answer_ms"]["p99"]
        why = (
            f"p50 {i['publish_to_top_answer_ms']['p50']} ms, {i['polls_needed']['p50']:g} asks; "
            "path: items → embed agent (take_ready, no batch timer) → item-vectors → index "
            "replica (separate consumer) → compute thread"
        )
        out.append(
            (
                "item → searchable p99",
                _f(p99, " ms"),
                "≤ 100 ms",
                _met(p99 is not None and p99 <= 100),
                why,
            )
        )
    if scale:
        sc = scale["results"]["scales"]
        big = max(sc, key=lambda s: s["items"])
        best = big["cheapest_ef_at_recall_0_95"]
        label = "1M" if big["items"] >= 1_000_000 else f"{big['items'] // 1000}k (1M not run)"
        value = (
            f"{best['search_ms']['p50']:.3f} ms (ef {best['ef']}, recall "
            f"{best['recall_at_10']:.3f})"
            if best
            else "recall < 0.95 at every ef"
        )
        ok = None
        if big["items"] >= 1_000_000:
            ok = best is not None and best["search_ms"]["p50"] <= 1.0
        why = (
            f"{big['items']:,} items (M 16, ef_construction "
            f"{big.get('ef_construction', 200)}, 2 threads): build {big['build_s']:.0f} s, RSS +"
            f"{big['rss_growth_mib']:.0f} MiB, snapshot {big['snapshot_mib']:.0f} MiB; as the "
            f"service calls it (k=200, Python filter) p50 "
            f"{big['service_shaped_search_ms']['p50']:.2f} ms"
        )
        out.append(
            (f"{label} search p50 at recall@10 ≥ 0.95", value, "≤ 1 ms at 1M", _met(ok), why)
        )
    return out


def write_summary() -> Path:
    parts = ("floor", "hops", "idle", "load", "freshness", "index_scale")
    docs = {p: read_json(p) for p in parts}
    docs = {k: v for k, v in docs.items() if v}
    lines = [
        "# Benchmark summary",
        "",
        "Tracked ratios, from the latest `docs/bench/<part>.json` (each holds the machine, the "
        "settings and the command). Timings on a shared 2-core machine are noisy: medians, "
        "and ratios measured in the same run where possible.",
        "",
        "| figure | value | aim | met | what limits it |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows(docs)]
    load = docs.get("load")
    if load:
        r = load["results"]
        lines += [
            "",
            f"Highest offered rate with p99 ≤ {r['p99_bound_ms']:g} ms (all answered): "
            f"**{r['max_offered_qps_under_bound']} q/s**; the load curve is `load.png`.",
        ]
    lines += ["", "Sources (part: run id, date):", ""]
    lines += [f"- {k}: {v['run_id']}, {v['machine']['date']}" for k, v in docs.items()]
    path = out_dir() / "summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
