"""Each third-party patch is applied, does what it claims, and refuses to apply to a
library that is not the one it was written for (faust_fixes, the CLI's worker class)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from unittest import mock

import faust
import pytest
from faust.tables import recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streaming_rec import cli
from streaming_rec.edge import faust_fixes, patching

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def applied() -> None:
    faust_fixes.apply()


def test_every_patch_is_applied_once() -> None:
    for owner, name in (
        (recovery.Recovery, "on_recovery_completed"),
        (faust_aiokafka.Producer, "_settings_default"),
        (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"),
        (faust_aiokafka.AIOKafkaConsumerThread, "seek_to_committed"),
    ):
        installed = vars(owner)[name]
        assert patching.is_patched(installed), name
        assert not patching.is_patched(installed.__wrapped__), name  # not wrapped twice
    faust_fixes.apply()
    assert not patching.is_patched(vars(recovery.Recovery)["on_recovery_completed"].__wrapped__)


def test_recovery_stops_the_flow_before_the_seek() -> None:
    calls: list[str] = []
    me = mock.MagicMock()
    consumer = me.app.consumer
    consumer.stop_flow.side_effect = lambda: calls.append("stop_flow")
    me.app.flow_control.suspend.side_effect = lambda: calls.append("suspend")
    consumer.wait_for_stopped_flow = mock.AsyncMock(side_effect=lambda: calls.append("stopped"))
    consumer.perform_seek = mock.MagicMock(side_effect=lambda: calls.append("seek"))
    consumer.assignment.return_value = {("t", 0)}
    me.app.consumer_generation_id = 0
    me.tables.values.return_value = []
    me.app.on_rebalance_complete.send = mock.AsyncMock()
    me._wait = mock.AsyncMock()
    me.app._fetcher.maybe_start = mock.AsyncMock()
    consumer.resume_flow.side_effect = lambda: calls.append("resume_flow")

    asyncio.run(recovery.Recovery.on_recovery_completed(me, 0))
    assert calls == ["stop_flow", "suspend", "stopped", "seek", "resume_flow"]


def test_a_partition_without_a_committed_offset_is_sought_to_the_beginning() -> None:
    """aiokafka's seek_to_committed leaves a partition with no committed offset (or 0) where
    the last fetch left it; after a rebalance Faust has dropped what it queued from there,
    so those records would never be read again. Changelogs are left to the recovery."""
    items0, items1, items2 = TP("app-items", 0), TP("app-items", 1), TP("app-items", 2)
    changelog = TP("app-user-state-changelog", 0)
    committed = {items0: 41, items1: None, items2: 0, changelog: None}
    me = mock.MagicMock()
    me.call_thread = mock.AsyncMock(return_value=committed)
    me.seek_to_beginning = mock.AsyncMock()
    me.app.tables.changelog_topics = {"app-user-state-changelog"}

    got = asyncio.run(faust_aiokafka.AIOKafkaConsumerThread.seek_to_committed(me))
    assert got == committed  # what Faust's perform_seek reads
    me.seek_to_beginning.assert_awaited_once_with(items1, items2)
    me.seek_to_beginning.reset_mock()
    me.call_thread.return_value = {items0: 41}
    asyncio.run(faust_aiokafka.AIOKafkaConsumerThread.seek_to_committed(me))
    me.seek_to_beginning.assert_not_awaited()


def test_the_producer_is_idempotent_and_compresses_as_configured() -> None:
    app = faust.App(
        "srec-test-fixes", broker="kafka://127.0.0.1:1", producer_compression_type="zstd"
    )
    producer = faust_aiokafka.Producer(app.transport)
    settings = producer._settings_default()
    assert settings["enable_idempotence"] is True
    assert settings["compression_type"] == "zstd"


def test_the_worker_consumer_reads_committed_records_only() -> None:
    async def make() -> Any:  # aiokafka builds its consumer inside a running loop
        app = faust.App("srec-test-fixes-c", broker="kafka://127.0.0.1:1")
        thread = faust_aiokafka.AIOKafkaConsumerThread(
            app.consumer, loop=asyncio.get_running_loop()
        )
        return thread._create_worker_consumer(app.transport)

    made = asyncio.run(make())
    assert made._isolation_level == "read_committed"


def test_the_worker_consumer_gets_the_configured_fetch_timings() -> None:
    async def make() -> Any:
        app = faust.App("srec-test-fixes-f", broker="kafka://127.0.0.1:1")
        thread = faust_aiokafka.AIOKafkaConsumerThread(
            app.consumer, loop=asyncio.get_running_loop()
        )
        return thread._create_worker_consumer(app.transport)

    try:
        faust_fixes.configure_fetch(faust_fixes.FetchTiming(max_wait_ms=100, backoff_ms=5.0))
        made = asyncio.run(make())
    finally:
        faust_fixes.configure_fetch(faust_fixes.FetchTiming())
    assert made._fetch_max_wait_ms == 100
    assert made._isolation_level == "read_committed"
    untouched = asyncio.run(make())
    assert untouched._fetch_max_wait_ms == 1500  # Faust's own, when nothing is configured


def test_the_fetch_backoff_is_set_on_the_fetcher_that_start_builds() -> None:
    class Fetcher:
        _prefetch_backoff = 0.1

    class Consumer:
        _fetcher: Any = None

        async def start(self) -> None:
            self._fetcher = Fetcher()

    consumer = Consumer()
    faust_fixes._set_backoff_on_start(consumer, 0.005, "test")
    asyncio.run(consumer.start())
    assert consumer._fetcher._prefetch_backoff == 0.005

    class Renamed(Consumer):
        async def start(self) -> None:
            self._fetcher = object()  # an aiokafka whose Fetcher lost the attribute

    renamed = Renamed()
    faust_fixes._set_backoff_on_start(renamed, 0.005, "test")
    with pytest.raises(patching.PatchMismatch, match="_prefetch_backoff"):
        asyncio.run(renamed.start())


def test_a_patch_refuses_another_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faust_fixes, "FAUST_SERIES", "0.16")
    with pytest.raises(patching.PatchMismatch, match=r"faust-streaming 0\.16"):
        faust_fixes.apply()


def test_a_patch_refuses_a_changed_place(monkeypatch: pytest.MonkeyPatch) -> None:
    async def changed(self: Any, generation: int, extra: int) -> None:
        return None

    monkeypatch.setattr(recovery.Recovery, "on_recovery_completed", changed)
    with pytest.raises(patching.PatchMismatch, match="expected parameters"):
        faust_fixes.apply()

    def plain(self: Any) -> Any:  # the producer settings became ... something else
        return {}

    monkeypatch.undo()
    monkeypatch.setattr(faust_aiokafka.Producer, "_settings_default", plain)
    with pytest.raises(patching.PatchMismatch, match="no longer uses"):
        faust_fixes.apply()


def test_the_shutdown_watchdog_forces_exit_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    worker_class = cli._guarded_worker_class()
    exited = threading.Event()
    monkeypatch.setattr(cli, "SHUTDOWN_GRACE_S", 0.05)
    monkeypatch.setattr("os._exit", lambda code: exited.set())
    worker = worker_class.__new__(worker_class)
    worker._signal_stop_time = 1.0  # mode's own handler: already stopping, does nothing more
    worker._schedule_shutdown("SIGTERM")
    assert exited.wait(2.0)


def test_the_shutdown_watchdog_refuses_another_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.worker import Worker

    def own(self: Any, signal: Any) -> None:
        return None

    monkeypatch.setattr(Worker, "_schedule_shutdown", own, raising=False)
    with pytest.raises(patching.PatchMismatch, match="overrides _schedule_shutdown"):
        cli._guarded_worker_class()
