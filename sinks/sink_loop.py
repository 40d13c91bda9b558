"""The consumer loop of the standalone sink: fetch, run plans concurrently, send outputs, flush, commit.

One asyncio loop does everything. Records are fetched while fewer than
`max_pending` are unfinished (beyond that the partitions are paused, so the
consumer stays in its group without fetching); each becomes a plan in the
dispatcher (at most `max_in_flight` running, per-account order). When a plan
finishes, its output records are sent; every `flush_interval_s` (and whenever
the sink runs dry) the producer is flushed and the offsets are committed up to
the lowest record whose outputs are not all flushed (`sinks.offsets`). A crash
anywhere redelivers every unfinished record; the outbox turns the redelivery
into replays at the tools, and the outputs of a redelivered record are sent
again (at-least-once on the output topics, each record keyed by idempotency_key).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from contracts.records import Out
from sinks.dispatcher import Dispatcher
from sinks.observer import NULL, SinkObserver
from sinks.offsets import OffsetTracker
from sinks.record_handler import Message, Parsed, RecordHandler

TOPICS: dict[str, str] = {"receipts": "agent.receipts", "responses": "agent.responses",
                          "dlq": "ops.agent_dlq", "traces": "agent.traces"}
LAG_REFRESH_S = 0.5


class Source(Protocol):
    def assigned(self) -> bool: ...  # False while the consumer group has not given us partitions yet
    def poll(self, max_records: int, timeout_ms: int) -> list[Message]: ...  # max_records < 1: pause, keep alive
    def lag(self) -> int: ...
    def commit(self, points: dict[Any, int]) -> None: ...  # (topic, partition) -> next offset to read


class Output(Protocol):
    def send(self, topic: str, key: str | None, value: dict[str, Any]) -> None: ...
    def flush(self) -> None: ...  # raises if any send since the last flush failed


@dataclass
class LoopStats:
    records: int = 0                 # records whose outputs were flushed
    outputs: dict[str, int] = field(default_factory=dict)
    commits: int = 0
    last_progress: float = 0.0       # clock time of the last finished plan
    last_commit: float = 0.0


@dataclass(frozen=True)
class Fetched:
    item: Parsed
    at: float


class SinkLoop:
    def __init__(self, source: Source, output: Output, handler: RecordHandler, max_in_flight: int,
                 max_pending: int | None = None, topics: dict[str, str] | None = None,
                 poll_timeout_ms: int = 100, flush_interval_s: float = 0.05, tick_s: float = 0.005,
                 drain_timeout_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 join_grace_s: float = 60.0, observer: SinkObserver = NULL) -> None:
        self.source = source
        self.output = output
        self.handler = handler
        self.max_pending = max_pending or 4 * max_in_flight
        self.topics = dict(TOPICS if topics is None else topics)
        self.poll_timeout_ms = poll_timeout_ms
        self.flush_interval_s = flush_interval_s
        self.tick_s = tick_s
        self.drain_timeout_s = drain_timeout_s
        self.clock = clock
        self.join_grace_s = join_grace_s
        self.observer = observer
        self.offsets = OffsetTracker()
        self.dispatcher: Dispatcher[Fetched, list[Out]] = Dispatcher(self._handle, max_in_flight,
                                                                      lag=lambda: self.last_lag)
        self.stats = LoopStats()
        self.stopping = False
        self.last_lag = 0
        self._lag_at = float("-inf")
        self._unflushed: list[float] = []  # fetch times of finished records not flushed yet

    async def _handle(self, fetched: Fetched, backlog: int) -> list[Out]:
        return await self.handler.handle(fetched.item, backlog=backlog)

    def _fetch(self) -> int:
        now = self.clock()
        msgs = self.source.poll(self.max_pending - len(self.dispatcher),
                                0 if len(self.dispatcher) else self.poll_timeout_ms)
        for msg in msgs:
            item = self.handler.parse(msg)
            self.offsets.add((msg.topic, msg.partition), msg.offset)
            self.dispatcher.submit(item.order_key, Fetched(item, now), item.n_actions)
        if msgs or now - self._lag_at >= LAG_REFRESH_S:
            self.last_lag, self._lag_at = self.source.lag(), now
            self.observer.lag(self.last_lag)
        return len(msgs)

    def _emit(self) -> int:
        done = self.dispatcher.take_completed()
        for fetched, outs in done:
            for name, rec in outs:
                topic = self.topics.get(name)
                if topic:
                    self.output.send(topic, rec.get("idempotency_key"), rec)
                    self.stats.outputs[topic] = self.stats.outputs.get(topic, 0) + 1
            msg = fetched.item.msg
            self.offsets.finish((msg.topic, msg.partition), msg.offset)
            self._unflushed.append(fetched.at)
        if done:
            self.stats.last_progress = self.clock()
        return len(done)

    def _flush_and_commit(self) -> None:
        self.output.flush()
        self.stats.records += self.offsets.flushed()
        now = self.clock()
        for at in self._unflushed:
            self.observer.record_done(now - at)
        self._unflushed = []
        points = self.offsets.commit_points()
        if points:
            self.source.commit(points)
            self.offsets.committed(points)
            self.stats.commits += 1
            self.stats.last_commit = now

    async def run(self, exit_when_idle_s: float | None = None) -> LoopStats:
        """Cycle until `stop()`, or until nothing arrived for `exit_when_idle_s` seconds (counted from when
        partitions were assigned, so a slow group join is not mistaken for idleness); then finish what runs."""
        started = last_work = last_flush = self.clock()
        while not self.stopping:
            fetched = self._fetch()
            if len(self.dispatcher):
                await self.dispatcher.wait(self.tick_s)
            else:
                await asyncio.sleep(0)  # let the status endpoint answer between idle polls
            finished = self._emit()
            self._report()
            now = self.clock()
            if self._unflushed and (not len(self.dispatcher) or now - last_flush >= self.flush_interval_s):
                self._flush_and_commit()
                last_flush = now
            joining = not self.source.assigned() and now - started < self.join_grace_s
            if fetched or finished or len(self.dispatcher) or joining:
                last_work = now
            elif exit_when_idle_s is not None and now - last_work >= exit_when_idle_s:
                break
        await self._finish()
        return self.stats

    async def _finish(self) -> None:
        """Let the running plans end (bounded), send and flush their outputs, commit what is safe."""
        try:
            await asyncio.wait_for(self.dispatcher.drain(), self.drain_timeout_s)
        except asyncio.TimeoutError:
            pass  # still unfinished: not committed, so redelivered to whoever reads next
        self._emit()
        if self._unflushed:
            self._flush_and_commit()

    def _report(self) -> None:
        d = self.dispatcher
        self.observer.in_flight(self.handler.runner.calls_in_flight, len(d), d.pending_actions)

    def stop(self) -> None:
        self.stopping = True
