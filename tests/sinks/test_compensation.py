"""Saga compensation over real HTTP: a permanent failure undoes what the plan already did.

Both orders are covered (hold then failing ticket; ticket then failing hold),
with the records an operator sees: the original receipt, the compensation
receipt, and DLQ records for the undone and the failed action.
"""
from __future__ import annotations

from contracts.models import AgentResponse
from sinks.executor import RetryPolicy
from sinks.plan_records import plan_records
from tests.sinks.helpers import ENVELOPE, POS, effects, hold, make_executor, notice, ticket


def _records(result, key="k1"):
    resp = AgentResponse(summary="s", actions=[o.action for o in result.outcomes], citations=["x@v1"])
    out = plan_records(POS, key, resp, result, ENVELOPE, "streaming_agent@v1")
    by: dict[str, list[dict]] = {}
    for name, rec in out:
        by.setdefault(name, []).append(rec)
    return by


def test_ticket_failure_after_a_hold_releases_the_hold(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 422})
    result = make_executor(outbox, sandbox).execute_plan([hold("k1", "o1"), ticket("k1")], "env/0/1")
    h, t = result.outcomes
    assert (h.status, t.status) == ("compensated", "failed")
    assert h.receipt.ref == "HOLD-o1" and h.compensation.data == {"compensation": True}
    assert sandbox.obj("HOLD-o1")["status"] == "released"
    assert effects(sandbox.ledger()) == [("hold.place", "k1"), ("hold.release", "comp-k1")]
    assert [(r.tool, r.state) for r in outbox.rows()] == [("PlacePaymentHold", "compensated"),
                                                          ("CreateTicket", "failed")]
    recs = _records(result)
    assert [(r["tool"], r["idempotency_key"]) for r in recs["receipts"]] == \
        [("PlacePaymentHold", "k1"), ("PlacePaymentHold", "comp-k1")]
    assert sorted((d["reason"], d["action"]["tool"]) for d in recs["dlq"]) == \
        [("compensated", "PlacePaymentHold"), ("tool_failed", "CreateTicket")]
    assert [a["status"] for a in recs["actions"]] == ["compensated", "failed"]
    assert "responses" not in recs and recs["traces"][0]["outcome"] == "dlq"


def test_hold_failure_after_a_ticket_closes_the_ticket(outbox, sandbox):
    sandbox.faults(fail_paths={"/payments/holds": 409})
    result = make_executor(outbox, sandbox).execute_plan([ticket("k1"), hold("k1", "o1")], "env/0/1")
    t, h = result.outcomes
    assert (t.status, h.status) == ("compensated", "failed")
    assert sandbox.obj(t.receipt.ref)["status"] == "closed"
    assert effects(sandbox.ledger()) == [("ticket.create", "k1"), ("ticket.close", "comp-k1")]
    recs = _records(result)
    assert sorted(d["reason"] for d in recs["dlq"]) == ["compensated", "tool_failed"]
    assert len(recs["receipts"]) == 2


def test_actions_after_the_failure_are_skipped_and_recorded(outbox, sandbox):
    sandbox.faults(fail_paths={"/payments/holds": 422})
    result = make_executor(outbox, sandbox).execute_plan([ticket("k1"), hold("k1"), notice("k1")], "env/0/1")
    assert [o.status for o in result.outcomes] == ["compensated", "failed", "skipped"]
    assert sandbox.requests_to("/messages") == 0
    assert [r.state for r in outbox.rows()] == ["compensated", "failed", "skipped"]
    assert sorted(d["reason"] for d in _records(result)["dlq"]) == ["compensated", "plan_aborted", "tool_failed"]


