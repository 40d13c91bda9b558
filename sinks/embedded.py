"""The sink as file mode embeds it: SQLite outbox and in-process sandbox tools under --state, plans run
concurrently on a private event loop that the Flink operator steps from its callbacks.

A Flink Python operator may emit only while Flink calls it (an element, a timer),
and has no end-of-input hook. So `submit` starts a plan and returns the plans
that finished meanwhile, blocking only while `max_pending` plans are unfinished;
`drain` finishes every plan in flight and returns them, for the operator's timers
(the final watermark's timer at the end of input, so nothing is left in flight).
No thread is started: everything runs on the thread Flink calls us on, so it also
works in PyFlink's thread mode (embedded in the JVM, where Python logging from a
thread of our own could fail).

`AGENT_SINK_MAX_IN_FLIGHT` (environment of the job; default 64) sets the plans in
flight. In-process tools answer without latency, so what concurrency buys here is
the outbox's group commit across the plans in flight.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Generic, TypeVar

from contracts.models import Action
from sinks.dispatcher import Dispatcher
from sinks.group_commit import OutboxWriter
from sinks.outbox import open_outbox
from sinks.plan_result import PlanResult
from sinks.plan_runner import PlanRunner
from sinks.sandbox import SandboxTools
from sinks.sandbox_service import SandboxService
from sinks.tools import InProcessClient

T = TypeVar("T")
ENV_MAX_IN_FLIGHT = "AGENT_SINK_MAX_IN_FLIGHT"
DEFAULT_MAX_IN_FLIGHT = 64


class EmbeddedSink(Generic[T]):
    """`T` is the caller's tag of a plan, handed back with its result."""

    def __init__(self, runner: PlanRunner, max_in_flight: int, max_pending: int | None = None) -> None:
        self.runner = runner
        self.max_pending = max_pending or 4 * max_in_flight
        self.loop = asyncio.new_event_loop()
        self.dispatcher: Dispatcher[tuple[T, list[Action], str], PlanResult] = Dispatcher(self._run, max_in_flight)

    async def _run(self, plan: tuple[T, list[Action], str], backlog: int) -> PlanResult:
        _, actions, envelope_ref = plan
        return await self.runner.run_plan(actions, envelope_ref, backlog=backlog)

    def __len__(self) -> int:
        return len(self.dispatcher)

    def submit(self, key: str, tag: T, actions: list[Action], envelope_ref: str) -> list[tuple[T, PlanResult]]:
        """Start a plan (after the earlier plans of `key`); the plans finished meanwhile."""
        async def step() -> None:
            self.dispatcher.submit(key, (tag, actions, envelope_ref), len(actions))
            await asyncio.sleep(0)  # one turn: plans in flight move on, their outbox ops commit together
            while len(self.dispatcher) >= self.max_pending:
                await self.dispatcher.wait()
        self.loop.run_until_complete(step())
        return self._completed()

    def drain(self) -> list[tuple[T, PlanResult]]:
        """Finish every plan in flight; all the plans finished since the last call."""
        self.loop.run_until_complete(self.dispatcher.drain())
        return self._completed()

    def _completed(self) -> list[tuple[T, PlanResult]]:
        return [(plan[0], result) for plan, result in self.dispatcher.take_completed()]

    def close(self) -> None:
        """Stop without finishing: a plan cut off here (the job was cancelled) is like one cut off by a crash,
        and its next delivery replays it from the outbox. Its results could not be emitted any more."""
        tasks = list(self.dispatcher.running)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()


def max_in_flight_from_env() -> int:
    value = os.environ.get(ENV_MAX_IN_FLIGHT, "").strip()
    if not value:
        return DEFAULT_MAX_IN_FLIGHT
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV_MAX_IN_FLIGHT} must be a positive integer, got {value!r}")
    return int(value)


def embedded_sink(state_dir: str) -> EmbeddedSink[object]:
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    client = InProcessClient(SandboxService(SandboxTools(state / "sandbox_tools.sqlite")))
    return EmbeddedSink(PlanRunner(OutboxWriter(open_outbox(state)), client), max_in_flight_from_env())
