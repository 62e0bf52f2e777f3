"""Replies routed to their asker, on the real broker with the real worker: each client
(RecClient and AsyncRecClient) fetches only its reply partition's records, keeps a bounded
store whatever happens to its asks, and survives a malformed record on `recommendations`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streaming_rec.config import Settings
from streaming_rec.edge.async_client import AsyncRecClient
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.kafka_config import client_config
from streaming_rec.errors import RequestTimeout
from streaming_rec.schemas import Recommendation
from streaming_rec_dev.devstack import WorkerProcess

pytestmark = pytest.mark.integration
CLIENTS = 8
ASKS = 4
TEXTS = ["a space adventure", "a love story in paris", "a funny film", "a western"]


@pytest.fixture
def offsets(settings: Settings) -> Iterator[Callable[[], list[int]]]:
    """The end offset of each partition of `recommendations`, read when called."""
    topic = settings.topic("recommendations")
    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]

    def ends() -> list[int]:
        found = consumer.end_offsets(partitions)
        return [found[tp] for tp in partitions]

    yield ends
    consumer.close()


def until(done: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    return done()


def test_eight_clients_asking_in_parallel_each_fetch_only_their_partition(
    worker: WorkerProcess, settings: Settings, offsets: Callable[[], list[int]]
) -> None:
    clients = [RecClient(settings, reply_partition=p) for p in range(CLIENTS)]
    try:
        before = offsets()
        answers: dict[int, list[Recommendation]] = {p: [] for p in range(CLIENTS)}

        def asker(p: int) -> None:
            for i in range(ASKS):
                answers[p].append(clients[p].ask(f"u-route-{p}-{i}", TEXTS[i], k=5, timeout=30))

        threads = [threading.Thread(target=asker, args=(p,)) for p in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = offsets()
        grown = [b - a for a, b in zip(before, after, strict=True)]
        for p, client in enumerate(clients):
            assert [r.status for r in answers[p]] == ["ok"] * ASKS
            # it fetched every record of its partition (its own replies) and nothing else
            assert until(lambda c=client, n=grown[p]: c.stats.fetched == n), (p, grown)
            assert client.stats.fetched == grown[p] and client.stats.kept == ASKS
        total = sum(grown)
        # before: every client read every partition (total each); now: about total / 8
        print(f"\nreply records fetched per client: before {total}, after {grown}")
        assert total >= CLIENTS * ASKS and max(grown) <= total // 4
    finally:
        for client in clients:
            client.close()


def test_a_malformed_reply_does_not_stop_an_ask(worker: WorkerProcess, settings: Settings) -> None:
    with RecClient(settings, reply_partition=3) as client:
        producer = KafkaProducer(**client_config(settings))
        topic = settings.topic("recommendations")
        for junk in (b"not json", b"[1]", b'{"request_id": "r"}'):
            producer.send(topic, junk, partition=3)
        producer.flush()
        producer.close()
        assert until(lambda: client.stats.bad == 3)
        reply = client.ask("u-after-junk", "a detective story", k=3, timeout=30)
        assert reply.status == "ok" and len(reply.items) == 3


def test_after_many_asks_that_time_out_the_reply_store_holds_at_most_its_bound(
    worker: WorkerProcess, settings: Settings
) -> None:
    bounded = settings.model_copy(update={"client_max_pending": 20})
    with RecClient(bounded, reply_partition=5) as client:
        for i in range(60):  # sent, never collected
            client.send_query(f"u-bound-{i % 7}", "a quiet drama", k=3)
        client.flush()
        assert client.pending <= 20 and client.stats.evicted == 40
        for i in range(20):
            with pytest.raises(RequestTimeout):
                client.ask(f"u-bound-t{i}", "a thriller", k=3, timeout=0.001)
            assert client.pending <= 20
        # every answer arrives; the ones nobody waits for any more are not kept
        assert until(lambda: client.stats.fetched >= 80, timeout=60), client.stats
        assert client.pending <= 20 and client.stats.not_ours >= 40
        assert client.ask("u-bound-last", "a thriller", k=3, timeout=30).status == "ok"


def test_the_async_client_routes_bounds_and_survives_bad_replies_too(
    worker: WorkerProcess, settings: Settings, offsets: Callable[[], list[int]]
) -> None:
    async def scenario() -> None:
        bounded = settings.model_copy(update={"client_max_pending": 20})
        clients = [AsyncRecClient(bounded, reply_partition=p) for p in range(CLIENTS)]
        for client in clients:
            await client.start()
        try:
            before = offsets()

            async def asker(p: int) -> list[Recommendation]:
                return [
                    await clients[p].ask(f"u-aroute-{p}-{i}", TEXTS[i], k=5, timeout=30)
                    for i in range(ASKS)
                ]

            answers = await asyncio.gather(*(asker(p) for p in range(CLIENTS)))
            grown = [b - a for a, b in zip(before, offsets(), strict=True)]
            for p, client in enumerate(clients):
                assert [r.status for r in answers[p]] == ["ok"] * ASKS
                for _ in range(100):
                    if client.stats.fetched == grown[p]:
                        break
                    await asyncio.sleep(0.05)
                assert client.stats.fetched == grown[p] and client.stats.kept == ASKS

            client = clients[2]
            producer = KafkaProducer(**client_config(settings))
            for junk in (b"not json", b"{}"):
                producer.send(settings.topic("recommendations"), junk, partition=2)
            producer.flush()
            producer.close()
            for _ in range(100):
                if client.stats.bad == 2:
                    break
                await asyncio.sleep(0.05)
            assert client.stats.bad == 2
            for i in range(30):
                with pytest.raises(RequestTimeout):
                    await client.ask(f"u-abound-{i}", "a thriller", k=3, timeout=0.001)
                assert client.pending <= 20
            reply = await client.ask("u-aafter", "a detective story", k=3, timeout=30)
            assert reply.status == "ok" and len(reply.items) == 3 and client.pending == 0
        finally:
            for client in clients:
                await client.close()

    asyncio.run(scenario())
