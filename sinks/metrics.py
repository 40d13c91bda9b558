"""The standalone sink's Prometheus metrics (prometheus_client), fed by the `SinkObserver` hooks.

Names and labels (values from fixed vocabularies: tool names, statuses, states):

| metric | type | labels |
|---|---|---|
| `agent_sink_actions_total` | counter | tool, status (executed, replayed, failed, skipped, compensated, degraded) |
| `agent_sink_tool_calls_total` | counter | tool, result (ok, permanent, transient, throttled, in_progress, error) |
| `agent_sink_tool_call_seconds` | histogram | tool |
| `agent_sink_retries_total` | counter | tool |
| `agent_sink_throttled_total` | counter | tool (429 answers) |
| `agent_sink_circuit_state` | gauge | tool (0 closed, 1 half-open, 2 open) |
| `agent_sink_in_flight_calls` | gauge | |
| `agent_sink_pending_records`, `agent_sink_pending_actions` | gauge | |
| `agent_sink_consumer_lag_records` | gauge | |
| `agent_sink_outbox_batch_ops` | histogram | (ops per group commit) |
| `agent_sink_outbox_commit_seconds` | histogram | |
| `agent_sink_record_seconds` | histogram | (fetched -> outputs flushed) |
"""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sinks.observer import SinkObserver

CIRCUIT_VALUE = {"closed": 0, "half_open": 1, "open": 2}
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


class SinkMetrics(SinkObserver):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.actions = Counter("agent_sink_actions", "Actions settled", ["tool", "status"], registry=r)
        self.calls = Counter("agent_sink_tool_calls", "Tool calls answered", ["tool", "result"], registry=r)
        self.call_seconds = Histogram("agent_sink_tool_call_seconds", "Tool call latency", ["tool"],
                                      buckets=_LATENCY_BUCKETS, registry=r)
        self.retries = Counter("agent_sink_retries", "Calls retried after a transient error", ["tool"], registry=r)
        self.throttled = Counter("agent_sink_throttled", "429 answers", ["tool"], registry=r)
        self.circuit_state = Gauge("agent_sink_circuit_state", "0 closed, 1 half-open, 2 open", ["tool"], registry=r)
        self.calls_in_flight = Gauge("agent_sink_in_flight_calls", "Tool calls in flight", registry=r)
        self.pending_records = Gauge("agent_sink_pending_records", "Records fetched, not finished", registry=r)
        self.pending_actions = Gauge("agent_sink_pending_actions", "Actions of the pending records", registry=r)
        self.consumer_lag = Gauge("agent_sink_consumer_lag_records", "Input records not fetched yet", registry=r)
        self.batch_ops = Histogram("agent_sink_outbox_batch_ops", "Outbox ops per group commit",
                                   buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=r)
        self.commit_seconds = Histogram("agent_sink_outbox_commit_seconds", "Outbox group commit duration",
                                        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
                                        registry=r)
        self.record_seconds = Histogram("agent_sink_record_seconds", "Record fetched -> outputs flushed",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.circuits: dict[str, str] = {}
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(...)`, looked up once per label set: this runs a few times per action."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def call(self, tool: str, result: str, seconds: float) -> None:
        self._child(self.calls, tool, result).inc()
        self._child(self.call_seconds, tool).observe(seconds)
        if result == "throttled":
            self._child(self.throttled, tool).inc()

    def retry(self, tool: str) -> None:
        self._child(self.retries, tool).inc()

    def action(self, tool: str, status: str) -> None:
        self._child(self.actions, tool, status).inc()

    def circuit(self, tool: str, state: str) -> None:
        self.circuits[tool] = state
        self.circuit_state.labels(tool).set(CIRCUIT_VALUE[state])

    def outbox_batch(self, ops: int, seconds: float) -> None:
        self.batch_ops.observe(ops)
        self.commit_seconds.observe(seconds)

    def in_flight(self, calls: int, records: int, actions: int) -> None:
        self.calls_in_flight.set(calls)
        self.pending_records.set(records)
        self.pending_actions.set(actions)

    def lag(self, records: int) -> None:
        self.consumer_lag.set(records)

    def record_done(self, seconds: float) -> None:
        self.record_seconds.observe(seconds)
