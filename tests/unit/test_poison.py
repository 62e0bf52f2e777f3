"""The unreadable-batch guard (streaming_rec.edge.poison) on real record batches, built
with each client's own batch builder: a batch with a codec the process lacks, a CRC
mismatch or a payload that does not decompress is skipped and reported with its offsets;
the batches around it are delivered and the fetch position moves past it."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from streaming_rec import codec
from streaming_rec.edge import metrics, patching, poison

pytestmark = pytest.mark.unit

SNAPPY, NONE = 2, 0
TOPIC = "t.queries"


def batch(lib: str, base: int, compression: int, n: int = 3) -> bytes:
    """A v2 record batch (wire format, the same for every client) of ``n`` records at
    offsets base..base+n-1."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(n):
        value = b"%d" % (base + i) + b" a query text" * 20
        builder.append(i, timestamp=1_700_000_000_000, key=b"u1", value=value, headers=[])
    raw = bytearray(builder.build())
    struct.pack_into(">q", raw, 0, base)  # base offset (outside the CRC)
    return bytes(raw)


def fix_crc(raw: bytearray) -> bytes:
    from aiokafka.record.util import calc_crc32c

    struct.pack_into(">I", raw, 17, calc_crc32c(bytes(raw[21:])))
    return bytes(raw)


def garbled(raw: bytes, crc_ok: bool) -> bytes:
    """``raw`` with its compressed payload overwritten (the CRC fixed up or not)."""
    damaged = bytearray(raw)
    for at in range(61, len(damaged)):
        damaged[at] = 0xFF
    return fix_crc(damaged) if crc_ok else bytes(damaged)


def read_aiokafka(raw: bytes) -> tuple[list[int], int]:
    from aiokafka.consumer.fetcher import READ_COMMITTED, PartitionRecords
    from aiokafka.record.memory_records import MemoryRecords
    from aiokafka.structs import TopicPartition

    part = PartitionRecords(
        TopicPartition(TOPIC, 3), MemoryRecords(raw), [], 0, None, None, True, READ_COMMITTED
    )
    return [r.offset for r in part], part.next_fetch_offset


def read_kafka_python(raw: bytes) -> tuple[list[int], int]:
    from kafka.consumer.fetcher import Fetcher
    from kafka.protocol.consumer import IsolationLevel
    from kafka.record import MemoryRecords
    from kafka.structs import TopicPartition

    part = Fetcher.PartitionRecords(
        0,
        TopicPartition(TOPIC, 3),
        MemoryRecords(raw),
        isolation_level=IsolationLevel.READ_COMMITTED,
    )
    offsets: list[int] = []
    while part:  # take() raises a mid-stream error on the call after the records before it
        offsets += [r.offset for r in part.take()]
    return offsets, part.next_fetch_offset


READERS = {"aiokafka": read_aiokafka, "kafka-python": read_kafka_python}


@pytest.fixture(autouse=True)
def guarded() -> Iterator[None]:
    poison.apply()
    poison._skips = poison._Skips()  # each test starts with no batch reported yet
    yield
    poison._skips = poison._Skips()


