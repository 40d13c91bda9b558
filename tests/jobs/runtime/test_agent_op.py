"""The agent stage's Flink shell without Flink: fake keyed state, timer service and metric group.

What is checked here is the shell's own branching (on time / late / derived behind the watermark),
which no MiniCluster test can trigger on purpose: a derived breach trails the agent stage's
watermark only under an idleness race between the gate's and the breach stage's channels."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from contracts.models import Envelope
from jobs.config import JobConfig
from jobs.policy import RulePolicy
from jobs.routing import route
from jobs.runtime.agent_op import AgentFunction
from jobs.runtime.tags import OUT
from tests.factories import MINUTE, T0, breach_env, cdc, order_row


class State:
    def __init__(self) -> None:
        self.v: Any = None

    def value(self) -> Any:
        return self.v

    def update(self, v: Any) -> None:
        self.v = v

    def clear(self) -> None:
        self.v = None


class MapState(dict):
    def contains(self, k: str) -> bool:
        return k in self

    def put(self, k: str, v: Any) -> None:
        self[k] = v


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, n: int = 1) -> None:
        self.count += n


class MetricGroup:
    """Flink's metric group shape: groups by path, counters and gauges by name."""

    def __init__(self, path: tuple[str, ...] = ()) -> None:
        self.path, self.groups, self.counters, self.gauges = path, {}, {}, {}

    def add_group(self, name: str, extra: str | None = None) -> "MetricGroup":
        key = (name,) if extra is None else (name, extra)
        return self.groups.setdefault(key, MetricGroup(self.path + key))

    def counter(self, name: str) -> Counter:
        return self.counters.setdefault(name, Counter())

    def gauge(self, name: str, fn: Any) -> None:
        self.gauges[name] = fn

    def flush(self) -> None:
        """What PyFlink does when it finishes a bundle: evaluate the gauges (ours publishes the counts)."""
        for fn in list(self.gauges.values()):
            fn()
        for g in list(self.groups.values()):
            g.flush()

    def counts(self) -> dict[str, int]:
        out = {".".join(self.path + (n,)): c.count for n, c in self.counters.items()}
        for g in self.groups.values():
            out.update(g.counts())
        return out


class RuntimeContext:
    def __init__(self) -> None:
        self.metrics = MetricGroup()
        self.states: dict[str, Any] = {}

    def get_state(self, descriptor: Any) -> State:
        return self.states.setdefault(descriptor.name, State())

    def get_map_state(self, descriptor: Any) -> MapState:
        return self.states.setdefault(descriptor.name, MapState())

    def get_metrics_group(self) -> MetricGroup:
        return self.metrics


class TimerService:
    def __init__(self, watermark: int) -> None:
        self.watermark, self.timers = watermark, []

    def current_watermark(self) -> int:
        return self.watermark

    def register_event_time_timer(self, ts: int) -> None:
        self.timers.append(ts)


class Ctx:
    def __init__(self, watermark: int) -> None:
        self.timers = TimerService(watermark)

    def timer_service(self) -> TimerService:
        return self.timers


def opened() -> tuple[AgentFunction, RuntimeContext]:
    fn, rc = AgentFunction(JobConfig()), RuntimeContext()
    fn.open(rc)
    return fn, rc


def routed(d: dict[str, Any], derived: bool = False):
    r = route(Envelope.model_validate({"offset": 7, **d}), Decimal("1000.00"), RulePolicy(), derived=derived)
    assert r is not None and r.to_agent
    return r


def sides(outputs: list[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"main": []}
    for o in outputs:
        if type(o) is tuple and o[0] is OUT:
            out.setdefault(o[1][0], []).append(o[1][1])
        else:
            out["main"].append(o)
    return out


def test_an_item_ahead_of_the_watermark_waits_for_its_timer_then_is_decided():
    fn, rc = opened()
    item = routed(breach_env(T0, account="acct-1", order_ids=["a", "b", "c"]), derived=True)
    ctx = Ctx(watermark=T0 - 1)
    assert list(fn.process_element(item, ctx)) == [] and ctx.timers.timers == [T0]
    ctx.timers.watermark = T0
    got = sides(list(fn.on_timer(T0, ctx)))
    [(decided, response)] = got["main"]
    assert decided is item and [a.tool for a in response.actions] == ["CreateTicket", "PlacePaymentHold"]
    rc.metrics.flush()
    assert rc.metrics.counts() == {"agent.tool.CreateTicket.action_requests": 1,
                                   "agent.tool.PlacePaymentHold.action_requests": 1}


def test_a_derived_breach_behind_the_watermark_is_decided_and_counted_not_dlqd():
    fn, rc = opened()
    item = routed(breach_env(T0, account="acct-1", order_ids=["a", "b", "c"]), derived=True)
    got = sides(list(fn.process_element(item, Ctx(watermark=T0 + MINUTE))))
    assert "dlq" not in got and [a.tool for _, r in got["main"] for a in r.actions] == ["CreateTicket",
                                                                                      "PlacePaymentHold"]
    rc.metrics.flush()
    counts = rc.metrics.counts()
    assert counts["agent.breaches_behind_watermark"] == 1 and "agent.late" not in counts
    # decided once: a redelivery of the same breach is a duplicate, not a second ticket
    again = sides(list(fn.process_element(item, Ctx(watermark=T0 + MINUTE))))
    assert again["main"] == [] and [t["outcome"] for t in again["traces"]] == ["duplicate"]


@pytest.mark.parametrize("watermark", [T0, T0 + MINUTE])  # at the watermark is behind it (Flink's rule)
def test_a_source_envelope_behind_the_watermark_is_dlqd_late_and_traced(watermark):
    fn, rc = opened()
    item = routed(cdc(T0, after=order_row("o1", "acct-9", vip=True)))
    got = sides(list(fn.process_element(item, Ctx(watermark))))
    assert got["main"] == []
    [dlq] = got["dlq"]
    assert dlq["reason"] == "late" and dlq["idempotency_key"] == item.idempotency_key
    assert [t["outcome"] for t in got["traces"]] == ["late"]
    rc.metrics.flush()
    counts = rc.metrics.counts()
    assert counts["agent.late"] == 1 and "agent.breaches_behind_watermark" not in counts
