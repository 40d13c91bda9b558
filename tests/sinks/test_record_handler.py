"""The per-record function of the standalone sink (no broker): parse, check, execute, output records."""
from __future__ import annotations

import json

from sinks.record_handler import Message
from tests.sinks.fakes import TOPIC, action_value, handler
from tests.sinks.helpers import hold, make_executor, ticket


def _by_name(outs):
    by: dict[str, list[dict]] = {}
    for name, rec in outs:
        by.setdefault(name, []).append(rec)
    return by


def test_a_record_becomes_receipts_a_response_and_a_trace(outbox, sandbox):
    ex = make_executor(outbox, sandbox)
    h = handler(ex)
    msg = Message(TOPIC, 2, 41, action_value("k1", [ticket("k1"), hold("k1", "o1")], 7))
    out = _by_name(ex.run(h.handle(h.parse(msg))))
    assert [r["tool"] for r in out["receipts"]] == ["CreateTicket", "PlacePaymentHold"]
    [resp] = out["responses"]
    assert resp["receipts"] == [f"{r['tool']}:{r['ref']}" for r in out["receipts"]]
    [trace] = out["traces"]
    assert (trace["topic"], trace["partition"], trace["offset"], trace["outcome"]) == \
        ("cdc.public.orders", 0, 7, "processed")
    assert [r.envelope_ref for r in outbox.rows()] == [f"{TOPIC}/2/41"] * 2


def test_redelivery_repeats_outputs_but_a_duplicate_record_does_not(outbox, sandbox):
    ex = make_executor(outbox, sandbox)
    h = handler(ex)
    value = action_value("k1", [ticket("k1")], 7)
    first = _by_name(ex.run(h.handle(h.parse(Message(TOPIC, 0, 5, value)))))
    redelivered = _by_name(ex.run(h.handle(h.parse(Message(TOPIC, 0, 5, value)))))
    duplicate = _by_name(ex.run(h.handle(h.parse(Message(TOPIC, 0, 6, value)))))
    assert redelivered["receipts"] == first["receipts"] and redelivered["traces"][0]["outcome"] == "processed"
    assert "receipts" not in duplicate and duplicate["traces"][0]["outcome"] == "duplicate"
    assert duplicate["responses"][0]["receipts"] == first["responses"][0]["receipts"]
    assert len(sandbox.ledger()) == 1


def test_unparsable_values_go_to_the_dlq_without_a_call(outbox, sandbox):
    ex = make_executor(outbox, sandbox)
    h = handler(ex)
    for value, reason in [(b"{not json", "malformed_json"), (b"[1]", "not_an_object"),
                          (json.dumps({"idempotency_key": "k"}).encode(), "invalid_response")]:
        out = _by_name(ex.run(h.handle(h.parse(Message(TOPIC, 0, 3, value)))))
        assert [d["reason"] for d in out["dlq"]] == [reason]
        assert out["traces"][0]["outcome"] == "dlq" and out["traces"][0]["offset"] == 3
    assert sandbox.stats()["requests"] == {} and outbox.rows() == []


def test_actions_breaking_the_contract_never_reach_a_tool(outbox, sandbox):
    ex = make_executor(outbox, sandbox)
    h = handler(ex)
    wrong_key = action_value("k1", [ticket("other-key")], 7)
    bad_tool = json.loads(action_value("k1", [ticket("k1")], 7))
    bad_tool["response"]["actions"][0]["tool"] = "WireMoney"
    for value in (wrong_key, json.dumps(bad_tool).encode()):
        out = _by_name(ex.run(h.handle(h.parse(Message(TOPIC, 0, 9, value)))))
        assert [d["reason"] for d in out["dlq"]] == ["invalid_response"]
        assert out["dlq"][0]["idempotency_key"] == "k1" and "receipts" not in out
    assert sandbox.stats()["requests"] == {} and outbox.rows() == []


def test_plans_are_ordered_by_account_else_by_key(outbox, sandbox):
    h = handler(make_executor(outbox, sandbox))
    with_account = json.loads(action_value("k1", [ticket("k1")], 7))
    with_account["account_id"] = "acct-9"
    assert h.parse(Message(TOPIC, 0, 1, json.dumps(with_account).encode())).order_key == "acct-9"
    assert h.parse(Message(TOPIC, 0, 2, action_value("k2", [ticket("k2")], 8))).order_key == "k2"
    assert h.parse(Message(TOPIC, 0, 3, b"{not json")).order_key == f"{TOPIC}/0/3"
