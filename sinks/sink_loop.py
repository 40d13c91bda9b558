"""The consumer loop of the standalone sink: fetch, run plans concurrently, send outputs, flush, commit.

The plans run on one asyncio loop. Kafka's client calls block (poll, flush, commit), so they
work on two threads of their own, and the loop only awaits them: the consumer
thread (poll, lag, commit: a consumer must stay on one thread) and the producer
thread (send, flush). Measured before this split, the loop spent a quarter of
its time waiting in polls and flushes while plans were ready to go on.

- A fetcher task polls while fewer than `max_pending` records are unfinished;
  once full, it polls again only when a quarter of `max_pending` is free (a
  low-water mark: each poll brings a batch, not the one record a finished plan
  made room for); when full for long, the partitions are paused and polling
  goes on, so the consumer stays in its group without fetching. Each record
  becomes a plan in the dispatcher (at most `max_in_flight` running,
  per-account order).
- When a plan finishes, its output records are handed to the producer thread.
- Every `flush_interval_s` (and whenever the sink runs dry) the producer is
  flushed and the offsets are committed up to the lowest record whose outputs
  are not all flushed (`sinks.offsets`); outputs sent after the flush began are
  not counted as flushed.

A crash anywhere redelivers every unfinished record; the outbox turns the
redelivery into replays at the tools, and the outputs of a redelivered record
are sent again (at-least-once on the output topics, each record keyed by
idempotency_key).
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, TypeVar

from contracts.records import Out
from sinks.dispatcher import Dispatcher
from sinks.observer import NULL, SinkObserver
from sinks.offsets import OffsetTracker
from sinks.record_handler import Message, Parsed, RecordHandler

TOPICS: dict[str, str] = {"receipts": "agent.receipts", "responses": "agent.responses",
                          "dlq": "ops.agent_dlq", "traces": "agent.traces"}
T = TypeVar("T")
PAUSE_AFTER_S = 30.0  # full this long: pause the partitions and poll only to stay in the group


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
                 poll_timeout_ms: int = 20, flush_interval_s: float = 0.05, tick_s: float = 0.01,
                 drain_timeout_s: float = 30.0, pause_after_s: float = PAUSE_AFTER_S,
                 clock: Callable[[], float] = time.monotonic, join_grace_s: float = 60.0,
                 observer: SinkObserver = NULL) -> None:
        self.source = source
        self.output = output
        self.handler = handler
        self.max_pending = max_pending or 4 * max_in_flight
        self.resume_room = max(1, self.max_pending // 4)  # free slots that end a full spell
        self.topics = dict(TOPICS if topics is None else topics)
        self.poll_timeout_ms = poll_timeout_ms
        self.flush_interval_s = flush_interval_s
        self.tick_s = tick_s
        self.pause_after_s = pause_after_s
        self.drain_timeout_s = drain_timeout_s
        self.clock = clock
        self.join_grace_s = join_grace_s
        self.observer = observer
        self.offsets = OffsetTracker()
        self.dispatcher: Dispatcher[Fetched, list[Out]] = Dispatcher(self._handle, max_in_flight,
                                                                      lag=lambda: self.last_lag)
        self.stats = LoopStats()
        self.stopping = False
        self.assigned = False
        self.last_lag = 0
        self._last_fetch = 0.0
        self._unflushed: list[float] = []  # fetch times of finished records, oldest first
        self._sends: list[Future[None]] = []
        self._consumer = ThreadPoolExecutor(1, thread_name_prefix="sink-consumer")
        self._producer = ThreadPoolExecutor(1, thread_name_prefix="sink-producer")

    async def _handle(self, fetched: Fetched, backlog: int) -> list[Out]:
        return await self.handler.handle(fetched.item, backlog=backlog)

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def _poll(self, room: int) -> tuple[list[Message], int, bool]:
        """On the consumer thread: the next records, the lag after them, whether we hold partitions."""
        msgs = self.source.poll(room, self.poll_timeout_ms)
        return msgs, self.source.lag(), self.source.assigned()

    async def _fetcher(self) -> None:
        full_since: float | None = None
        while not self.stopping:
            room = self.max_pending - len(self.dispatcher)
            if room < 1 or (full_since is not None and room < self.resume_room):
                # Full: fetch nothing until the low-water mark. Pausing would make the client drop what it
                # prefetched and fetch it again on resume (measured: a serial sink lost half its rate),
                # so pause only when full for long, to keep polling and stay in the group; the low-water
                # mark makes each resume fetch a batch, so a long stall ends in one resume, not one per plan.
                full_since = self.clock() if full_since is None else full_since
                if self.clock() - full_since >= self.pause_after_s:
                    await self._in(self._consumer, self._poll, 0)
                await self.dispatcher.wait(1.0)
                continue
            full_since = None
            msgs, lag, assigned = await self._in(self._consumer, self._poll, room)
            now = self.clock()
            for msg in msgs:
                item = self.handler.parse(msg)
                self.offsets.add((msg.topic, msg.partition), msg.offset)
                self.dispatcher.submit(item.order_key, Fetched(item, now), item.n_actions)
            self.last_lag, self.assigned = lag, assigned
            self.observer.lag(lag)
            if msgs:
                self._last_fetch = now

    def _send_all(self, batch: list[tuple[str, str | None, dict[str, Any]]]) -> None:
        for topic, key, rec in batch:
            self.output.send(topic, key, rec)

    def _emit(self) -> int:
        done = self.dispatcher.take_completed()
        batch = []
        for fetched, outs in done:
            for name, rec in outs:
                topic = self.topics.get(name)
                if topic:
                    batch.append((topic, rec.get("idempotency_key"), rec))
                    self.stats.outputs[topic] = self.stats.outputs.get(topic, 0) + 1
            msg = fetched.item.msg
            self.offsets.finish((msg.topic, msg.partition), msg.offset)
            self._unflushed.append(fetched.at)
        if batch:  # in order on the producer thread: a flush queued after these covers them
            self._sends.append(self._producer.submit(self._send_all, batch))
        if done:
            self.stats.last_progress = self.clock()
        return len(done)

    async def _flush_and_commit(self) -> None:
        covered = self.offsets.sent()
        sends, self._sends = self._sends, []
        await self._in(self._producer, self.output.flush)
        for fut in sends:
            fut.result()  # a send that raised fails the flush: nothing is committed
        self.stats.records += self.offsets.flushed(covered)
        now = self.clock()
        for at in self._unflushed[:covered]:
            self.observer.record_done(now - at)
        del self._unflushed[:covered]
        points = self.offsets.commit_points()
        if points:
            await self._in(self._consumer, self.source.commit, points)
            self.offsets.committed(points)
            self.stats.commits += 1
            self.stats.last_commit = now

    async def run(self, exit_when_idle_s: float | None = None) -> LoopStats:
        """Cycle until `stop()`, or until nothing arrived for `exit_when_idle_s` seconds (counted from when
        partitions were assigned, so a slow group join is not mistaken for idleness); then finish what runs."""
        started = last_work = last_flush = self.clock()
        fetcher = asyncio.get_running_loop().create_task(self._fetcher())
        try:
            while not self.stopping:
                if fetcher.done():
                    fetcher.result()  # the consumer failed: raise it
                    break
                await asyncio.sleep(self.tick_s)  # plans finish meanwhile; their outputs go out in one batch
                finished = self._emit()
                self._report()
                now = self.clock()
                if self._unflushed and (not len(self.dispatcher) or now - last_flush >= self.flush_interval_s):
                    await self._flush_and_commit()
                    last_flush = now
                joining = not self.assigned and now - started < self.join_grace_s
                if finished or len(self.dispatcher) or self._unflushed or joining or self._last_fetch > last_work:
                    last_work = max(now, self._last_fetch)
                elif exit_when_idle_s is not None and now - last_work >= exit_when_idle_s:
                    break
            self.stopping = True
            await fetcher  # no more records: what runs now is all there is to finish
            await self._finish()
        finally:
            self.stopping = True
            if not fetcher.done():
                fetcher.cancel()
            self._consumer.shutdown(wait=True)
            self._producer.shutdown(wait=True)
        return self.stats

    async def _finish(self) -> None:
        """Let the running plans end (bounded), send and flush their outputs, commit what is safe."""
        try:
            await asyncio.wait_for(self.dispatcher.drain(), self.drain_timeout_s)
        except asyncio.TimeoutError:
            pass  # still unfinished: not committed, so redelivered to whoever reads next
        self._emit()
        if self._unflushed:
            await self._flush_and_commit()

    def _report(self) -> None:
        d = self.dispatcher
        self.observer.in_flight(self.handler.runner.calls_in_flight, len(d), d.pending_actions)

    def stop(self) -> None:
        self.stopping = True
