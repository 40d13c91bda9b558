"""Runs the embedded action sink inside the job (file mode). The sink itself is injected by the wiring.

The sink runs many plans at once (`sinks.embedded`), and a Flink Python operator
can emit only from its callbacks, so this is a keyed operator on one constant key
(`sink_key`, parallelism 1) for the sake of its timers: each element starts a plan
and emits the plans finished meanwhile; a processing-time timer finishes what is
in flight when elements pause; and an event-time timer at the end of time fires
on the final watermark, at the end of input, and finishes every plan left, so
each action gets its records before the job ends.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from pyflink.datastream import TimeDomain
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext

from contracts import records
from contracts.contract import load_contract
from contracts.models import AgentResponse
from jobs.config import JobConfig
from jobs.routing import Routed
from jobs.runtime.metrics import Counters
from jobs.runtime.tags import OUT

SINK_KEY = "action-sink"
END_OF_TIME = 9223372036854775807   # Long.MAX_VALUE: the final watermark of a bounded input
IDLE_FLUSH_MS = 200                 # finish plans in flight this long after the last element


def sink_key(_: Any) -> str:
    return SINK_KEY


class ActionSinkFunction(KeyedProcessFunction):
    """`sink_factory(state_dir)` builds the sink in the worker; `to_records` turns a result into output records."""

    def __init__(self, config: JobConfig, sink_factory: Callable[[str], Any],
                 to_records: Callable[..., list[records.Out]]) -> None:
        self.config = config
        self.sink_factory = sink_factory
        self.to_records = to_records

    def open(self, runtime_context: RuntimeContext) -> None:
        self.contract = load_contract(self.config.contract_path)
        self.sink = self.sink_factory(str(self.config.state))
        self.metrics = Counters(runtime_context, "agent", self.config.trace_log_on)
        self.end_timer = False
        self.idle_timer = False

    def process_element(self, value: tuple[Routed, AgentResponse],
                        ctx: KeyedProcessFunction.Context) -> Iterable[Any]:
        item, response = value
        pos = records.position_of(item.env, item.derived)
        done = self.sink.submit(item.account_id, value, response.actions, f"{item.env.topic}/{pos.partition}/{pos.offset}")
        timers = ctx.timer_service()
        if not self.end_timer:
            timers.register_event_time_timer(END_OF_TIME)
            self.end_timer = True
        if len(self.sink) and not self.idle_timer:
            timers.register_processing_time_timer(timers.current_processing_time() + IDLE_FLUSH_MS)
            self.idle_timer = True
        yield from self._outputs(done)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterable[Any]:
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            self.idle_timer = False
        yield from self._outputs(self.sink.drain())

    def _outputs(self, done: list[tuple[tuple[Routed, AgentResponse], Any]]) -> Iterable[Any]:
        for (item, response), result in done:
            yield from self.metrics.tap(self._records(item, response, result))

    def _records(self, item: Routed, response: AgentResponse, result: Any) -> Iterable[Any]:
        for o in result.outcomes:
            self.metrics.inc("actions", "tool", o.action.tool)
        pos = records.position_of(item.env, item.derived)
        for rec in self.to_records(pos, item.idempotency_key, response, result,
                                   records.governed_envelope(item.env), self.contract.name, item.derived):
            yield OUT, rec

    def close(self) -> None:
        sink = getattr(self, "sink", None)
        if sink is not None:
            sink.close()
