"""The plan runner behind a blocking call: one plan at a time, on a private event loop.

For callers that want no asyncio of their own (the crash tests' driver process,
tests of the outbox, retry and saga rules, scripts). The concurrent sinks use
`sinks.plan_runner` directly through `sinks.dispatcher`; both run the same code.
"""
from __future__ import annotations

import asyncio
import random
from typing import Any, Awaitable, Callable, TypeVar

from contracts.models import Action, ToolReceipt
from sinks.backlog import DegradePolicy
from sinks.group_commit import OutboxWriter
from sinks.outbox import Outbox
from sinks.plan_result import ActionOutcome, PlanResult
from sinks.plan_runner import PlanRunner, RetryPolicy
from sinks.tool_gate import ToolGates
from sinks.tools import ToolClient

__all__ = ["ActionExecutor", "ActionOutcome", "PlanResult", "RetryPolicy"]
T = TypeVar("T")


class ActionExecutor:
    def __init__(self, outbox: Outbox, client: ToolClient, retry: RetryPolicy | None = None,
                 rng: random.Random | None = None, degrade: DegradePolicy | None = None,
                 after_call: Callable[[Action, ToolReceipt], None] | None = None,
                 gates: ToolGates | None = None) -> None:
        self.outbox = outbox
        self.client = client
        self.loop = asyncio.new_event_loop()
        self.runner = PlanRunner(OutboxWriter(outbox), client, retry, rng, degrade, gates, after_call=after_call)

    def execute_plan(self, actions: list[Action], envelope_ref: str, *, backlog: int = 0) -> PlanResult:
        return self.run(self.runner.run_plan(actions, envelope_ref, backlog=backlog))

    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine of this executor's runner (e.g. a record handler's) to its end."""
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        close: Any = getattr(self.client, "close", None)
        if close is not None:
            self.run(close())
        self.loop.close()
