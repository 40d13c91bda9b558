"""Which input offsets the sink may commit: only below the lowest record whose outputs are not all flushed.
Pure logic.

Records of one partition finish out of order when their plans run concurrently.
Committing offset N tells Kafka every record below N is done, so a crash can only
ever redeliver (and the outbox replay) unfinished records, never skip one: per
partition the commit point is the lowest offset fetched and not yet safe, or one
past the highest offset seen when all are safe. A record is safe once its outputs
were sent and the producer flushed them. The same offset may be fetched twice (a
rebalance hands back uncommitted records while the first copy still runs); each
copy must finish.
"""
from __future__ import annotations

import heapq
from collections import Counter
from typing import Hashable


class _Partition:
    def __init__(self) -> None:
        self.unsafe: Counter[int] = Counter()  # offset -> copies fetched and not yet safe
        self.heap: list[int] = []              # the same offsets, for the minimum (stale entries skipped)
        self.next = 0                          # one past the highest offset seen
        self.committed: int | None = None

    def point(self) -> int:
        while self.heap and not self.unsafe[self.heap[0]]:
            heapq.heappop(self.heap)
        return self.heap[0] if self.heap else self.next


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[Hashable, _Partition] = {}
        self._finished: list[tuple[Hashable, int]] = []  # outputs sent, not flushed yet

    def add(self, tp: Hashable, offset: int) -> None:
        """A record was fetched: unsafe until its outputs are flushed."""
        p = self._parts.get(tp)
        if p is None:  # the first fetched offset is where the group's committed offset already stands
            p = self._parts[tp] = _Partition()
            p.committed = offset
        if not p.unsafe[offset]:
            heapq.heappush(p.heap, offset)
        p.unsafe[offset] += 1
        p.next = max(p.next, offset + 1)

    def finish(self, tp: Hashable, offset: int) -> None:
        """The record's outputs were all sent (the producer may still hold them)."""
        self._finished.append((tp, offset))

    def sent(self) -> int:
        """Records finished so far (outputs sent, not known to be flushed): what a flush begun now covers."""
        return len(self._finished)

    def flushed(self, count: int | None = None) -> int:
        """The producer flushed: the first `count` finished records (all by default) are safe now.
        Returns how many became safe."""
        count = len(self._finished) if count is None else count
        done, self._finished = self._finished[:count], self._finished[count:]
        for tp, offset in done:
            p = self._parts[tp]
            if p.unsafe[offset] <= 0:
                raise ValueError(f"offset {offset} of {tp} finished more often than fetched")
            p.unsafe[offset] -= 1
        return len(done)

    def commit_points(self) -> dict[Hashable, int]:
        """Per partition, the offset to commit where it moved past the last commit."""
        out = {}
        for tp, p in self._parts.items():
            point = p.point()
            if p.committed is None or point > p.committed:
                out[tp] = point
        return out

    def committed(self, points: dict[Hashable, int]) -> None:
        for tp, point in points.items():
            p = self._parts[tp]
            p.committed = point if p.committed is None else max(p.committed, point)
