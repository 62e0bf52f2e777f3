"""take_ready (edge/adapters.py): micro-batches without a timer, on a Faust agent's
in-memory test channel (no broker)."""

from __future__ import annotations

import asyncio

import faust
import pytest

from streaming_rec.edge.adapters import check_take_ready, take_ready

pytestmark = pytest.mark.unit


def run_agent(pause_s: float, values: list[bytes], gap_after_first_s: float) -> list[list[bytes]]:
    """Batches of at most 3 an agent took while each batch kept it busy ``pause_s``."""

    async def main() -> list[list[bytes]]:
        app = faust.App("t-take-ready", store="memory://", web_enabled=False)
        batches: list[list[bytes]] = []

        @app.agent(value_type=bytes)
        async def agent(stream: faust.StreamT[bytes]) -> None:
            async for batch in take_ready(stream, 3):
                batches.append([e.value for e in batch])
                await asyncio.sleep(pause_s)

        async with agent.test_context() as ctx:
            await ctx.put(values[0])
            await asyncio.sleep(gap_after_first_s)
            for value in values[1:]:
                await ctx.put(value)
            await asyncio.sleep(0.3)
        return batches

    return asyncio.run(main())


def test_an_idle_agent_takes_a_record_at_once_and_a_busy_one_batches_what_arrived() -> None:
    check_take_ready()  # the Faust internals it uses are there
    batches = run_agent(0.05, [b"a", b"b", b"c", b"d", b"e", b"f"], gap_after_first_s=0.01)
    assert batches[0] == [b"a"]  # alone: nothing waited for a timer to fill the batch
    assert [v for batch in batches for v in batch] == [b"a", b"b", b"c", b"d", b"e", b"f"]
    assert all(len(batch) <= 3 for batch in batches)
    assert len(batches) == 3  # b..f arrived while "a" was handled: batches of 3 and 2
