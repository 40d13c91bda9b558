"""Exactly-once side effects through the executor, the outbox and the real sandbox over HTTP.

Every test runs against the SQLite and the PostgreSQL outbox.
"""
from __future__ import annotations

import threading
import time

import pytest

from contracts.models import AgentResponse
from sinks.executor import RetryPolicy
from sinks.outbox import open_outbox
from sinks.plan_records import plan_records
from tests.sinks.helpers import ENVELOPE, POS, FixedDelay, effects, hold, make_executor, notice, ticket, wait_until


def _records(result, key="k1"):
    resp = AgentResponse(summary="s", actions=[o.action for o in result.outcomes], citations=["x@v1"])
    return plan_records(POS, key, resp, result, ENVELOPE, "streaming_agent@v1")


def test_duplicate_action_reaches_the_tool_once_and_replays_its_receipt(outbox, outbox_target, sandbox):
    first = make_executor(outbox, sandbox).execute_plan([ticket("k1")], "env/0/1")
    # a restarted sink: new outbox connection, new HTTP client
    second_box = open_outbox(outbox_target)
    second = make_executor(second_box, sandbox).execute_plan([ticket("k1")], "env/0/1")
    second_box.close()

    [o1], [o2] = first.outcomes, second.outcomes
    assert o1.status == "executed" and o1.new_receipt and o1.receipt.ref.startswith("TKT-")
    assert o2.status == "replayed" and not o2.new_receipt and o2.receipt == o1.receipt
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]
    assert sandbox.requests_to("/tickets") == 1  # the replay came from the outbox, not the tool
    [row] = outbox.rows()
    assert row.state == "receipted" and row.receipt == o1.receipt

    assert [r for name, r in _records(first) if name == "receipts"] != []
    assert [name for name, _ in _records(second)] == ["responses", "traces"]
    assert _records(second)[-1][1]["outcome"] == "duplicate"


def test_racing_executors_yield_one_effect_and_one_receipt(outbox_target, sandbox):
    sandbox.faults(latency_ms=150)  # make the two calls overlap at the tool
    boxes = [open_outbox(outbox_target) for _ in range(2)]
    results = [None, None]
    plan = [ticket("k1"), hold("k1"), notice("k1")]

    def run(i):
        results[i] = make_executor(boxes[i], sandbox).execute_plan(plan, "env/0/1")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in boxes:
        b.close()

    assert sorted(effects(sandbox.settled())) == sorted(
        [("ticket.create", "k1"), ("hold.place", "k1"), ("notice.send", "k1")])
    for i in range(3):
        pair = [r.outcomes[i] for r in results]
        assert sum(o.new_receipt for o in pair) == 1, pair  # exactly one receipt record per action
        assert pair[0].receipt == pair[1].receipt


def test_transient_500s_are_retried_without_a_second_effect(outbox, sandbox):
    sandbox.faults(fail_next=3)
    [o] = make_executor(outbox, sandbox).execute_plan([ticket("k1")], "env/0/1").outcomes
    assert o.status == "executed" and o.attempts == 4
    assert sandbox.requests_to("/tickets") == 4
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]
    assert outbox.rows()[0].attempts == 4


@pytest.mark.parametrize("after_work", [False, True], ids=["slow-before-work", "slow-after-work"])
def test_timeouts_are_retried_without_a_second_effect(outbox, sandbox, after_work):
    sandbox.faults(slow_next=2, slow_ms=1500, slow_after_work=after_work)
    ex = make_executor(outbox, sandbox, timeout_s=0.5)
    [o] = ex.execute_plan([hold("k1", "o7")], "env/0/1").outcomes
    assert o.status == "executed" and o.attempts == 3 and o.receipt.ref == "HOLD-o7"
    assert effects(sandbox.settled()) == [("hold.place", "k1")]


def test_dropped_connections_are_retried_without_a_second_effect(outbox, sandbox):
    sandbox.faults(drop_next=1, drop_after_next=1)
    [o] = make_executor(outbox, sandbox).execute_plan([notice("k1")], "env/0/1").outcomes
    assert o.status == "executed" and o.attempts == 3
    assert effects(sandbox.ledger()) == [("notice.send", "k1")]


