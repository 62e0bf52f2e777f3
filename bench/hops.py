"""The two-hop floor: what the Kafka client libraries can do on this broker, in this run.

One round trip = client produce → broker → relay consume → relay produce → broker →
client consume: the same two hops an ask takes (client → worker → client), with no work in
the relay. acks=all, linger 0, one partition each way, one message at a time with a gap.

    product path   kafka-python client ↔ aiokafka relay   (RecClient ↔ the Faust worker)
    aiokafka       aiokafka client     ↔ aiokafka relay
    librdkafka     confluent-kafka     ↔ confluent-kafka  (the reference)

The relay runs in a process of its own, as the worker does. ``run(ctx)`` uses the bench
stack's broker; the idle ask's p50 is then compared with floor + in-process compute.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from common import Context, log, pct
from common import write_json as _write

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 10.0
PATHS = {
    "product (kafka-python ↔ aiokafka)": ("kafka-python", "aiokafka"),
    "aiokafka ↔ aiokafka": ("aiokafka", "aiokafka"),
    "librdkafka ↔ librdkafka (reference)": ("librdkafka", "librdkafka"),
}


# --- relays (run in a process of their own) --------------------------------------------
def relay(library: str, bootstrap: str, source: str, target: str) -> None:
    """Copy every record of ``source`` to ``target`` until killed."""
    if library == "aiokafka":
        asyncio.run(_aiokafka_relay(bootstrap, source, target))
    else:
        _librdkafka_relay(bootstrap, source, target)


async def _aiokafka_relay(bootstrap: str, source: str, target: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=True
    )
    await consumer.start()
    await producer.start()
    tp = TopicPartition(source, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)  # resolved now: nothing sent after "ready" is missed
    print("relay ready", flush=True)
    async for record in consumer:
        await producer.send(target, record.value, key=record.key)


def _librdkafka_relay(bootstrap: str, source: str, target: str) -> None:
    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"hops-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.assign([TopicPartition(source, 0, OFFSET_END)])
    consumer.poll(0.5)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "enable.idempotence": True}
    )
    print("relay ready", flush=True)
    while True:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        producer.produce(target, message.value(), key=message.key())
        producer.poll(0)


# --- clients ------------------------------------------------------------------------------
class KafkaPythonClient:
    def __init__(self, bootstrap: str, source: str, target: str) -> None:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tp = TopicPartition(target, 0)
        self.consumer.assign([tp])
        self.consumer.seek_to_end(tp)
        self.consumer.position(tp)
        self.source = source

    def round_trip(self, payload: bytes) -> float:
        t0 = time.perf_counter()
        self.producer.send(self.source, payload)
        self.producer.flush()
        while time.perf_counter() - t0 < TIMEOUT_S:
            for records in self.consumer.poll(timeout_ms=1000).values():
                if any(r.value == payload for r in records):
                    return (time.perf_counter() - t0) * 1000.0
        raise TimeoutError("no reply from the relay")

    def close(self) -> None:
        self.producer.close(5)
        self.consumer.close()


class LibrdkafkaClient:
    def __init__(self, bootstrap: str, source: str, target: str) -> None:
        from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"hops-c-{uuid.uuid4().hex[:6]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
            }
        )
        self.consumer.assign([TopicPartition(target, 0, OFFSET_END)])
        self.consumer.poll(0.5)
        self.source = source

    def round_trip(self, payload: bytes) -> float:
        t0 = time.perf_counter()
        self.producer.produce(self.source, payload)
        self.producer.flush()
        while time.perf_counter() - t0 < TIMEOUT_S:
            message = self.consumer.poll(1.0)
            if message is not None and not message.error() and message.value() == payload:
                return (time.perf_counter() - t0) * 1000.0
        raise TimeoutError("no reply from the relay")

    def close(self) -> None:
        self.consumer.close()


class AiokafkaClient:
    def __init__(self, bootstrap: str, source: str, target: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._start(bootstrap, target))
        self.source = source

    async def _start(self, bootstrap: str, target: str) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await self.producer.start()
        await self.consumer.start()
        tp = TopicPartition(target, 0)
        self.consumer.assign([tp])
        await self.consumer.seek_to_end(tp)
        await self.consumer.position(tp)

    async def _round_trip(self, payload: bytes) -> float:
        t0 = time.perf_counter()
        await self.producer.send_and_wait(self.source, payload)
        while True:
            record = await asyncio.wait_for(self.consumer.getone(), TIMEOUT_S)
            if record.value == payload:
                return (time.perf_counter() - t0) * 1000.0

    def round_trip(self, payload: bytes) -> float:
        return self.loop.run_until_complete(self._round_trip(payload))

    def close(self) -> None:
        self.loop.run_until_complete(self.producer.stop())
        self.loop.run_until_complete(self.consumer.stop())
        self.loop.close()


CLIENTS = {
    "kafka-python": KafkaPythonClient,
    "librdkafka": LibrdkafkaClient,
    "aiokafka": AiokafkaClient,
}


# --- the part -----------------------------------------------------------------------------
def measure(bootstrap: str, n: int, gap_s: float) -> dict[str, Any]:
    """p50/p95/p99 of ``n`` round trips per path, ms; paths one after the other."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    out: dict[str, Any] = {}
    try:
        for name, (client_lib, relay_lib) in PATHS.items():
            tag = uuid.uuid4().hex[:8]
            source, target = f"hops-{tag}-in", f"hops-{tag}-out"
            admin.create_topics([NewTopic(t, 1, 1) for t in (source, target)])
            time.sleep(1.0)
            code = f"import hops; hops.relay({relay_lib!r}, {bootstrap!r}, {source!r}, {target!r})"
            process = subprocess.Popen(
                [sys.executable, "-c", code], cwd=HERE, stdout=subprocess.PIPE, text=True
            )
            try:
                assert process.stdout is not None
                process.stdout.readline()  # "relay ready"
                client = CLIENTS[client_lib](bootstrap, source, target)
                try:
                    for _ in range(10):  # warm: metadata, connections
                        client.round_trip(uuid.uuid4().bytes)
                    times = []
                    for _ in range(n):
                        times.append(client.round_trip(uuid.uuid4().bytes))
                        time.sleep(gap_s)
                finally:
                    client.close()
            finally:
                process.kill()
                process.wait()
            out[name] = {"client": client_lib, "relay": relay_lib, **pct(times, 50, 95, 99)}
            log(f"two hops, {name}: p50 {out[name]['p50']} ms")
    finally:
        admin.close()
    return out


def run(ctx: Context) -> dict[str, Any]:
    """The floor on the bench stack's broker (started if it is not yet)."""
    ctx.client()  # the stack: broker, topics, catalog, worker (idle meanwhile)
    bootstrap = ctx.settings().bootstrap_servers
    n = 40 if ctx.quick else 200
    results = {"n": n, "gap_s": 0.02, "two_hop_ms": measure(bootstrap, n, 0.02)}
    _write("hops", results, {"acks": "all", "linger_ms": 0, "partitions": 1})
    return results
