"""Popular-now: every worker counts all of `feedback` (a full replica) with the same verdict
as the feedback flow, so a refused event is refused here too (without a second dead letter:
the feedback flow sends the one)."""

from __future__ import annotations

import time
from collections.abc import Callable

from streaming_rec.core.service import Recommender
from streaming_rec.flows.policy import DEFAULT_MAX_SKEW_S, is_forget, read_feedback
from streaming_rec.flows.ports import Compute, Meter, Record


class CountPopularity:
    """Counts accepted feedback events towards popular-now, at their bounded event time."""

    def __init__(
        self,
        service: Recommender,
        meter: Meter,
        compute: Compute,
        *,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.meter = meter
        self.compute = compute
        self.max_skew_s = max_skew_s
        self.clock = clock

    async def handle(self, records: list[Record]) -> None:
        """Count the events of ``records`` that the feedback flow would accept."""
        now = self.clock()
        events = []
        refused = 0
        for record in records:
            if is_forget(record):
                continue  # popular-now counts items, not users: nothing of theirs to drop
            try:
                accepted = read_feedback(record, self.service.has_item, now, self.max_skew_s)
            except Exception:  # judged (and dead-lettered) the same way by the feedback flow
                refused += 1
                continue
            fb = accepted.feedback
            events.append((fb.item_id, fb.event, accepted.ts))
        if refused:
            self.meter.messages(records[0].topic, "refused_by_replica", refused)
        await self.compute(self.service.observe_popularity, events)
