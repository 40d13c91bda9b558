"""The degrade policy under backlog. Pure logic.

When more actions wait than the bound, the sink sheds the actions that are
cheap to skip (customer notices) and records them as `degraded` so an operator
can replay them; tickets and payment holds always go through. Nothing is
dropped silently: a degraded action still gets an outbox row, an action record
and a DLQ record. The backlog is what the sink really holds: the actions of every
record fetched and not finished (running or waiting for its account's turn) plus
the records of the input topic not fetched yet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEGRADABLE: frozenset[str] = frozenset({"SendNotice"})
Decision = Literal["execute", "degrade"]


@dataclass(frozen=True)
class DegradePolicy:
    """Skip `degradable` tools while more than `bound` actions are pending."""

    bound: int
    degradable: frozenset[str] = DEGRADABLE

    def decide(self, tool: str, pending: int) -> Decision:
        return "degrade" if tool in self.degradable and pending > self.bound else "execute"

    def reason(self, pending: int) -> str:
        return f"skipped under backlog: {pending} actions pending > bound {self.bound}"
