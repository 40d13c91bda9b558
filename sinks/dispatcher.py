"""Bounded in-flight execution: at most `max_in_flight` plans running at once (so at most that many tool calls
in flight), per-key order from `sinks.key_order`, results collected as plans finish.

Both sinks use it: the standalone one from its asyncio consumer loop, the
embedded one step by step from Flink's callbacks. A plan's own actions run one
after the other inside the plan (`sinks.plan_runner`), so the limit on plans is
the limit on calls. A run that raises (the outbox's database failed) is kept and
raised again from `take_completed`, so the owner stops instead of losing it.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, TypeVar

from sinks.key_order import KeyedQueue

T = TypeVar("T")
R = TypeVar("R")


class Dispatcher(Generic[T, R]):
    """`run(item, backlog)` executes one plan; `backlog` is the actions pending in the sink when it starts
    (its own included) plus what `lag()` adds (records not fetched yet), for the degrade policy."""

    def __init__(self, run: Callable[[T, int], Awaitable[R]], max_in_flight: int,
                 lag: Callable[[], int] = lambda: 0) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.run = run
        self.max_in_flight = max_in_flight
        self.lag = lag
        self.order: KeyedQueue[tuple[T, int]] = KeyedQueue()
        self.running: set[asyncio.Task[None]] = set()
        self.pending_actions = 0
        self._completed: list[tuple[T, R]] = []
        self._failure: BaseException | None = None
        self._progress = asyncio.Event()

    def __len__(self) -> int:
        """Plans submitted and not finished."""
        return len(self.order)

    def submit(self, key: str, item: T, actions: int) -> None:
        self.order.push(key, (item, actions))
        self.pending_actions += actions
        self._start_ready()

    def _start_ready(self) -> None:
        while len(self.running) < self.max_in_flight:
            ready = self.order.pop_ready()
            if ready is None:
                return
            key, (item, actions) = ready
            task = asyncio.get_running_loop().create_task(self._run(key, item, actions))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _run(self, key: str, item: T, actions: int) -> None:
        try:
            result = await self.run(item, self.pending_actions + self.lag())
        except BaseException as e:  # noqa: BLE001 - kept for the owner, who must stop
            if self._failure is None:
                self._failure = e
        else:
            self._completed.append((item, result))
        finally:
            self.pending_actions -= actions
            self.order.done(key)
            self._progress.set()
            self.running.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._start_ready()

    def take_completed(self) -> list[tuple[T, R]]:
        """The plans finished since the last call, in the order they finished."""
        if self._failure is not None:
            raise self._failure
        done, self._completed = self._completed, []
        return done

    async def wait(self, timeout_s: float | None = None) -> None:
        """Until the next plan finishes, or the timeout (at once when nothing runs)."""
        if not len(self) or self._failure is not None:
            return
        self._progress.clear()
        try:
            await asyncio.wait_for(self._progress.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass

    async def drain(self) -> None:
        """Until every submitted plan has finished."""
        while len(self) and self._failure is None:
            await self.wait()
