"""Deterministic lateness per source partition: the bounded-out-of-orderness rule.

A record is late when its event time is more than the bound behind the largest
event time seen before it on the same partition, which is exactly when a
bounded-out-of-orderness watermark (max - bound - 1) has already passed it.
Deciding it here, in arrival order per partition, keeps it independent of when
Flink happens to emit periodic watermarks.
"""
from __future__ import annotations

from typing import Hashable


class PartitionLateness:
    def __init__(self, bound_ms: int) -> None:
        self.bound_ms = bound_ms
        self.max_seen: dict[Hashable, int] = {}

    def observe(self, split: Hashable, ts_ms: int) -> bool:
        """True when the record is late on its split (the file, or a Kafka topic-partition)."""
        key = split
        prev = self.max_seen.get(key)
        if prev is not None and ts_ms < prev - self.bound_ms:
            return True
        if prev is None or ts_ms > prev:
            self.max_seen[key] = ts_ms
        return False
