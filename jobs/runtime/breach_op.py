"""Breach detection keyed by account: qualifying orders in event-time order through the pure rule."""
from __future__ import annotations

from typing import Any, Iterable

from pyflink.common import Time, Types
from pyflink.datastream.functions import RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, StateTtlConfig, ValueStateDescriptor

from contracts.models import Envelope
from contracts.outcomes import Outcome, Reason
from contracts import records
from jobs.breach_rule import AccountWindow, on_order
from jobs.policy import BREACH_TOPIC
from jobs.routing import Routed, route
from jobs.runtime.buffered import EventTimeOrderedFunction
from jobs.runtime.tags import OUT

BREACH_SCHEMA = "v3"


def ttl(ms: int) -> StateTtlConfig:
    return (StateTtlConfig.new_builder(Time.milliseconds(ms))
            .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
            .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired).build())


class BreachFunction(EventTimeOrderedFunction):
    name = "breach"

    def setup(self, runtime_context: RuntimeContext) -> None:
        self.policy = self.config.load_policy()
        self.window = runtime_context.get_state(ValueStateDescriptor("breach-window", Types.PICKLED_BYTE_ARRAY()))
        qualified = MapStateDescriptor("breach-qualified", Types.STRING(), Types.LONG())
        qualified.enable_time_to_live(ttl(self.config.qualified_ttl_ms))
        self.qualified = runtime_context.get_map_state(qualified)

    def tie_break(self, item: Routed) -> Any:
        # Same order twice at the same event time: the larger amount is "first", whatever the arrival.
        assert item.qualifying is not None
        return (item.qualifying.order_id, -item.qualifying.amount)

    def on_ready(self, item: Routed) -> Iterable[Any]:
        order = item.qualifying
        assert order is not None
        if self.qualified.contains(order.order_id):
            return  # each order qualifies once, at its first qualifying event time
        self.qualified.put(order.order_id, order.ts_ms)
        window = self.window.value() or AccountWindow()
        breach = on_order(window, order, self.config.threshold, self.config.auto_hold)
        self.window.update(window)
        if breach is None:
            return
        self.metrics.inc("breaches")
        yield OUT, ("breaches", breach.model_dump(mode="json"))
        env = Envelope.model_validate({"topic": BREACH_TOPIC, "partition": -1, "offset": -1,
                                       "key": breach.account_id, "ts_ms": breach.ts_ms,
                                       "schema": BREACH_SCHEMA, "payload": breach.model_dump(mode="json")})
        routed = route(env, self.config.threshold, self.policy, derived=True)
        if routed is not None:
            yield routed
        else:
            yield OUT, records.trace(records.position_of(env, derived=True), Outcome.NO_ACTION, derived=True)

    def on_late(self, item: Routed, watermark: int) -> Iterable[Any]:
        # Only reachable when an idle source split wakes up behind the others' watermark.
        self.metrics.inc("late")
        yield OUT, records.dlq(records.position_of(item.env), Reason.LATE,
                               f"order behind the breach operator's watermark {watermark}; not counted",
                               records.governed_envelope(item.env), self.contract.name,
                               idempotency_key=item.idempotency_key)
