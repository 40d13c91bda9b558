"""The degrade policy under backlog, and the bounded in-flight queue it reads. Pure logic.

When more actions wait than the bound, the sink sheds the actions that are
cheap to skip (customer notices) and records them as `degraded` so an operator
can replay them; tickets and payment holds always go through. Nothing is
dropped silently: a degraded action still gets an outbox row, an action record
and a DLQ record.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

DEGRADABLE: frozenset[str] = frozenset({"SendNotice"})
Decision = Literal["execute", "degrade"]
T = TypeVar("T")


@dataclass(frozen=True)
class DegradePolicy:
    """Skip `degradable` tools while more than `bound` actions are pending."""

    bound: int
    degradable: frozenset[str] = DEGRADABLE

    def decide(self, tool: str, pending: int) -> Decision:
        return "degrade" if tool in self.degradable and pending > self.bound else "execute"

    def reason(self, pending: int) -> str:
        return f"skipped under backlog: {pending} actions pending > bound {self.bound}"


class InFlight(Generic[T]):
    """A FIFO of fetched-but-unhandled records, at most `capacity` long, counting their actions."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: deque[tuple[T, int]] = deque()
        self._actions = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def pending_actions(self) -> int:
        return self._actions

    def room(self) -> int:
        return self.capacity - len(self._items)

    def push(self, item: T, actions: int) -> None:
        if not self.room():
            raise OverflowError("in-flight queue is full")
        self._items.append((item, actions))
        self._actions += actions

    def pop(self) -> tuple[T, int]:
        """The oldest item and the actions pending at that moment (its own included)."""
        pending = self._actions
        item, actions = self._items.popleft()
        self._actions -= actions
        return item, pending
