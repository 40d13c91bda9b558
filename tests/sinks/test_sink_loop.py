"""The consumer loop's ordering rules, with in-memory Kafka: flush before commit, commits only below the lowest
unfinished record, no commit on failure, per-account order, the in-flight bound."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sinks.executor import ActionExecutor
from sinks.outbox import SqliteOutbox
from sinks.sink_loop import SinkLoop
from tests.sinks.fakes import FakeOutput, FakeSource, action_value, handler
from tests.sinks.helpers import make_executor, notice, ticket


class FailingOutput(FakeOutput):
    def flush(self) -> None:
        raise RuntimeError("broker unavailable")


def test_outputs_that_fail_to_flush_leave_the_offsets_uncommitted(outbox, sandbox):
    out = FailingOutput()
    source = FakeSource.of([action_value("k1", [ticket("k1")], 0)], out)
    ex = make_executor(outbox, sandbox)
    loop = SinkLoop(source, out, handler(ex), 10)
    with pytest.raises(RuntimeError):
        ex.run(loop.run(exit_when_idle_s=1))
    assert source.committed == {}
    # the redelivery after a restart finds the receipt in the outbox and re-sends the outputs
    out2 = FakeOutput()
    again = FakeSource.of([action_value("k1", [ticket("k1")], 0)], out2)
    ex2 = make_executor(outbox, sandbox)
    ex2.run(SinkLoop(again, out2, handler(ex2), 10).run(exit_when_idle_s=0.2))
    assert again.committed == {("agent.actions", 0): 1}
    assert [r["tool"] for r in out2.on("agent.receipts")] == ["CreateTicket"]
    assert len(sandbox.ledger()) == 1


class GatedClient:
    """A tool client whose calls for chosen keys wait until the test opens their gate (no HTTP: the loop's
    commit rule is what is under test). Records the order in which calls start."""

    def __init__(self, held: set[str]) -> None:
        self.gates = {k: asyncio.Event() for k in held}
        self.started: list[str] = []
        self.active = 0
        self.max_active = 0

    async def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.started.append(idempotency_key)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if idempotency_key in self.gates:
                await self.gates[idempotency_key].wait()
            await asyncio.sleep(0.001)
            return {"id": f"REF-{idempotency_key}", "status": "ok"}
        finally:
            self.active -= 1

    async def close(self) -> None:
        pass


def _record(key: str, offset: int, account: str | None = None) -> bytes:
    value = json.loads(action_value(key, [notice(key)], offset))
    if account:
        value["account_id"] = account
    return json.dumps(value).encode()


def test_offsets_are_committed_only_below_the_lowest_unfinished_record(tmp_path):
    client = GatedClient(held={"k0", "k3"})
    ex = ActionExecutor(SqliteOutbox(tmp_path / "box.sqlite"), client)
    out = FakeOutput()
    source = FakeSource.of([_record(f"k{i}", i) for i in range(8)], out)
    loop = SinkLoop(source, out, handler(ex), max_in_flight=8, flush_interval_s=0.0)
    commits: list[dict] = []

    async def scenario() -> None:
        task = asyncio.create_task(loop.run(exit_when_idle_s=0.5))
        while len(out.on("agent.traces")) < 6:
            await asyncio.sleep(0.01)
        commits.append(dict(source.committed))
        client.gates["k0"].set()
        while len(out.on("agent.traces")) < 7:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        commits.append(dict(source.committed))
        client.gates["k3"].set()
        await task
        commits.append(dict(source.committed))

    ex.run(scenario())
    # k1, k2, k4..k7 done while k0 runs: nothing below 0 is safe. Then k0 done: up to k3, which still runs.
    assert commits[0].get(("agent.actions", 0), 0) == 0
    assert commits[1] == {("agent.actions", 0): 3}
    assert commits[2] == {("agent.actions", 0): 8}
    assert client.max_active == 8


def test_plans_of_one_account_run_in_input_order_and_the_bound_holds(tmp_path):
    client = GatedClient(held={"a0"})  # the account's first plan is slow: its later plans must wait for it
    ex = ActionExecutor(SqliteOutbox(tmp_path / "box.sqlite"), client)
    out = FakeOutput()
    values = [_record(f"a{i}", i, account="acct-a") for i in range(4)] + \
             [_record(f"b{i}", 4 + i, account=f"acct-b{i}") for i in range(12)]
    source = FakeSource.of(values, out)
    loop = SinkLoop(source, out, handler(ex), max_in_flight=3, flush_interval_s=0.0)

    async def scenario() -> None:
        task = asyncio.create_task(loop.run(exit_when_idle_s=0.5))
        while not all(f"b{i}" in client.started for i in range(12)):
            await asyncio.sleep(0.01)
        assert [k for k in client.started if k.startswith("a")] == ["a0"]  # others of acct-a held back
        client.gates["a0"].set()
        await task

    ex.run(scenario())
    assert [k for k in client.started if k.startswith("a")] == ["a0", "a1", "a2", "a3"]
    assert client.max_active <= 3
    assert source.committed == {("agent.actions", 0): 16}
    assert sorted(t["offset"] for t in out.on("agent.traces")) == list(range(16))


def test_a_full_sink_fetches_nothing_and_pauses_when_full_for_long(tmp_path):
    client = GatedClient(held={"k0", "k1"})
    ex = ActionExecutor(SqliteOutbox(tmp_path / "box.sqlite"), client)
    out = FakeOutput()
    source = FakeSource.of([_record(f"k{i}", i) for i in range(6)], out)
    loop = SinkLoop(source, out, handler(ex), max_in_flight=2, max_pending=2, flush_interval_s=0.0,
                    pause_after_s=0.3)

    async def scenario() -> None:
        task = asyncio.create_task(loop.run(exit_when_idle_s=0.5))
        await asyncio.sleep(0.15)
        assert len(source.fetched) == 2 and 0 not in source.polls  # full: no fetch, not paused yet
        await asyncio.sleep(1.2)
        assert len(source.fetched) == 2 and 0 in source.polls      # full for long: paused, still polling
        client.gates["k0"].set()
        client.gates["k1"].set()
        await task

    ex.run(scenario())
    assert sorted(t["offset"] for t in out.on("agent.traces")) == list(range(6))
    assert source.committed == {("agent.actions", 0): 6}


def test_a_full_sink_fetches_again_only_at_its_low_water_mark(tmp_path):
    keys = [f"k{i}" for i in range(14)]
    client = GatedClient(held=set(keys))
    ex = ActionExecutor(SqliteOutbox(tmp_path / "box.sqlite"), client)
    out = FakeOutput()
    source = FakeSource.of([_record(k, i) for i, k in enumerate(keys)], out)
    loop = SinkLoop(source, out, handler(ex), max_in_flight=8, max_pending=8, flush_interval_s=0.0,
                    pause_after_s=0.2)
    assert loop.resume_room == 2

    async def scenario() -> None:
        task = asyncio.create_task(loop.run(exit_when_idle_s=0.5))
        await asyncio.sleep(0.4)                      # full, and paused
        assert len(source.fetched) == 8
        client.gates["k0"].set()
        await asyncio.sleep(0.3)
        assert len(source.fetched) == 8               # one slot free: below the mark, no fetch, still paused
        client.gates["k1"].set()
        await asyncio.sleep(0.3)
        assert len(source.fetched) == 10              # two free: one batch of two
        for k in keys:
            client.gates[k].set()
        await task

    ex.run(scenario())
    assert [n for n in source.polls if n > 0][:2] == [8, 2]
    assert all(n == 0 or n >= 2 for n in source.polls), source.polls  # never a poll for one record
    assert sorted(t["offset"] for t in out.on("agent.traces")) == list(range(14))
    assert source.committed == {("agent.actions", 0): 14}


def test_run_stops_when_idle_by_its_clock(outbox, sandbox):
    ticks = iter(range(10_000))
    out = FakeOutput()
    ex = make_executor(outbox, sandbox)
    loop = SinkLoop(FakeSource([], out), out, handler(ex), max_in_flight=1, clock=lambda: float(next(ticks)))
    stats = ex.run(loop.run(exit_when_idle_s=3))
    assert stats.records == 0 and next(ticks) < 2000  # a few hundred readings of its clock, not 10,000
