"""Group commit: the outbox ops of plans running at once share transactions, and still no tool is called before
its claim is durable. Checked from a second connection to the same outbox (SQLite and PostgreSQL): what another
process can read has been committed."""
from __future__ import annotations

import asyncio
from typing import Any

from sinks.dispatcher import Dispatcher
from sinks.group_commit import OutboxWriter
from sinks.observer import SinkObserver
from sinks.outbox import open_outbox
from sinks.plan_runner import PlanRunner
from tests.sinks.helpers import hold, notice, ticket


class Batches(SinkObserver):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def outbox_batch(self, ops: int, seconds: float) -> None:
        self.sizes.append(ops)


class CheckingClient:
    """At each call, reads the action's row through another connection: it must be there, in `sent`."""

    def __init__(self, outbox_target: str) -> None:
        self.other = open_outbox(outbox_target)
        self.seen: list[tuple[str, str, str | None]] = []

    async def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        tool = {"/tickets": "CreateTicket", "/payments/holds": "PlacePaymentHold", "/messages": "SendNotice"}[endpoint]
        row = self.other.get(tool, idempotency_key)
        self.seen.append((tool, idempotency_key, row.state if row else None))
        await asyncio.sleep(0.002)
        return {"id": f"R-{tool}-{idempotency_key}", "status": "ok"}


def test_plans_in_flight_share_commits_and_every_call_follows_a_durable_claim(outbox, outbox_target):
    batches = Batches()
    client = CheckingClient(outbox_target)
    runner = PlanRunner(OutboxWriter(outbox, batches), client, observer=batches)
    plans = [[ticket(f"k{i}", f"o{i}"), hold(f"k{i}", f"o{i}")] if i % 2 else [notice(f"k{i}")] for i in range(40)]

    async def run_all() -> None:
        d: Dispatcher[list, Any] = Dispatcher(lambda plan, _: runner.run_plan(plan, "in/0/1"), 40)
        for i, plan in enumerate(plans):
            d.submit(f"acct-{i}", plan, len(plan))
        await d.drain()
        assert len(d.take_completed()) == 40

    asyncio.run(run_all())
    client.other.close()
    calls = sum(len(p) for p in plans)
    assert len(client.seen) == calls and {state for _, _, state in client.seen} == {"sent"}
    assert sum(batches.sizes) == 2 * calls            # a claim and a receipt per action
    assert max(batches.sizes) >= 20 and len(batches.sizes) < calls  # shared, not one commit per op
    assert {r.state for r in outbox.rows()} == {"receipted"}
