"""Runs one envelope's plan through the outbox, in order: retries, receipts, degrade policy, saga compensation.

This is the sink's core, as coroutines: many plans run at once on one event loop
(`sinks.dispatcher` decides which), each plan's actions strictly one after the other.

Exactly-once rests on three things: the outbox row is claimed, and committed,
before any call (`sinks.group_commit`); every call carries the action's
idempotency key (so a re-send after a crash or a retry after a lost answer is a
replay at the tool); and the outbox's guarded transitions let only one writer
store the receipt. Whatever the outbox already settled (receipted, failed,
compensated, degraded, skipped) is replayed from it, not redone, so re-running a
plan reproduces its first outcome.

Retries: transient errors (timeouts, dropped connections, 5xx, 408/409/425) spend
the attempt budget with exponential backoff and full jitter; a 429 spends none and
waits the tool's Retry-After (its gate pauses every call to that tool); an open
circuit spends none either (`sinks.tool_gate`).
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

from contracts.models import Action, ToolReceipt
from sinks.backlog import DegradePolicy
from sinks.group_commit import OutboxWriter
from sinks.observer import NULL, SinkObserver
from sinks.outbox import Applied, Claim, Move, Note, OutboxRow
from sinks.plan_result import SETTLED, ActionOutcome, PlanResult, from_row
from sinks.tool_gate import ToolGates
from sinks.tools import (COMPENSATION_BODY, COMPENSATION_PREFIX, InProgressToolError, PermanentToolError,
                         ThrottledToolError, ToolClient, TransientToolError, call_tool, compensation_for,
                         compensation_receipt)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter on transient errors; none on permanent ones."""

    max_attempts: int = 5
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1))))


class _Settled(Exception):
    """Another executor settled the action between two attempts."""

    def __init__(self, row: OutboxRow | None) -> None:
        super().__init__("settled elsewhere")
        self.row = row


class _GaveUp(Exception):
    def __init__(self, attempts: int, last: TransientToolError) -> None:
        super().__init__(f"gave up after {attempts} attempts")
        self.attempts, self.last = attempts, last


