"""A worker whose first table recovery hangs: the fault of faust-streaming's recovery-hang
class, injected (used by tests/integration/test_failures.py, run as a script).

Faust's recovery resumes the changelog partitions it must read (``resume_partitions``) and
waits for their records. Here the first such resume is dropped, so — as in the hang seen
in CI — no changelog record ever reaches the recovery and it waits forever, unless the
worker notices and restarts it (``SREC_RECOVERY_STALL_S``, edge/monitor.py).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from faust.transport import consumer

log = logging.getLogger("hung_recovery_worker")


def _drop_first_changelog_resume() -> None:
    original = consumer.Consumer.resume_partitions
    dropped = False

    def resume_partitions(self: Any, tps: Any) -> None:
        nonlocal dropped
        tps = set(tps)
        changelogs = {tp for tp in tps if self._is_changelog_tp(tp)}
        if changelogs and not dropped:
            dropped = True
            log.warning("fault: the resume of %d changelog partitions is dropped", len(changelogs))
            tps -= changelogs
        original(self, tps)

    consumer.Consumer.resume_partitions = resume_partitions  # type: ignore[method-assign]


if __name__ == "__main__":
    _drop_first_changelog_resume()
    from streaming_rec.cli import main

    sys.argv = ["streaming-rec", "worker"]
    main()
