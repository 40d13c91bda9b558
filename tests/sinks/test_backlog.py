"""Backlog: a burst bigger than the in-flight bound against a slow tool sheds notices, never records.

The burst goes through the real sink loop (fake Kafka source/output, real
outbox, real sandbox over HTTP). The backlog a plan sees is every action not yet
finished in the sink plus the records not fetched yet. Each record carries one
action except the first (ticket + hold), so one plan at a time sees exactly the
number of records from it to the end of the burst; with plans in parallel it
also sees the earlier ones still running.
"""
from __future__ import annotations

from collections import Counter

from sinks.backlog import DegradePolicy
from sinks.sink_loop import SinkLoop
from tests.sinks.fakes import FakeOutput, FakeSource, action_value, handler
from tests.sinks.helpers import hold, make_executor, notice, ticket

N, BOUND, MAX_PENDING = 30, 10, 4


def test_degrade_policy_spares_tickets_and_holds():
    p = DegradePolicy(bound=2)
    assert [p.decide("SendNotice", n) for n in (1, 2, 3)] == ["execute", "execute", "degrade"]
    assert p.decide("CreateTicket", 10_000) == p.decide("PlacePaymentHold", 10_000) == "execute"


def _burst() -> list[bytes]:
    values = [action_value("k0", [ticket("k0", "o0"), hold("k0", "o0")], 0)]
    for i in range(1, N):
        key = f"k{i}"
        values.append(action_value(key, [ticket(key, f"o{i}") if i % 3 == 0 else notice(key)], i))
    return values


def _drain(outbox, sandbox, source: FakeSource, out: FakeOutput, in_flight: int = 1) -> None:
    ex = make_executor(outbox, sandbox, bound=BOUND)
    ex.run(SinkLoop(source, out, handler(ex), in_flight, MAX_PENDING).run(exit_when_idle_s=0.3))


def _degraded(out: FakeOutput) -> set[str]:
    return {d["idempotency_key"] for d in out.on("ops.agent_dlq") if d["reason"] == "degraded"}


def test_burst_degrades_notices_and_loses_nothing(outbox, sandbox):
    sandbox.faults(latency_ms=30)  # a slow tool: the burst piles up behind it
    out = FakeOutput()
    source = FakeSource.of(_burst(), out)
    _drain(outbox, sandbox, source, out)

    traces = out.on("agent.traces")
    assert sorted(t["offset"] for t in traces) == list(range(N))  # every record handled exactly once
    assert source.committed == {("agent.actions", 0): N}
    degraded = _degraded(out)
    expected = {f"k{i}" for i in range(1, N) if i % 3 and N - i > BOUND}
    assert degraded == expected and degraded  # notices shed exactly while backlog > bound
    receipted = Counter((r["tool"], r["idempotency_key"]) for r in out.on("agent.receipts"))
    assert set(receipted.values()) == {1}
    all_actions = {("CreateTicket", "k0"), ("PlacePaymentHold", "k0")} | {
        ("CreateTicket" if i % 3 == 0 else "SendNotice", f"k{i}") for i in range(1, N)}
    assert set(receipted) | {("SendNotice", k) for k in degraded} == all_actions  # each action accounted for
    assert not set(receipted) & {("SendNotice", k) for k in degraded}

    ledger = sandbox.ledger()
    assert len(ledger) == len(receipted) and not {e["idempotency_key"] for e in ledger
                                                  if e["effect"] == "notice.send"} & degraded
    states = Counter(r.state for r in outbox.rows())
    assert states == {"receipted": len(receipted), "degraded": len(degraded)}
    outcomes = {t["idempotency_key"]: t for t in traces}
    assert all(outcomes[k]["outcome"] == "dlq" and outcomes[k]["reason"] == "degraded" for k in degraded)
    assert outcomes["k0"]["outcome"] == "processed"


def test_concurrent_plans_see_the_running_ones_in_their_backlog(outbox, sandbox):
    sandbox.faults(latency_ms=30)
    out = FakeOutput()
    source = FakeSource.of(_burst(), out)
    in_flight = 4
    _drain(outbox, sandbox, source, out, in_flight)
    notices = {i for i in range(1, N) if i % 3}
    # at least what is left of the burst, at most that plus the other plans still running
    assert {f"k{i}" for i in notices if N - i > BOUND} <= _degraded(out)
    assert _degraded(out) <= {f"k{i}" for i in notices if N - i + in_flight - 1 > BOUND}
    assert sorted(t["offset"] for t in out.on("agent.traces")) == list(range(N))
    assert source.committed == {("agent.actions", 0): N}


def test_redelivered_burst_repeats_its_outputs_without_new_effects(outbox, sandbox):
    first_out = FakeOutput()
    first = FakeSource.of(_burst(), first_out)
    _drain(outbox, sandbox, first, first_out)
    ledger = sandbox.ledger()

    # the same records again (a crash before the commit): same outputs, no new effect
    again_out = FakeOutput()
    again = FakeSource.of(_burst(), again_out)
    _drain(outbox, sandbox, again, again_out)
    assert sandbox.ledger() == ledger
    for topic in ("agent.receipts", "ops.agent_dlq", "agent.responses"):
        strip = lambda rs: sorted(str({k: v for k, v in r.items() if k != "at_ms"}) for r in rs)  # noqa: E731
        assert strip(again_out.on(topic)) == strip(first_out.on(topic)), topic

    # the same plans from other records (duplicates upstream): traced as duplicates, nothing else
    dup_out = FakeOutput()
    dup = FakeSource.of(_burst(), dup_out, first_offset=1000)
    _drain(outbox, sandbox, dup, dup_out)
    assert sandbox.ledger() == ledger
    assert {t["outcome"] for t in dup_out.on("agent.traces")} == {"duplicate"}
    assert dup_out.on("agent.receipts") == [] and dup_out.on("ops.agent_dlq") == []
    assert len(dup_out.on("agent.traces")) == N
