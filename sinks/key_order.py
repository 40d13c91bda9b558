"""Which plan may start next: plans of one key in arrival order, one at a time; plans of different keys in
parallel, in arrival order of their turn. Pure logic (the dispatcher is its asyncio shell).

The key is the account: the job emits the plans of one account in event-time
order, and the sink keeps that order, so for one account a later plan never
overtakes an earlier one (a payment hold is never placed before the ticket of an
earlier breach of the same account, a replay never races its original).
"""
from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class KeyedQueue(Generic[T]):
    def __init__(self) -> None:
        self._waiting: dict[str, deque[T]] = {}  # per key: the plans behind the running (or ready) one
        self._ready: deque[tuple[str, T]] = deque()
        self._busy: set[str] = set()             # keys with a plan ready or running
        self._size = 0

    def __len__(self) -> int:
        """Plans not finished: waiting, ready and running."""
        return self._size

    def push(self, key: str, item: T) -> None:
        self._size += 1
        if key in self._busy:
            self._waiting.setdefault(key, deque()).append(item)
        else:
            self._busy.add(key)
            self._ready.append((key, item))

    def pop_ready(self) -> tuple[str, T] | None:
        """The next plan that may start, oldest first, or None."""
        return self._ready.popleft() if self._ready else None

    def done(self, key: str) -> None:
        """The running plan of `key` finished: the next plan of that key becomes ready."""
        self._size -= 1
        queue = self._waiting.get(key)
        if queue:
            self._ready.append((key, queue.popleft()))
            if not queue:
                del self._waiting[key]
        else:
            self._busy.discard(key)

    @property
    def ready(self) -> int:
        return len(self._ready)
