"""Executes one envelope's plan through the outbox: retries, receipts, saga compensation."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

from contracts.models import Action, ToolReceipt
from sinks.outbox import SqliteOutbox
from sinks.tools import PermanentToolError, ToolClient, TransientToolError, call_tool, compensate_tool

Status = Literal["executed", "replayed", "failed", "skipped", "compensated"]


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


@dataclass
class PlanResult:
    outcomes: list[ActionOutcome] = field(default_factory=list)

    @property
    def receipts(self) -> list[ToolReceipt]:
        return [o.receipt for o in self.outcomes if o.receipt is not None]

    @property
    def new_receipts(self) -> list[ToolReceipt]:
        return [o.receipt for o in self.outcomes if o.receipt is not None and o.status == "executed"]

    @property
    def all_replayed(self) -> bool:
        return bool(self.outcomes) and all(o.status == "replayed" for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return all(o.status in ("executed", "replayed") for o in self.outcomes)


class ActionExecutor:
    def __init__(self, outbox: SqliteOutbox, client: ToolClient, retry: RetryPolicy | None = None,
                 rng: random.Random | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.outbox = outbox
        self.client = client
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.sleep = sleep

    def execute_plan(self, actions: list[Action], envelope_ref: str) -> PlanResult:
        """Run the actions in order; on a permanent failure undo the done ones and skip the rest."""
        result = PlanResult()
        for i, action in enumerate(actions):
            row, _ = self.outbox.claim(action, envelope_ref)
            if row.state == "receipted" and row.receipt is not None:
                result.outcomes.append(ActionOutcome(action, "replayed", row.receipt, attempts=row.attempts))
                continue
            if row.state == "compensated":
                result.outcomes.append(ActionOutcome(action, "compensated", row.receipt, row.error,
                                                     row.attempts, row.compensation))
                continue
            outcome = self._execute(action)
            result.outcomes.append(outcome)
            if outcome.status == "failed":
                self._compensate(result.outcomes[:-1])
                result.outcomes.extend(ActionOutcome(a, "skipped", error=f"not attempted: {action.tool} failed")
                                       for a in actions[i + 1:])
                break
        return result

    def _execute(self, action: Action) -> ActionOutcome:
        attempts = 0
        while True:
            attempts += 1
            self.outbox.update(action.tool, action.idempotency_key, "sent", attempt=True)
            try:
                receipt = call_tool(self.client, action)
            except PermanentToolError as e:
                return self._fail(action, str(e), attempts)
            except TransientToolError as e:
                if attempts >= self.retry.max_attempts:
                    return self._fail(action, f"gave up after {attempts} attempts: {e}", attempts)
                self.sleep(self.retry.delay(attempts, self.rng))
                continue
            self.outbox.update(action.tool, action.idempotency_key, "receipted", receipt=receipt)
            return ActionOutcome(action, "executed", receipt, attempts=attempts)

    def _fail(self, action: Action, error: str, attempts: int) -> ActionOutcome:
        self.outbox.update(action.tool, action.idempotency_key, "failed", error=error)
        return ActionOutcome(action, "failed", error=error, attempts=attempts)

    def _compensate(self, done: list[ActionOutcome]) -> None:
        for o in reversed(done):
            if o.receipt is None or o.status not in ("executed", "replayed"):
                continue
            try:
                comp = compensate_tool(self.client, o.action, o.receipt)
            except (PermanentToolError, TransientToolError) as e:
                o.error = f"compensation failed: {e}"
                continue
            if comp is None:
                o.error = f"{o.action.tool} cannot be compensated"
                continue
            self.outbox.update(o.action.tool, o.action.idempotency_key, "compensated", compensation=comp)
            o.status, o.compensation = "compensated", comp