def test_rerunning_a_failed_plan_redoes_nothing(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 422})
    ex = make_executor(outbox, sandbox)
    ex.execute_plan([hold("k1"), ticket("k1")], "env/0/1")
    before = sandbox.ledger()
    sandbox.faults(reset=True)  # the ticket would succeed now, but the plan was already undone
    again = ex.execute_plan([hold("k1"), ticket("k1")], "env/0/1")
    assert [(o.status, o.fresh) for o in again.outcomes] == [("compensated", False), ("failed", False)]
    assert sandbox.ledger() == before
    recs = _records(again)
    assert list(recs) == ["traces"] and recs["traces"][0]["outcome"] == "dlq"


def test_compensation_is_retried_on_transient_errors(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 422})

    def after_call(action, receipt):  # once the hold is done, make its release fail twice
        sandbox.faults(fail_next=2)

    result = make_executor(outbox, sandbox, after_call=after_call).execute_plan([hold("k1"), ticket("k1")], "e/0/1")
    assert [o.status for o in result.outcomes] == ["compensated", "failed"]
    assert sandbox.requests_to("/payments/holds/HOLD-o1/release") == 3
    assert sandbox.obj("HOLD-o1")["status"] == "released"


def test_a_failed_compensation_is_reported_and_retried_on_replay(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 422, "/payments/holds/HOLD-o1/release": 503})
    ex = make_executor(outbox, sandbox, retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    first = ex.execute_plan([hold("k1"), ticket("k1")], "env/0/1")
    h = first.outcomes[0]
    assert h.status == "executed" and h.error.startswith("compensation failed")
    assert sandbox.obj("HOLD-o1")["status"] == "held"
    assert sorted(d["reason"] for d in _records(first)["dlq"]) == ["tool_failed", "tool_failed"]
    assert outbox.rows()[0].state == "receipted" and outbox.rows()[0].error.startswith("compensation failed")

    sandbox.faults(reset=True)
    again = ex.execute_plan([hold("k1"), ticket("k1")], "env/0/1")
    assert [o.status for o in again.outcomes] == ["compensated", "failed"]
    assert sandbox.obj("HOLD-o1")["status"] == "released"
    recs = _records(again)
    assert [r["idempotency_key"] for r in recs["receipts"]] == ["comp-k1"]  # the hold's own receipt was emitted before
    assert [d["reason"] for d in recs["dlq"]] == ["compensated"]
    assert effects(sandbox.ledger()) == [("hold.place", "k1"), ("hold.release", "comp-k1")]


def test_a_notice_cannot_be_unsent_and_says_so(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 422})
    result = make_executor(outbox, sandbox).execute_plan([notice("k1"), ticket("k1")], "env/0/1")
    n, _ = result.outcomes
    assert n.status == "executed" and n.error == "SendNotice cannot be compensated"
    assert sorted(d["reason"] for d in _records(result)["dlq"]) == ["tool_failed", "tool_failed"]


def test_an_operator_can_reopen_a_failed_action(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 503})
    ex = make_executor(outbox, sandbox, retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    [o] = ex.execute_plan([ticket("k1")], "env/0/1").outcomes
    assert o.status == "failed"
    sandbox.faults(reset=True)
    assert outbox.reopen("CreateTicket", "k1")
    assert not outbox.reopen("CreateTicket", "k1")  # only settled failures reopen
    [again] = ex.execute_plan([ticket("k1")], "env/0/1").outcomes
    assert again.status == "executed" and again.new_receipt
    assert not outbox.reopen("CreateTicket", "k1")  # a receipt is final
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]


def test_a_replayed_failed_plan_does_not_report_the_unsent_notice_again(outbox, sandbox):
    sandbox.faults(fail_paths={"/tickets": 422})
    ex = make_executor(outbox, sandbox)
    ex.execute_plan([notice("k1"), ticket("k1")], "env/0/1")
    again = ex.execute_plan([notice("k1"), ticket("k1")], "env/0/1")
    assert [o.status for o in again.outcomes] == ["replayed", "failed"]
    assert list(_records(again)) == ["traces"]
    assert effects(sandbox.ledger()) == [("notice.send", "k1")]