class PlanRunner:
    """`after_call(action, receipt)` runs after a tool answered and before its receipt is written
    (an observability hook; the crash tests kill the process there)."""

    def __init__(self, writer: OutboxWriter, client: ToolClient, retry: RetryPolicy | None = None,
                 rng: random.Random | None = None, degrade: DegradePolicy | None = None,
                 gates: ToolGates | None = None, observer: SinkObserver = NULL,
                 after_call: Callable[[Action, ToolReceipt], None] | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.writer = writer
        self.client = client
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.degrade = degrade
        self.gates = gates or ToolGates(observer=observer)
        self.observer = observer
        self.after_call = after_call
        self.sleep = sleep
        self.clock = clock
        self.calls_in_flight = 0

    async def run_plan(self, actions: list[Action], envelope_ref: str, *, backlog: int = 0) -> PlanResult:
        """Run the actions in order; on a failure undo the done ones and skip the rest.

        `backlog` is the number of actions waiting in the sink (this plan's included);
        above the degrade policy's bound, degradable actions are skipped and recorded.
        """
        result = PlanResult()
        for i, action in enumerate(actions):
            outcome = await self._settle(action, envelope_ref, backlog)
            result.outcomes.append(outcome)
            if outcome.status == "failed":
                await self._compensate(result.outcomes[:-1])
                for rest in actions[i + 1:]:
                    result.outcomes.append(await self._skip(rest, envelope_ref, action.tool))
                break
        for o in result.outcomes:
            self.observer.action(o.action.tool, o.status)
        return result

    async def _settle(self, action: Action, envelope_ref: str, backlog: int) -> ActionOutcome:
        reason = None
        if self.degrade and self.degrade.decide(action.tool, backlog) == "degrade":
            reason = self.degrade.reason(backlog)
        done = await self.writer.apply(Claim(action, envelope_ref, "degraded" if reason else "sent", reason))
        row = _present(done)
        if row.state == "sent":
            return await self._execute(action, row)
        if row.state == "degraded" and done.moved:
            return ActionOutcome(action, "degraded", error=reason, envelope_ref=row.envelope_ref)
        return from_row(action, row)

    async def _execute(self, action: Action, row: OutboxRow) -> ActionOutcome:
        tool, key = action.tool, action.idempotency_key
        calls = [0]

        async def again() -> None:
            done = await self.writer.apply(Move(tool, key, "sent", attempt=True))
            if not done.moved:
                raise _Settled(done.row)

        try:
            receipt = await self._retrying(tool, lambda: call_tool(self.client, action), again, calls)
        except _Settled as s:
            return from_row(action, _present(Applied(s.row)))
        except PermanentToolError as e:
            return await self._fail(action, str(e), calls[0], row.envelope_ref)
        except _GaveUp as g:
            return await self._fail(action, f"gave up after {g.attempts} attempts, outcome at the tool unknown "
                                            f"(replay with the same key to settle it): {g.last}",
                                    calls[0], row.envelope_ref)
        if self.after_call is not None:
            self.after_call(action, receipt)
        done = await self.writer.apply(Move(tool, key, "receipted", receipt=receipt))
        if done.moved:
            return ActionOutcome(action, "executed", receipt, attempts=calls[0], new_receipt=True,
                                 envelope_ref=row.envelope_ref)
        return from_row(action, _present(done))  # another executor stored its receipt first

    async def _retrying(self, tool: str, call: Callable[[], Awaitable[T]],
                        again: Callable[[], Awaitable[None]] | None = None, calls: list[int] | None = None) -> T:
        """Call until an answer, a permanent error, or the attempt budget is spent (`_GaveUp`). `again()` runs
        before every call after the first (the outbox records the attempt) and raises `_Settled` to stop."""
        calls = calls if calls is not None else [0]
        attempts = 0
        while True:
            if calls[0] and again is not None:
                await again()
            calls[0] += 1
            attempts += 1
            try:
                return await self._attempt(tool, call)
            except ThrottledToolError:
                attempts -= 1  # the tool did nothing and asked us to wait; its gate makes every call wait
            except TransientToolError as e:
                if attempts >= self.retry.max_attempts:
                    raise _GaveUp(attempts, e) from None
                self.observer.retry(tool)
                await self.sleep(self.retry.delay(attempts, self.rng))

    async def _attempt(self, tool: str, call: Callable[[], Awaitable[T]]) -> T:
        """One call through the tool's gate, its result told to the gate and the metrics."""
        gate = self.gates[tool]
        async with gate.slot():
            self.calls_in_flight += 1
            started = self.clock()
            result = "ok"
            try:
                return await call()
            except ThrottledToolError as e:
                result = "throttled"
                gate.throttled(e.retry_after_s)
                raise
            except InProgressToolError:
                result = "in_progress"
                raise
            except PermanentToolError:
                result = "permanent"
                raise
            except TransientToolError:
                result = "transient"
                gate.unhealthy()
                raise
            except BaseException:
                result = "error"
                gate.released()  # a bug, or the plan cancelled: no evidence about the tool
                raise
            finally:
                self.calls_in_flight -= 1
                if result in ("ok", "in_progress", "permanent"):
                    gate.healthy()
                self.observer.call(tool, result, self.clock() - started)

    async def _fail(self, action: Action, error: str, attempts: int, envelope_ref: str) -> ActionOutcome:
        done = await self.writer.apply(Move(action.tool, action.idempotency_key, "failed", error=error))
        if done.moved:
            return ActionOutcome(action, "failed", error=error, attempts=attempts, envelope_ref=envelope_ref)
        return from_row(action, _present(done))

    async def _skip(self, action: Action, envelope_ref: str, failed_tool: str) -> ActionOutcome:
        error = f"not attempted: {failed_tool} failed"
        done = await self.writer.apply(Claim(action, envelope_ref, "skipped", error))
        row = _present(done)
        if not done.moved and row.state in SETTLED:
            return from_row(action, row)
        return ActionOutcome(action, "skipped", error=error, envelope_ref=row.envelope_ref)

    async def _compensate(self, done: list[ActionOutcome]) -> None:
        """Undo, newest first, every action of the plan that has a receipt (saga)."""
        for o in reversed(done):
            if o.receipt is None or o.status not in ("executed", "replayed"):
                continue
            receipt, known = o.receipt, o.error
            undo = compensation_for(o.action, receipt)
            comp: ToolReceipt | None = undo if isinstance(undo, ToolReceipt) else None
            if isinstance(undo, str):
                key = COMPENSATION_PREFIX + o.action.idempotency_key
                try:
                    resp = await self._retrying(o.action.tool, lambda: self.client.post(undo, COMPENSATION_BODY, key))
                except PermanentToolError as e:
                    o.error = f"compensation failed: {e}"
                except _GaveUp as g:
                    o.error = f"compensation failed: {g.last}"
                else:
                    comp = compensation_receipt(o.action, receipt, resp)
            elif undo is None:
                o.error = f"{o.action.tool} cannot be compensated"
            if comp is None:
                if o.error != known:  # news for the operator (a replay of the same plan reports nothing new)
                    o.fresh = True
                    await self.writer.apply(Note(o.action.tool, o.action.idempotency_key, o.error or ""))
                continue
            row = _present(await self.writer.apply(
                Move(o.action.tool, o.action.idempotency_key, "compensated", compensation=comp)))
            o.status, o.compensation, o.fresh = "compensated", row.compensation or comp, True


def _present(done: Applied) -> OutboxRow:
    assert done.row is not None, "an outbox op on an action it had claimed found no row"
    return done.row
