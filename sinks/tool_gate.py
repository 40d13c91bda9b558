"""Per-tool admission of calls: a concurrency limit, the tool's Retry-After pause, its circuit breaker.

Every tool call of the plan runner passes its tool's gate. The gate holds a call
until the tool may take it: a slot under the tool's own in-flight limit, the end
of a pause the tool asked for with 429 + Retry-After (one 429 pauses every call
to that tool, not only the one that got it), and a closed or probing circuit.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncIterator, Callable

from sinks.circuit import CircuitBreaker
from sinks.observer import NULL, SinkObserver

PROBE_POLL_S = 0.05        # how often a call waiting behind a half-open probe looks again
DEFAULT_THROTTLE_S = 1.0   # the pause after a 429 without Retry-After


class ToolGate:
    def __init__(self, tool: str, concurrency: int | None = None, breaker: CircuitBreaker | None = None,
                 observer: SinkObserver = NULL, clock: Callable[[], float] = time.monotonic) -> None:
        self.tool = tool
        self.limit = concurrency
        self._slots = asyncio.Semaphore(concurrency) if concurrency else None
        self.breaker = breaker or CircuitBreaker()
        self.observer = observer
        self.clock = clock
        self.paused_until = 0.0
        self._state = self.breaker.state

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Held for the duration of one call."""
        if self._slots is None:
            await self._admitted()
            yield
            return
        async with self._slots:
            await self._admitted()
            yield

    async def _admitted(self) -> None:
        while True:
            now = self.clock()
            wait = self.paused_until - now
            if wait <= 0:
                if self.breaker.try_enter(now):
                    self._report()
                    return
                wait = self.breaker.wait_s(now) or PROBE_POLL_S
            await asyncio.sleep(wait)

    def healthy(self) -> None:
        self.breaker.success()
        self._report()

    def unhealthy(self) -> None:
        self.breaker.failure(self.clock())
        self._report()

    def released(self) -> None:
        """The call ended without telling anything about the tool."""
        self.breaker.neutral()

    def throttled(self, retry_after_s: float | None) -> None:
        pause = DEFAULT_THROTTLE_S if retry_after_s is None else retry_after_s
        self.paused_until = max(self.paused_until, self.clock() + pause)
        self.breaker.neutral()

    def _report(self) -> None:
        if self.breaker.state != self._state:
            self._state = self.breaker.state
            self.observer.circuit(self.tool, self._state)


class ToolGates:
    """One gate per tool, made on first use with the shared settings."""

    def __init__(self, concurrency: dict[str, int] | None = None, failures_to_open: int = 5, open_s: float = 2.0,
                 observer: SinkObserver = NULL, clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrency = dict(concurrency or {})
        self.failures_to_open = failures_to_open
        self.open_s = open_s
        self.observer = observer
        self.clock = clock
        self._gates: dict[str, ToolGate] = {}

    def __getitem__(self, tool: str) -> ToolGate:
        gate = self._gates.get(tool)
        if gate is None:
            gate = self._gates[tool] = ToolGate(tool, self.concurrency.get(tool),
                                                CircuitBreaker(self.failures_to_open, self.open_s),
                                                self.observer, self.clock)
        return gate

    def states(self) -> dict[str, str]:
        return {tool: g.breaker.state for tool, g in sorted(self._gates.items())}
