"""Per-key order under concurrency, against a brute-force oracle: plans of many accounts run through the
dispatcher and the plan runner (real SQLite outbox) against a tool client with random latencies and chosen
permanent failures. Whatever the latencies: the calls of one account happen one after another in the order a
serial sink would make them (each plan's actions in order, plans in input order, a failed plan's compensation
in reverse), calls of different accounts overlap, the in-flight bound holds, and every action gets exactly one
outcome and the outbox one row.

The client is a fake (this is the ordering logic's property test); the same rules run against the real
sandbox over HTTP and a real broker in test_sink_loop.py and test_kafka_sink.py.
"""
from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.models import Action
from sinks.dispatcher import Dispatcher
from sinks.group_commit import OutboxWriter
from sinks.outbox import SqliteOutbox
from sinks.plan_result import PlanResult
from sinks.plan_runner import PlanRunner, RetryPolicy
from sinks.tools import PermanentToolError
from tests.sinks.helpers import hold, notice, ticket

TOOL_OF = {"/tickets": "CreateTicket", "/payments/holds": "PlacePaymentHold", "/messages": "SendNotice"}
MAKE = {"CreateTicket": lambda k: ticket(k, k), "PlacePaymentHold": lambda k: hold(k, k), "SendNotice": notice}
COMPENSABLE = {"CreateTicket", "PlacePaymentHold"}


class RandomLatencyClient:
    """Answers after a seeded random latency; fails `failing` (tool, key) permanently; logs every call."""

    def __init__(self, seed: int, failing: set[tuple[str, str]]) -> None:
        self.rng = random.Random(seed)
        self.failing = failing
        self.log: list[tuple[str, str, str, str]] = []  # (event, account, do|undo, tool), event start|end
        self.active = 0
        self.max_active = 0

    async def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        undo = endpoint.endswith(("/close", "/release"))
        tool = "CreateTicket" if endpoint.startswith("/tickets") else TOOL_OF.get(endpoint, "PlacePaymentHold")
        key = idempotency_key.removeprefix("comp-")
        account = key.split(":")[0]
        call = (account, "undo" if undo else "do", tool)
        self.log.append(("start", *call))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.rng.uniform(0.0005, 0.004))
            if not undo and (tool, key) in self.failing:
                raise PermanentToolError(f"HTTP 422 from {endpoint}")
            return {"id": f"{tool}-{key}", "status": "done"}
        finally:
            self.active -= 1
            self.log.append(("end", *call))


def serial_oracle(plans: list[tuple[str, list[Action]]], failing: set[tuple[str, str]]) -> dict[str, list[tuple]]:
    """The calls per account a sink running one plan at a time makes (the seed's semantics)."""
    calls: dict[str, list[tuple]] = {}
    for account, actions in plans:
        seq = calls.setdefault(account, [])
        done = []
        for a in actions:
            seq.append((account, "do", a.tool))
            if (a.tool, a.idempotency_key) in failing:
                seq += [(account, "undo", d.tool) for d in reversed(done) if d.tool in COMPENSABLE]
                break
            done.append(a)
    return calls


plan_st = st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]),
                    st.lists(st.sampled_from(["CreateTicket", "PlacePaymentHold", "SendNotice"]),
                             min_size=1, max_size=3, unique=True),
                    st.lists(st.booleans(), min_size=3, max_size=3))


@settings(max_examples=60, deadline=None)
@given(st.lists(plan_st, min_size=1, max_size=25), st.integers(1, 8), st.integers(0, 10**6))
def test_per_account_order_and_compensation_under_random_latencies(tmp_path_factory, specs, max_in_flight, seed):
    plans: list[tuple[str, list[Action]]] = []
    failing: set[tuple[str, str]] = set()
    for n, (account, tools, fails) in enumerate(specs):
        key = f"{account}:{n}"
        plans.append((account, [MAKE[t](key) for t in tools]))
        failing |= {(t, key) for t, f in zip(tools, fails) if f and n % 3 == 0}  # about a third of plans fail
    outbox = SqliteOutbox(tmp_path_factory.mktemp("box") / "outbox.sqlite")
    client = RandomLatencyClient(seed, failing)
    runner = PlanRunner(OutboxWriter(outbox), client, RetryPolicy(max_attempts=1))

    async def run_all() -> list[tuple[tuple[str, list[Action]], PlanResult]]:
        d: Dispatcher[tuple[str, list[Action]], PlanResult] = Dispatcher(
            lambda plan, backlog: runner.run_plan(plan[1], f"in/0/{plan[1][0].idempotency_key}"), max_in_flight)
        for plan in plans:
            d.submit(plan[0], plan, len(plan[1]))
        await d.drain()
        return d.take_completed()

    done = asyncio.run(run_all())
    outbox_rows = outbox.rows()
    outbox.close()

    observed: dict[str, list[tuple]] = {}
    for event, *call in client.log:
        if event == "start":
            observed.setdefault(call[0], []).append(tuple(call))
    assert observed == serial_oracle(plans, failing)
    for account in observed:  # one call at a time per account: every start follows the previous end
        events = [e for e, *c in client.log if c[0] == account]
        assert events == ["start", "end"] * (len(events) // 2)
    assert client.max_active <= max_in_flight
    assert client.max_active >= min(max_in_flight, len({a for a, _ in plans}))  # different accounts in parallel
    assert len(done) == len(plans)
    for (account, actions), result in done:
        assert [o.action for o in result.outcomes] == actions  # one outcome per action, in plan order
        statuses = [o.status for o in result.outcomes]
        if "failed" in statuses:
            i = statuses.index("failed")
            assert all(s == "skipped" for s in statuses[i + 1:])
            assert all(s == ("compensated" if a.tool in COMPENSABLE else "executed")
                       for s, a in zip(statuses[:i], actions))
        else:
            assert set(statuses) == {"executed"}
    assert len(outbox_rows) == sum(len(a) for _, a in plans)
