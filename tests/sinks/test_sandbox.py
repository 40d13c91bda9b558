"""The sandbox tool service over real HTTP: idempotency, conflicts, the comment endpoint, fault injection."""
from __future__ import annotations

import pytest
import requests

from sinks.faults import Faults, FaultPlan
from tests.sinks.helpers import effects

TICKET = {"summary": "Order o1 risk breach", "labels": ["risk"]}


def test_same_key_replays_and_different_body_is_409(sandbox):
    first = sandbox.post("/tickets", TICKET, "k1")
    again = sandbox.post("/tickets", TICKET, "k1")
    other = sandbox.post("/tickets", {**TICKET, "summary": "something else"}, "k1")
    assert first.status_code == 201 and first.json()["id"].startswith("TKT-")
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert other.status_code == 409
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]


def test_refs_follow_the_sandbox_conventions(sandbox):
    assert sandbox.post("/payments/holds", {"order_id": "12345", "reason": "r"}, "k").json()["id"] == "HOLD-12345"
    assert sandbox.post("/messages", {"account_id": "a", "template": "t"}, "k").json()["id"].startswith("MSG-")


def test_requests_without_key_or_fields_are_rejected(sandbox):
    assert sandbox.post("/tickets", TICKET, None).status_code == 400
    assert sandbox.post("/tickets", {"labels": []}, "k2").status_code == 422
    assert sandbox.post("/nowhere", {}, "k3").status_code == 404
    assert sandbox.ledger() == []


def test_ticket_comments(sandbox):
    ref = sandbox.post("/tickets", TICKET, "k1").json()["id"]
    c = sandbox.post(f"/tickets/{ref}/comments", {"text": "hold placed"}, "c1")
    assert c.status_code == 201 and c.json()["id"].startswith("CMT-") and c.json()["ticket"] == ref
    assert sandbox.post(f"/tickets/{ref}/comments", {"text": "hold placed"}, "c1").json() == c.json()
    assert sandbox.post("/tickets/TKT-NOPE/comments", {"text": "x"}, "c2").status_code == 404
    assert effects(sandbox.ledger()) == [("ticket.create", "k1"), ("ticket.comment", "c1")]


def test_close_and_release_change_object_state(sandbox):
    t = sandbox.post("/tickets", TICKET, "k1").json()["id"]
    sandbox.post("/payments/holds", {"order_id": "o9", "reason": "r"}, "k1")
    assert sandbox.post(f"/tickets/{t}/close", {"reason": "x"}, "comp-k1").json()["status"] == "closed"
    assert sandbox.post("/payments/holds/HOLD-o9/release", {"reason": "x"}, "comp-k1").json()["status"] == "released"
    assert sandbox.obj(t)["status"] == "closed" and sandbox.obj("HOLD-o9")["status"] == "released"


def test_injected_500s_then_success(sandbox):
    sandbox.faults(fail_next=2)
    assert [sandbox.post("/tickets", TICKET, "k").status_code for _ in range(3)] == [500, 500, 201]
    assert len(sandbox.ledger()) == 1


def test_dropped_connection_before_and_after_work(sandbox):
    sandbox.faults(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        sandbox.post("/tickets", TICKET, "k1")
    assert sandbox.ledger() == []
    sandbox.faults(drop_after_next=1)
    with pytest.raises(requests.ConnectionError):
        sandbox.post("/tickets", TICKET, "k1")
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]  # the work happened, the answer was lost


def test_slow_request_past_the_client_timeout_still_does_its_work_once(sandbox):
    sandbox.faults(slow_next=1, slow_ms=800)
    with pytest.raises(requests.Timeout):
        requests.post(sandbox.url + "/tickets", json=TICKET, headers={"Idempotency-Key": "k1"}, timeout=0.2)
    assert effects(sandbox.settled()) == [("ticket.create", "k1")]
    assert sandbox.post("/tickets", TICKET, "k1").status_code == 200  # a retry is a replay


def test_fault_settings_are_validated_and_resettable(sandbox):
    r = requests.post(sandbox.url + "/_faults", json={"fail_nxt": 1}, timeout=5)
    assert r.status_code == 400
    sandbox.faults(fail_paths={"/tickets": 503}, latency_ms=1)
    assert sandbox.post("/tickets", TICKET, "k").status_code == 503
    assert sandbox.faults(reset=True) == Faults().as_dict()
    assert sandbox.post("/tickets", TICKET, "k").status_code == 201


def test_fault_plan_consumption_order():
    f = Faults()
    f.update({"fail_paths": {"/tickets": 422, "/payments/holds/*": 503}, "fail_next": 1, "drop_after_next": 1})
    assert f.take("/tickets") == FaultPlan(fail_status=422)          # exact path, counters untouched
    assert f.take("/tickets/TKT-1/close") == FaultPlan(fail_status=500)  # not the exact path: fail_next
    assert f.take("/payments/holds/HOLD-1/release") == FaultPlan(fail_status=503)  # prefix
    assert f.take("/messages") == FaultPlan(drop_after=True)
    assert f.take("/messages") == FaultPlan()
    with pytest.raises(ValueError):
        f.update({"nope": 1})
