"""Flink metrics of the Python operators, and the per-trace JSON log.

Counters by name and label (labels become key/value metric groups, i.e. Prometheus
labels), and latency "histograms" as p50/p95/max gauges over a sliding reservoir.

How they reach Flink: PyFlink reports a Python metric through Beam, attributed to
the operator that Beam considers current when the metric is touched. Our keyed
stages decide inside event-time timer callbacks, where no operator is current, and
a counter incremented there never shows up (observed on a standalone cluster). So
nothing here touches a Flink metric per event: counts and samples stay in Python
and are handed to Flink once per bundle, from a gauge callback that PyFlink
evaluates while it finishes the operator's bundle (every
python.fn-execution.bundle.time, 1 s, or bundle.size records). That is also cheaper
than a Beam metric call per event. A count is visible in Flink at most one bundle
after it happened.

PyFlink's `distribution` is no histogram (Beam sum/count/min/max, which Flink
exposes as a non-numeric gauge that the Prometheus reporter drops), so latencies
are kept in a reservoir of the last RESERVOIR samples per operator subtask and
published as integer gauges `<name>_p50`, `<name>_p95`, `<name>_max`.

Trace log: every trace record an operator emits (see `tap`) is also logged as one
JSON line (logger `streaming_agent.traces`, level INFO): topic, partition, offset,
key, ts_ms, schema, idempotency key, outcome, reason, actions, receipts, lag_ms.
Traces never carry payloads, so the log holds no PII. On a cluster the lines land in
the TaskManager log (Python worker logging goes there). `AGENT_TRACE_LOG=0` in the
TaskManager's environment switches it off. File mode does not log traces by default (`--trace-log`
turns it on): traces.jsonl holds them already, and in thread mode a log line per trace, through the
embedded interpreter to the JVM's logger, cost more than everything else the gate does.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from typing import Any, Iterable, Iterator

from contracts.records import now_ms
from jobs.runtime.tags import OUT

RESERVOIR = 1024
TRACE_LOG = logging.getLogger("streaming_agent.traces")
_TRACE_LOG_ON = os.environ.get("AGENT_TRACE_LOG", "1").strip().lower() not in ("0", "false", "off", "no")


class Reservoir:
    """The last `size` samples; quantiles computed on demand, at most once per change."""

    def __init__(self, size: int = RESERVOIR) -> None:
        self.samples: deque[int] = deque(maxlen=size)
        self._sorted: list[int] | None = []

    def add(self, value: int) -> None:
        self.samples.append(value)
        self._sorted = None

    def quantile(self, q: float) -> int:
        if self._sorted is None:
            self._sorted = sorted(self.samples)
        s = self._sorted
        if not s:
            return 0
        return s[min(len(s) - 1, int(q * len(s)))]  # nearest rank, q in [0, 1]


class Counters:
    """`inc` counts, `observe` samples; both are published to Flink once per bundle."""

    def __init__(self, runtime_context: Any, group: str, trace_log: bool = True) -> None:
        self._group = runtime_context.get_metrics_group().add_group(group)
        self._trace_log = trace_log and _TRACE_LOG_ON
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._pending: dict[tuple[str, str, str], int] = {}
        self._reservoirs: dict[str, Reservoir] = {}
        self._flushes = 0
        # Evaluated by PyFlink when it finishes a bundle, inside this operator's metric scope.
        self._group.gauge("metric_flushes", self._flush)

    # -- recording (pure Python, per event) --------------------------------------
    def inc(self, name: str, label_key: str = "", label: str = "", n: int = 1) -> None:
        k = (name, label_key, label)
        self._pending[k] = self._pending.get(k, 0) + n

    def observe(self, name: str, value: int) -> None:
        r = self._reservoirs.get(name)
        if r is None:
            r = self._reservoirs[name] = Reservoir()
            for suffix, q in (("p50", 0.50), ("p95", 0.95), ("max", 1.0)):
                self._group.gauge(f"{name}_{suffix}", lambda r=r, q=q: r.quantile(q))
        r.add(int(value))

    def tap(self, outputs: Iterable[Any], ts_ms: int | None = None) -> Iterator[Any]:
        """Pass an operator's outputs for ONE envelope through: count and log its traces, then record
        `processing_latency_us` (from the first pull to the last output, output serialization included)
        and `event_time_lag_ms` (wall clock minus the envelope's event time, at the decision)."""
        t0 = time.perf_counter_ns()
        for out in outputs:
            if type(out) is tuple and len(out) == 2 and out[0] is OUT and out[1][0] == "traces":
                self.trace(out[1][1])
            yield out
        self.observe("processing_latency_us", (time.perf_counter_ns() - t0) // 1000)
        if ts_ms is not None and ts_ms > 0:  # 0: an undecodable Kafka record has no event time
            self.observe("event_time_lag_ms", now_ms() - ts_ms)

    def trace(self, record: dict[str, Any]) -> None:
        self.inc("traces", "outcome", str(record.get("outcome")))
        if self._trace_log and TRACE_LOG.isEnabledFor(logging.INFO):
            TRACE_LOG.info(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str))

    # -- publishing (once per bundle) ----------------------------------------------
    def _flush(self) -> int:
        # Swap first: in PyFlink's thread mode gauges are evaluated on a Flink thread, not between bundles.
        pending, self._pending = self._pending, {}
        for k, n in pending.items():
            c = self._counters.get(k)
            if c is None:
                name, label_key, label = k
                g = self._group.add_group(label_key, label) if label_key else self._group
                c = self._counters[k] = g.counter(name)
            c.inc(n)
        self._flushes += 1
        return self._flushes
