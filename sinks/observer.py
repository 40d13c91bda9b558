"""What the sink tells its metrics: one hook per fact, a no-op by default.

The plan runner, tool gates, outbox writer and consumer loop call these hooks;
`sinks.metrics` turns them into Prometheus metrics in the standalone sink, and the
embedded sink (file mode) keeps the no-ops, as Flink counts its actions itself.
Label values are tool names, statuses and states from fixed vocabularies, never
payload data.
"""
from __future__ import annotations


class SinkObserver:
    def call(self, tool: str, result: str, seconds: float) -> None:
        """One tool call answered: `result` is ok, permanent, transient, throttled or in_progress."""

    def retry(self, tool: str) -> None:
        """A call is about to be retried after a transient error."""

    def action(self, tool: str, status: str) -> None:
        """An action settled: executed, replayed, failed, skipped, compensated or degraded."""

    def circuit(self, tool: str, state: str) -> None:
        """A tool's circuit breaker changed state: closed, open or half_open."""

    def outbox_batch(self, ops: int, seconds: float) -> None:
        """One group commit of `ops` outbox operations took `seconds`."""

    def in_flight(self, calls: int, records: int, actions: int) -> None:
        """Tool calls in flight now, records fetched and unfinished, their actions."""

    def lag(self, records: int) -> None:
        """Records of the input topic not fetched yet."""

    def record_done(self, seconds: float) -> None:
        """A record's outputs were flushed `seconds` after it was fetched."""


NULL = SinkObserver()
