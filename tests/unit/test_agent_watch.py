"""AgentWatch (edge/faust_base.py): an agent that ends with an exception is logged and
counted (and the exception still reaches Faust's supervisor)."""

from __future__ import annotations

import asyncio

import faust
import pytest

from streaming_rec.edge import metrics
from streaming_rec.edge.faust_base import AgentWatch

pytestmark = pytest.mark.unit


def test_a_crashing_agent_is_counted_and_the_crash_reaches_faust() -> None:
    async def main() -> tuple[AgentWatch, bool]:
        app = faust.App("t-agent-watch", store="memory://", web_enabled=False)
        watch = AgentWatch(app)

        @app.agent(value_type=bytes)
        async def fragile(stream: faust.StreamT[bytes]) -> None:
            async with watch.running("fragile"):
                async for value in stream:
                    if value == b"boom":
                        raise RuntimeError("boom")

        reached_faust = False
        async with fragile.test_context() as ctx:
            await ctx.put(b"fine")
            try:
                await ctx.put(b"boom")
                await asyncio.sleep(0.1)
                await ctx.put(b"after")
            except RuntimeError:
                reached_faust = True  # the test context's supervisor re-raises the crash
        return watch, reached_faust

    before = metrics.AGENT_CRASHES.labels("fragile")._value.get()
    watch, reached_faust = asyncio.run(main())
    assert watch.crashes == 1 and watch.last == "fragile: RuntimeError: boom"
    assert metrics.AGENT_CRASHES.labels("fragile")._value.get() == before + 1
    assert reached_faust