def deny_snappy(lib: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if lib == "aiokafka":
        import aiokafka.codec

        monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    else:
        import kafka.codec

        monkeypatch.setattr(kafka.codec, "snappy", None)


def three_batches(lib: str, middle: bytes) -> bytes:
    return batch(lib, 0, NONE) + middle + batch(lib, 6, NONE)


def counted(error: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "streaming_rec_unreadable_batches_total", {"topic": TOPIC, "error": error}
    )
    return value or 0.0


@pytest.mark.parametrize("lib", READERS)
def test_a_codec_the_process_lacks_skips_that_batch_only(
    lib: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = three_batches(lib, batch(lib, 3, SNAPPY))
    deny_snappy(lib, monkeypatch)
    before = counted("UnsupportedCodecError")
    offsets, position = READERS[lib](raw)
    assert offsets == [0, 1, 2, 6, 7, 8] and position == 9
    (skip,) = poison.drain()
    assert (skip.topic, skip.partition, skip.first, skip.last) == (TOPIC, 3, 3, 5)
    assert skip.error == "UnsupportedCodecError" and "snappy" in skip.reason
    assert counted("UnsupportedCodecError") == before + 1


@pytest.mark.parametrize("lib", READERS)
def test_without_the_guard_the_client_raises(lib: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The finding itself: each client raises on such a batch when not guarded."""
    if lib == "aiokafka":
        from aiokafka.consumer import fetcher as owner_module

        owner: Any = owner_module.PartitionRecords
    else:
        from kafka.consumer import fetcher as kp_fetcher

        owner = kp_fetcher.Fetcher.PartitionRecords
    monkeypatch.setattr(owner, "__init__", owner.__init__.__wrapped__)
    deny_snappy(lib, monkeypatch)
    with pytest.raises(Exception, match="snappy"):
        READERS[lib](three_batches(lib, batch(lib, 3, SNAPPY)))


@pytest.mark.parametrize("lib", READERS)
def test_a_crc_mismatch_skips_the_batch(lib: str) -> None:
    bad = garbled(batch(lib, 10, SNAPPY), crc_ok=False)
    offsets, position = READERS[lib](batch(lib, 0, NONE) + bad)
    assert offsets == [0, 1, 2] and position == 13
    (skip,) = poison.drain()
    assert (skip.first, skip.last, skip.error) == (10, 12, "CorruptRecord")


@pytest.mark.parametrize("lib", READERS)
def test_a_payload_that_does_not_decompress_skips_the_batch(lib: str) -> None:
    base = 20
    bad = garbled(batch(lib, base, SNAPPY), crc_ok=True)
    offsets, position = READERS[lib](bad + batch(lib, base + 3, NONE))
    assert offsets == [base + 3, base + 4, base + 5] and position == base + 6
    (skip,) = poison.drain()
    assert (skip.first, skip.last) == (base, base + 2)
    assert skip.error != "CorruptRecord"


def test_each_batch_is_reported_once_per_process() -> None:
    bad = garbled(batch("aiokafka", 40, SNAPPY), crc_ok=False)
    read_aiokafka(bad)
    read_aiokafka(bad)  # fetched again (a rebalance, a second consumer of the topic)
    assert len(poison.drain()) == 1


def test_the_dead_letter_names_topic_partition_and_offset_range() -> None:
    skip = poison.Skipped(TOPIC, 3, 7, 9, "UnsupportedCodecError", "no snappy", 1.0)
    raw = poison.dead_letter(skip, "w1")
    letter = codec.decode_dead_letter(raw)  # valid dead_letter v1
    assert (letter.topic, letter.partition, letter.offset) == (TOPIC, 3, 7)
    assert letter.error == "UnsupportedCodecError" and letter.worker == "w1"
    assert "offsets 7-9" in letter.reason and letter.key is None and letter.value is None
    assert orjson.loads(raw)["last_offset"] == 9


def test_forward_sends_every_skip_as_a_dead_letter() -> None:
    sent: list[bytes] = []

    async def send(key: bytes | None, value: bytes) -> None:
        sent.append(value)

    async def run() -> None:
        poison.report(TOPIC, 1, 50, 52, ValueError("bad"))
        task = asyncio.create_task(poison.forward(send, "w2", interval_s=0.01))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(run())
    assert [orjson.loads(v)["offset"] for v in sent] == [50]


def test_the_guard_refuses_another_client_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poison, "AIOKAFKA_SERIES", "0.99")
    from aiokafka.consumer import fetcher

    with pytest.raises(patching.PatchMismatch, match=r"aiokafka 0\.99"):
        poison.guard_aiokafka()
    assert patching.is_patched(vars(fetcher.PartitionRecords)["__init__"])


def test_the_guard_refuses_a_changed_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka.consumer import fetcher

    def changed(self: Any, records: Any, tp: Any) -> None:
        raise AssertionError("never called")

    monkeypatch.setattr(fetcher.PartitionRecords, "__init__", changed)
    with pytest.raises(patching.PatchMismatch, match="expected parameters"):
        poison.guard_aiokafka()
