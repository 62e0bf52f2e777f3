"""Where a record sits in its topic: one name and one type for the (partition, offset) pair.

The core stores it (a user state remembers the last feedback record it holds) without
knowing what a partition is; the edge fills it from Kafka records.
"""

from __future__ import annotations

from typing import NamedTuple


class PartitionOffset(NamedTuple):
    """A record's partition and offset in its topic (both ≥ 0). Compares equal to the plain
    ``(partition, offset)`` tuple."""

    partition: int
    offset: int
