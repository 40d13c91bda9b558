"""Ingress: number the lines, run the contract gate, flag late records, route the rest."""
from __future__ import annotations

from typing import Any, Iterable

from pyflink.datastream.functions import ProcessFunction, RuntimeContext

from contracts.contract import load_contract
from contracts.idempotency import idempotency_key
from contracts.outcomes import Outcome, Reason
from contracts import records
from jobs.config import JobConfig
from jobs.gate import Gate
from jobs.lateness import PartitionLateness
from jobs.routing import route
from jobs.runtime.metrics import Counters
from jobs.runtime.tags import OUT


class IngressFunction(ProcessFunction):
    """Runs at parallelism 1 after a file source, so line numbers and lateness are exact."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config

    def open(self, runtime_context: RuntimeContext) -> None:
        self.contract = load_contract(self.config.contract_path)
        self.gate = Gate(self.contract)
        self.policy = self.config.load_policy()
        self.lateness = PartitionLateness(self.config.max_out_of_orderness_ms)
        self.line_no = 0
        self.metrics = Counters(runtime_context, "agent")

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterable[Any]:
        self.line_no += 1
        yield from self.handle(value, self.line_no, split="file")

    def handle(self, line: str | bytes, offset: int, split: Any, partition: int = 0) -> Iterable[Any]:
        res = self.gate.check(line, offset=offset, partition=partition)
        pos = res.position
        self.metrics.inc("envelopes_in", "topic", str(pos.topic))
        if res.outcome == "dlq":
            assert res.reason is not None and res.error is not None
            self.metrics.inc("dlq", "reason", str(res.reason))
            yield OUT, records.dlq(pos, res.reason, res.error, res.masked, self.contract.name)
            yield OUT, records.trace(pos, Outcome.DLQ, reason=res.reason)
            return
        env = res.envelope
        assert env is not None
        key = idempotency_key(env.topic, env.key, env.ts_ms)
        if self.lateness.observe(split, env.ts_ms):
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
