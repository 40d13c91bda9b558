"""Executes one envelope's plan through the outbox: retries, receipts, degrade policy, saga compensation.

Exactly-once rests on three things: the outbox row is claimed before any call,
every call carries the action's idempotency key (so a re-send after a crash or
a retry after a lost answer is a replay at the tool), and the outbox's guarded
transitions let only one writer store the receipt. Whatever the outbox already
settled (receipted, failed, compensated, degraded, skipped) is replayed from
it, not redone, so re-running a plan reproduces its first outcome.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

from contracts.models import Action, ToolReceipt
from sinks.backlog import DegradePolicy
from sinks.outbox import Outbox, OutboxRow
from sinks.tools import PermanentToolError, ToolClient, TransientToolError, call_tool, compensate_tool

Status = Literal["executed", "replayed", "failed", "skipped", "compensated", "degraded"]
_SETTLED: dict[str, Status] = {"receipted": "replayed", "compensated": "compensated", "failed": "failed",
                               "degraded": "degraded", "skipped": "skipped"}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter on transient errors; none on permanent ones."""

    max_attempts: int = 5
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1))))


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


class ActionExecutor:
    """`after_call(action, receipt)` runs after a tool answered and before its receipt is written
    (an observability hook; the crash tests kill the process there)."""

    def __init__(self, outbox: Outbox, client: ToolClient, retry: RetryPolicy | None = None,
                 rng: random.Random | None = None, sleep: Callable[[float], None] = time.sleep,
                 degrade: DegradePolicy | None = None,
                 after_call: Callable[[Action, ToolReceipt], None] | None = None) -> None:
        self.outbox = outbox
        self.client = client
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.degrade = degrade
        self.after_call = after_call

    def execute_plan(self, actions: list[Action], envelope_ref: str, *, backlog: int = 0) -> PlanResult:
        """Run the actions in order; on a failure undo the done ones and skip the rest.

        `backlog` is the number of actions waiting in the sink (this plan's included);
        above the degrade policy's bound, degradable actions are skipped and recorded.
        """
        result = PlanResult()
        for i, action in enumerate(actions):
            row, _ = self.outbox.claim(action, envelope_ref)
            outcome = self._settle(action, row, backlog)
            result.outcomes.append(outcome)
            if outcome.status == "failed":
                self._compensate(result.outcomes[:-1])
                result.outcomes.extend(self._skip(a, envelope_ref, action.tool) for a in actions[i + 1:])
                break
        return result

    def _settle(self, action: Action, row: OutboxRow, backlog: int) -> ActionOutcome:
        if row.state in _SETTLED:
            return _from_row(action, row)
        if row.state == "pending" and self.degrade and self.degrade.decide(action.tool, backlog) == "degrade":
            reason = self.degrade.reason(backlog)
            if self.outbox.update(action.tool, action.idempotency_key, "degraded", error=reason):
                return ActionOutcome(action, "degraded", error=reason, envelope_ref=row.envelope_ref)
            return self._current(action)
        return self._execute(action, row.envelope_ref)

    def _execute(self, action: Action, envelope_ref: str) -> ActionOutcome:
        tool, key = action.tool, action.idempotency_key
        attempts = 0
        while True:
            attempts += 1
            if not self.outbox.update(tool, key, "sent", attempt=True):
                return self._current(action)  # another executor settled it meanwhile
            try:
                receipt = call_tool(self.client, action)
            except PermanentToolError as e:
                return self._fail(action, str(e), attempts, envelope_ref)
            except TransientToolError as e:
                if attempts >= self.retry.max_attempts:
                    return self._fail(action, f"gave up after {attempts} attempts, outcome at the tool "
                                              f"unknown (replay with the same key to settle it): {e}",
                                      attempts, envelope_ref)
                self.sleep(self.retry.delay(attempts, self.rng))
                continue
            if self.after_call is not None:
                self.after_call(action, receipt)
            if self.outbox.update(tool, key, "receipted", receipt=receipt):
                return ActionOutcome(action, "executed", receipt, attempts=attempts, new_receipt=True,
                                     envelope_ref=envelope_ref)
            return self._current(action)

    def _fail(self, action: Action, error: str, attempts: int, envelope_ref: str) -> ActionOutcome:
        if self.outbox.update(action.tool, action.idempotency_key, "failed", error=error):
            return ActionOutcome(action, "failed", error=error, attempts=attempts, envelope_ref=envelope_ref)
        return self._current(action)

    def _skip(self, action: Action, envelope_ref: str, failed_tool: str) -> ActionOutcome:
        row, _ = self.outbox.claim(action, envelope_ref)
        if row.state in _SETTLED:
            return _from_row(action, row)
        error = f"not attempted: {failed_tool} failed"
        self.outbox.update(action.tool, action.idempotency_key, "skipped", error=error)
        return ActionOutcome(action, "skipped", error=error, envelope_ref=row.envelope_ref)

    def _current(self, action: Action) -> ActionOutcome:
        row = self.outbox.get(action.tool, action.idempotency_key)
        assert row is not None and row.state in _SETTLED, row
        return _from_row(action, row)

    def _compensate(self, done: list[ActionOutcome]) -> None:
        """Undo, newest first, every action of the plan that has a receipt (saga)."""
        for o in reversed(done):
            if o.receipt is None or o.status not in ("executed", "replayed"):
                continue
            receipt, known = o.receipt, o.error
            try:
                comp = self._with_retries(lambda: compensate_tool(self.client, o.action, receipt))
            except (PermanentToolError, TransientToolError) as e:
                comp, o.error = None, f"compensation failed: {e}"
            else:
                if comp is None:
                    o.error = f"{o.action.tool} cannot be compensated"
            if comp is None:
                if o.error != known:  # news for the operator (a replay of the same plan reports nothing new)
                    o.fresh = True
                    self.outbox.note(o.action.tool, o.action.idempotency_key, o.error or "")
                continue
            self.outbox.update(o.action.tool, o.action.idempotency_key, "compensated", compensation=comp)
            row = self.outbox.get(o.action.tool, o.action.idempotency_key)
            o.status, o.compensation, o.fresh = "compensated", (row.compensation if row else None) or comp, True

    def _with_retries(self, call: Callable[[], ToolReceipt | None]) -> ToolReceipt | None:
        attempts = 0
        while True:
            attempts += 1
            try:
                return call()
            except TransientToolError:
                if attempts >= self.retry.max_attempts:
                    raise
                self.sleep(self.retry.delay(attempts, self.rng))


def _from_row(action: Action, row: OutboxRow) -> ActionOutcome:
    return ActionOutcome(action, _SETTLED[row.state], row.receipt, row.error, row.attempts, row.compensation,
                         fresh=False, envelope_ref=row.envelope_ref)
