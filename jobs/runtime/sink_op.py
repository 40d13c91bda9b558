"""Runs the embedded action sink inside the job (file mode). The sink itself is injected by the wiring."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from pyflink.datastream.functions import ProcessFunction, RuntimeContext

from contracts import records
from contracts.contract import load_contract
from contracts.models import AgentResponse
from jobs.config import JobConfig
from jobs.routing import Routed
from jobs.runtime.metrics import Counters
from jobs.runtime.tags import OUT


class ActionSinkFunction(ProcessFunction):
    """`executor_factory()` builds the executor in the worker; `to_records` turns its result into output records."""

    def __init__(self, config: JobConfig, executor_factory: Callable[[str], Any],
                 to_records: Callable[..., list[records.Out]]) -> None:
        self.config = config
        self.executor_factory = executor_factory
        self.to_records = to_records

    def open(self, runtime_context: RuntimeContext) -> None:
        self.contract = load_contract(self.config.contract_path)
        self.executor = self.executor_factory(str(self.config.state))
        self.metrics = Counters(runtime_context, "agent", self.config.trace_log_on)

    def process_element(self, value: tuple[Routed, AgentResponse], ctx: ProcessFunction.Context) -> Iterable[Any]:
        yield from self.metrics.tap(self._execute(value))

    def _execute(self, value: tuple[Routed, AgentResponse]) -> Iterable[Any]:
        item, response = value
        env = item.env
        pos = records.position_of(env, item.derived)
        result = self.executor.execute_plan(response.actions, f"{env.topic}/{pos.partition}/{pos.offset}")
        for o in result.outcomes:
            self.metrics.inc("actions", "tool", o.action.tool)
        for rec in self.to_records(pos, item.idempotency_key, response, result,
                                   records.governed_envelope(env), self.contract.name, item.derived):
            yield OUT, rec
