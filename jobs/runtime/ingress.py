"""Ingress: run the contract gate, flag late records, route the rest.

`FileIngressFunction` numbers the lines of a file (parallelism 1 after the file source) and writes
the traces and DLQ records of what it settles itself straight to the output files, so the
non-actionable majority never crosses to another operator; `KafkaIngressFunction` builds envelopes
from Kafka rows, one instance per group of partitions, in a task of its own (see agent_job.build),
and hands its records to the Kafka sinks as a side output.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Iterator

from pyflink.datastream.functions import ProcessFunction, RuntimeContext

from contracts import records
from contracts.contract import load_contract
from contracts.outcomes import Outcome, Reason
from jobs.config import JobConfig
from jobs.file_input import PreparedEvents, line_text
from jobs.gate import Gate, GateResult
from jobs.jsonl_files import JsonlAppender
from jobs.lateness import PartitionLateness
from jobs.routing import route
from jobs.runtime.metrics import Counters
from jobs.runtime.tags import OUT


class IngressFunction(ProcessFunction):
    def __init__(self, config: JobConfig) -> None:
        self.config = config

    def open(self, runtime_context: RuntimeContext) -> None:
        self.contract = load_contract(self.config.contract_path)
        self.gate = Gate(self.contract)
        self.policy = self.config.load_policy()
        self.lateness = PartitionLateness(self.config.max_out_of_orderness_ms)
        self.metrics = Counters(runtime_context, "agent", self.config.trace_log_on)
        self.input_topics = self.contract.input_topics()

    def handle(self, res: GateResult, split: Hashable, late: bool | None = None) -> Iterable[Any]:
        """`late`: decided before the gate over every record of the partition (Kafka mode); None lets
        this instance's tracker judge the records the gate passes (file mode)."""
        pos = res.position
        # a label never carries an input value: only the contract's own topic names, else "other"
        self.metrics.inc("envelopes_in", "topic", pos.topic if pos.topic in self.input_topics else "other")
        if res.outcome == "dlq":
            assert res.reason is not None and res.error is not None
            self.metrics.inc("dlq", "reason", str(res.reason))
            yield OUT, records.dlq(pos, res.reason, res.error, res.masked, self.contract.name)
            yield OUT, records.trace(pos, Outcome.DLQ, reason=res.reason)
            return
        env = res.envelope
        assert env is not None
        key = env.idempotency_key()
        if late if late is not None else self.lateness.observe(split, env.ts_ms):
            self.metrics.inc("late")
            self.metrics.inc("dlq", "reason", str(Reason.LATE))
            bound = self.config.max_out_of_orderness_ms
            yield OUT, records.dlq(pos, Reason.LATE, f"event time more than {bound} ms behind its source's maximum",
                                   records.governed_envelope(env), self.contract.name, idempotency_key=key)
            yield OUT, records.trace(pos, Outcome.LATE, key, reason=Reason.LATE)
            return
        routed = None if res.outcome == "no_action" else route(env, self.config.threshold, self.policy)
        if routed is None or not routed.to_agent:
            yield OUT, records.trace(pos, Outcome.NO_ACTION, key)
        if routed is not None:
            yield routed


class FileIngressFunction(IngressFunction):
    """Runs at parallelism 1 right after the file source, so line numbers and lateness are exact."""

    def __init__(self, config: JobConfig, events: PreparedEvents) -> None:
        super().__init__(config)
        self.events = events

    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.line_no = 0
        self.out = JsonlAppender(self.config.out_dir)
        self.single_file = len(self.events.files) == 1

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterator[Any]:
        self.line_no += 1
        partition, offset = (0, self.line_no) if self.single_file else self.events.position(self.line_no)
        res = self.gate.check(line_text(value), offset=offset, partition=partition)
        for out in self.metrics.tap(self.handle(res, split="file"), res.position.ts_ms):
            if type(out) is tuple and out[0] is OUT:
                self.out.write(*out[1])  # settled here: straight to its file
            else:
                yield out

    def close(self) -> None:
        out = getattr(self, "out", None)
        if out is not None:
            out.close()


class KafkaIngressFunction(IngressFunction):
    """Input rows: (k, v, topic, partition, offset, headers, claimed_ms, [late,] event time); event time is
    also the row's timestamp, capped by the record's timestamp, while claimed_ms is what the record
    itself says (a claim beyond the contract's future skew is DLQ'd ts_out_of_range). The `late` column
    is there when the JVM prefilter runs, which judges lateness by the same rule as here: over every
    record of the partition whose event time is known, valid or not, as the source's watermark sees
    them (0 is the event time of an undecodable value: unknown)."""

    def process_element(self, row: Any, ctx: ProcessFunction.Context) -> Iterable[Any]:
        k, v, topic, partition, offset, headers, claimed = row[0], row[1], row[2], row[3], row[4], row[5], row[6]
        ts = ctx.timestamp()
        late = bool(row[7]) if len(row) > 8 else (ts > 0 and self.lateness.observe((topic, partition), ts))
        if claimed is not None and claimed > ts and self.gate.beyond_future_skew(claimed):
            ts = claimed  # the gate rejects it as ts_out_of_range, with the time the record claimed
        res = self.gate.check_kafka(topic, partition, offset, k, v, ts, headers)
        yield from self.metrics.tap(self.handle(res, split=(topic, partition), late=bool(late)), res.position.ts_ms)
