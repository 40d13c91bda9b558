"""Group commit of the outbox: the ops that concurrent plans issue in one event-loop turn share one transaction.

A plan awaits its op's result, and gets it only after the batch has committed:
so a tool is never called before its claim is durable, while a thousand actions
in flight cost a few commits per turn instead of three each. The batch runs
inline on the event loop (SQLite in WAL mode commits in tens of microseconds
without fsync; PostgreSQL sends a batch as one pipeline), which needs no thread:
the embedded sink runs inside Flink's Python, where a thread of our own would
be one more thing that must never log.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

from sinks.observer import NULL, SinkObserver
from sinks.outbox import Applied, Op, Outbox


class OutboxWriter:
    def __init__(self, outbox: Outbox, observer: SinkObserver = NULL, max_batch: int = 1024,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.outbox = outbox
        self.observer = observer
        self.max_batch = max_batch
        self.clock = clock
        self._queue: list[tuple[Op, asyncio.Future[Applied]]] = []
        self._scheduled = False

    async def apply(self, op: Op) -> Applied:
        """The op's result, once the batch holding it has committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Applied] = loop.create_future()
        self._queue.append((op, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
        self._scheduled = bool(self._queue)
        if self._scheduled:
            asyncio.get_running_loop().call_soon(self._flush)
        started = self.clock()
        try:
            results = self.outbox.apply([op for op, _ in batch])
        except Exception as e:  # the database failed: every plan in the batch sees it
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        self.observer.outbox_batch(len(batch), self.clock() - started)
        for (_, fut), result in zip(batch, results):
            if not fut.done():  # a cancelled plan no longer waits; its op is committed all the same
                fut.set_result(result)
