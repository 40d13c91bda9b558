"""The consumer loop of the standalone sink, written against small Source/Output interfaces.

Per batch: fetch at most `room` records into the bounded in-flight queue,
handle them in order (the degrade policy sees the actions still queued plus the
consumer lag), send every output record, flush, and only then commit the
input offsets. A crash anywhere before the commit redelivers the batch; the
outbox turns the redelivery into replays at the tools, and the outputs of a
redelivered record are sent again (at-least-once on the output topics, each
record keyed by idempotency_key).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sinks.backlog import InFlight
from sinks.record_handler import Message, Parsed, RecordHandler

TOPICS: dict[str, str] = {"receipts": "agent.receipts", "responses": "agent.responses",
                          "dlq": "ops.agent_dlq", "traces": "agent.traces"}


class Source(Protocol):
    def assigned(self) -> bool: ...  # False while the consumer group has not given us partitions yet
    def poll(self, max_records: int, timeout_ms: int) -> list[Message]: ...
    def lag(self) -> int: ...
    def commit(self, messages: list[Message]) -> None: ...


class Output(Protocol):
    def send(self, topic: str, key: str | None, value: dict[str, Any]) -> None: ...
    def flush(self) -> None: ...  # raises if any send since the last flush failed


@dataclass
class LoopStats:
    records: int = 0
    outputs: dict[str, int] = field(default_factory=dict)
    commits: int = 0


class SinkLoop:
    def __init__(self, source: Source, output: Output, handler: RecordHandler, max_in_flight: int,
                 topics: dict[str, str] | None = None, poll_timeout_ms: int = 500,
                 clock: Callable[[], float] = time.monotonic, join_grace_s: float = 60.0) -> None:
        self.source = source
        self.output = output
        self.handler = handler
        self.inflight: InFlight[Parsed] = InFlight(max_in_flight)
        self.topics = dict(TOPICS if topics is None else topics)
        self.poll_timeout_ms = poll_timeout_ms
        self.clock = clock
        self.join_grace_s = join_grace_s
        self.stats = LoopStats()
        self.stopping = False

    def run_once(self) -> int:
        """One poll-handle-flush-commit cycle; the number of records handled."""
        for msg in self.source.poll(self.inflight.room(), self.poll_timeout_ms):
            item = self.handler.parse(msg)
            self.inflight.push(item, item.n_actions)
        handled: list[Message] = []
        while len(self.inflight):
            item, pending = self.inflight.pop()
            for name, rec in self.handler.handle(item, backlog=pending + self.source.lag()):
                topic = self.topics.get(name)
                if topic:
                    self.output.send(topic, rec.get("idempotency_key"), rec)
                    self.stats.outputs[topic] = self.stats.outputs.get(topic, 0) + 1
            handled.append(item.msg)
        if handled:
            self.output.flush()
            self.source.commit(handled)
            self.stats.records += len(handled)
            self.stats.commits += 1
        return len(handled)

    def run(self, exit_when_idle_s: float | None = None) -> LoopStats:
        """Cycle until `stop()`, or until nothing arrived for `exit_when_idle_s` seconds (counted
        from when partitions were assigned, so a slow group join is not mistaken for idleness)."""
        started = last_work = self.clock()
        while not self.stopping:
            joining = not self.source.assigned() and self.clock() - started < self.join_grace_s
            if self.run_once() or joining:
                last_work = self.clock()
            elif exit_when_idle_s is not None and self.clock() - last_work >= exit_when_idle_s:
                break
        return self.stats

    def stop(self) -> None:
        self.stopping = True