def test_4xx_is_not_retried(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 422})
    result = make_executor(outbox, sandbox).execute_plan([ticket("k1")], "env/0/1")
    [o] = result.outcomes
    assert o.status == "failed" and o.attempts == 1 and "HTTP 422" in o.error
    assert sandbox.requests_to("/tickets") == 1 and sandbox.ledger() == []
    [row] = outbox.rows()
    assert row.state == "failed" and row.receipt is None
    dlq = [r for name, r in _records(result) if name == "dlq"]
    assert [d["reason"] for d in dlq] == ["tool_failed"] and dlq[0]["action"]["tool"] == "CreateTicket"


def test_key_reused_with_another_body_is_422_and_permanent(outbox, sandbox):
    assert sandbox.post("/tickets", {"summary": "another body", "labels": []}, "k1").status_code == 201
    result = make_executor(outbox, sandbox).execute_plan([ticket("k1")], "env/0/1")
    [o] = result.outcomes
    assert o.status == "failed" and "HTTP 422" in o.error and o.attempts == 1
    assert len(sandbox.ledger()) == 1 and sandbox.requests_to("/tickets") == 2
    assert [d["reason"] for name, d in _records(result) if name == "dlq"] == ["tool_failed"]


def test_400_is_permanent(outbox, sandbox):
    sandbox.faults(fail_paths={"/messages": 400})
    [o] = make_executor(outbox, sandbox).execute_plan([notice("k1")], "env/0/1").outcomes
    assert o.status == "failed" and "HTTP 400" in o.error and o.attempts == 1
    assert sandbox.requests_to("/messages") == 1 and outbox.rows()[0].state == "failed"


@pytest.mark.parametrize("sandbox", [("--latency-ms", "400")], indirect=True)
def test_409_in_progress_is_retried_until_the_stored_answer(outbox, sandbox):
    """Another client's request with the same key is still in progress when the sink calls: 409, retried
    with the same key, answered with the stored response once the first request is done."""
    body = {"account_id": "acct-1", "template": "vip-order-received"}
    first: dict = {}
    t = threading.Thread(target=lambda: first.update(r=sandbox.post("/messages", body, "k1")))
    t.start()
    wait_until(lambda: sandbox.stats()["inflight"] == 1, "the first request in progress")
    ex = make_executor(outbox, sandbox, retry=FixedDelay(max_attempts=20, base_delay_s=0.1))
    [o] = ex.execute_plan([notice("k1")], "env/0/1").outcomes
    t.join()
    assert sandbox.stats()["status_by_api"]["messages"]["409"] >= 1
    assert o.status == "executed" and o.receipt.ref == first["r"].json()["id"] and o.new_receipt
    assert effects(sandbox.ledger()) == [("notice.send", "k1")]


@pytest.mark.parametrize("sandbox", [("--rate-limit", "tickets=4", "--burst", "1")], indirect=True)
def test_429_waits_for_retry_after_and_spends_no_attempt(outbox, sandbox):
    ex = make_executor(outbox, sandbox, retry=RetryPolicy(max_attempts=1))  # one transient error would fail it
    t0 = time.perf_counter()
    results = [ex.execute_plan([ticket(f"k{i}", f"o{i}")], f"env/0/{i}") for i in range(3)]
    elapsed = time.perf_counter() - t0
    assert [r.outcomes[0].status for r in results] == ["executed"] * 3
    statuses = sandbox.stats()["status_by_api"]["tickets"]
    assert statuses["201"] == 3 and statuses["429"] >= 1
    assert elapsed >= 1.0  # Retry-After: 1 was honoured, not hammered
    assert len(sandbox.ledger()) == 3


def test_gives_up_after_max_attempts_and_a_rerun_does_not_call_again(outbox, sandbox):
    sandbox.faults(fail_next=10)
    ex = make_executor(outbox, sandbox, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01))
    [o] = ex.execute_plan([ticket("k1")], "env/0/1").outcomes
    assert o.status == "failed" and o.attempts == 3 and "gave up after 3 attempts" in o.error
    sandbox.faults(reset=True)
    [again] = ex.execute_plan([ticket("k1")], "env/0/1").outcomes
    assert again.status == "failed" and not again.fresh
    assert sandbox.requests_to("/tickets") == 3 and sandbox.ledger() == []
