"""What running a plan produced: one outcome per action, and what of it is news. Pure data.

`fresh` and `new_receipt` say which outcomes this run settled itself (their action,
DLQ and receipt records are due now) and which it read back from the outbox (a
replay: its trace and response only), so each receipt is emitted once however often
a plan is re-run.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from contracts.models import Action, ToolReceipt
from sinks.outbox import OutboxRow

Status = Literal["executed", "replayed", "failed", "skipped", "compensated", "degraded"]
SETTLED: dict[str, Status] = {"receipted": "replayed", "compensated": "compensated", "failed": "failed",
                              "degraded": "degraded", "skipped": "skipped"}


@dataclass
class ActionOutcome:
    action: Action
    status: Status
    receipt: ToolReceipt | None = None
    error: str | None = None
    attempts: int = 0
    compensation: ToolReceipt | None = None
    fresh: bool = True           # reached by this call: its action/DLQ records are due now
    new_receipt: bool = False    # the receipt was obtained by this call: its receipt record is due now
    envelope_ref: str | None = None  # the envelope that first claimed this action


@dataclass
class PlanResult:
    outcomes: list[ActionOutcome] = field(default_factory=list)

    @property
    def receipts(self) -> list[ToolReceipt]:
        return [o.receipt for o in self.outcomes if o.receipt is not None]

    @property
    def new_receipts(self) -> list[ToolReceipt]:
        return [o.receipt for o in self.outcomes if o.receipt is not None and o.new_receipt]

    @property
    def all_replayed(self) -> bool:
        """Every outcome was read back from the outbox: a duplicate of an already handled plan."""
        return bool(self.outcomes) and all(not o.fresh for o in self.outcomes)

    @property
    def degraded_only(self) -> bool:
        return bool(self.outcomes) and all(o.status == "degraded" for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return all(o.status in ("executed", "replayed", "degraded") for o in self.outcomes)

    def redelivered(self, envelope_ref: str) -> PlanResult:
        """This result as the first delivery of `envelope_ref` would have reported it.

        When the same source record comes back (its outputs were never committed),
        what that record itself settled earlier is due again, not a duplicate.
        """
        def first(o: ActionOutcome) -> ActionOutcome:
            if o.fresh or o.envelope_ref != envelope_ref:
                return o
            status: Status = "executed" if o.status == "replayed" else o.status
            return replace(o, status=status, fresh=True,
                           new_receipt=o.receipt is not None and status in ("executed", "compensated"))
        return PlanResult([first(o) for o in self.outcomes])


def from_row(action: Action, row: OutboxRow) -> ActionOutcome:
    return ActionOutcome(action, SETTLED[row.state], row.receipt, row.error, row.attempts, row.compensation,
                         fresh=False, envelope_ref=row.envelope_ref)
