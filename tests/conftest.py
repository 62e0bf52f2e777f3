"""Session fixtures shared by the tiers: a real Kafka broker of the session's own (free
port, stopped whatever happens) unless KAFKA_BOOTSTRAP_SERVERS points at one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streaming_rec_dev.devstack import local_broker


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap
