"""A keyed operator that releases its input in event-time order once the watermark passes it.

One pending timer per key (coalesced to the earliest buffered time), buffer in
keyed state, so the decisions of subclasses depend only on the input set.
"""
from __future__ import annotations

from typing import Any, Iterable

from pyflink.common import Types
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from contracts.contract import load_contract
from jobs import event_time_buffer as etb
from jobs.config import JobConfig
from jobs.routing import Routed
from jobs.runtime.metrics import Counters

NO_TIMER = -(1 << 62)


class EventTimeOrderedFunction(KeyedProcessFunction):
    name = "buffered"

    def __init__(self, config: JobConfig) -> None:
        self.config = config

    def open(self, runtime_context: RuntimeContext) -> None:
        self.contract = load_contract(self.config.contract_path)
        self.buffer = runtime_context.get_state(ValueStateDescriptor(f"{self.name}-buffer", Types.PICKLED_BYTE_ARRAY()))
        self.timer = runtime_context.get_state(ValueStateDescriptor(f"{self.name}-timer", Types.LONG()))
        self.metrics = Counters(runtime_context, "agent", self.config.trace_log_on)
        self.setup(runtime_context)

    # -- for subclasses ------------------------------------------------------
    def setup(self, runtime_context: RuntimeContext) -> None:
        pass

    def event_time(self, item: Any) -> int:
        return item.env.ts_ms

    def tie_break(self, item: Routed) -> Any:
        return (item.env.topic, item.env.key or "", item.env.partition, item.env.offset)

    def on_ready(self, item: Routed) -> Iterable[Any]:
        raise NotImplementedError

    def on_late(self, item: Routed, watermark: int) -> Iterable[Any]:
        raise NotImplementedError

    # -- Flink callbacks -----------------------------------------------------
    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterable[Any]:
        ts = self.event_time(value)
        wm = ctx.timer_service().current_watermark()
        if ts <= wm:
            yield from self.metrics.tap(self.on_late(value, wm), ts)
            return
        buf = self.buffer.value() or {}
        etb.add(buf, ts, value)
        self.buffer.update(buf)
        pending = self.timer.value()
        if pending is None or pending == NO_TIMER or ts < pending:
            ctx.timer_service().register_event_time_timer(ts)
            self.timer.update(ts)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterable[Any]:
        buf = self.buffer.value() or {}
        wm = max(timestamp, ctx.timer_service().current_watermark())
        ready = etb.pop_ready(buf, wm, self.tie_break)
        nxt = etb.earliest(buf)
        if buf:
            self.buffer.update(buf)
        else:
            self.buffer.clear()
        if nxt is not None:
            ctx.timer_service().register_event_time_timer(nxt)
            self.timer.update(nxt)
        else:
            self.timer.update(NO_TIMER)
        for item in ready:
            yield from self.metrics.tap(self.on_ready(item), self.event_time(item))
