"""The chaos checker on hand-built runs: it must say duplicate, loss, unexpected or unaccounted when it is so."""
from chaos.invariants import InputRecord, check

T = "cdc.public.orders"
VIP = InputRecord((T, 0, 0), "idem-a", "actionable")
PLAIN = InputRecord((T, 1, 0), "idem-b", "no_action")
BAD = InputRecord((T, 2, 0), None, "dlq")
NOTICE = ("SendNotice", "idem-a")


def trace(pos, outcome, key, receipts=(), reason=None, **kw):
    t = {"topic": pos[0], "partition": pos[1], "offset": pos[2], "outcome": outcome, "idempotency_key": key,
         "receipts": list(receipts), "lag_ms": 5, **kw}
    if reason:
        t["reason"] = reason
    return t


def clean_run():
    traces = [trace(VIP.position, "processed", "idem-a", ["SendNotice:MSG-1"]),
              trace(PLAIN.position, "no_action", "idem-b"),
              trace(BAD.position, "dlq", None, reason="pii_not_tokenized")]
    receipts = [{"tool": "SendNotice", "ref": "MSG-1", "idempotency_key": "idem-a"}]
    ledger = [{"effect": "notice.send", "ref": "MSG-1", "idempotency_key": "idem-a"}]
    dlq = [{"reason": "pii_not_tokenized", "source": {"topic": T, "partition": 2, "offset": 0}}]
    return [VIP, PLAIN, BAD], {NOTICE}, traces, receipts, ledger, dlq


def test_a_clean_run_passes_and_counts_repeated_identical_outputs():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    traces.append({**traces[0], "lag_ms": 900})  # the sink re-sent a redelivered record's trace
    receipts.append(dict(receipts[0]))
    v = check(inputs, expected, traces, receipts, ledger, dlq)
    assert v.ok, v.examples()
    assert v.redelivered_outputs == 2
    assert v.summary()["duplicates"] == 0 and v.summary()["losses"] == 0


def test_a_second_effect_at_the_tool_is_a_duplicate():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    ledger.append({"effect": "notice.send", "ref": "MSG-2", "idempotency_key": "idem-a"})
    v = check(inputs, expected, traces, receipts, ledger, dlq)
    assert not v.ok
    assert v.duplicates == ["SendNotice idem-a executed 2 times at the tool"]


def test_a_re_keyed_re_execution_still_counts_against_its_action():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    ledger.append({"effect": "notice.send", "ref": "MSG-9", "idempotency_key": "idem-a:unsafe-123"})
    receipts.append({"tool": "SendNotice", "ref": "MSG-9", "idempotency_key": "idem-a"})
    v = check(inputs, expected, traces, receipts, ledger, dlq)
    assert len(v.duplicates) == 2  # two effects, two distinct receipts
    assert not v.unexpected


def test_two_different_outcomes_for_one_position_are_a_duplicate():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    traces.append(trace(VIP.position, "duplicate", "idem-a"))
    v = check(inputs, expected, traces, receipts, ledger, dlq)
    assert len(v.duplicates) == 1 and "2 different outcomes" in v.duplicates[0]


def test_missing_trace_effect_and_receipt_are_losses():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    v = check(inputs, expected, traces[1:], [], [], dlq)
    assert len(v.losses) == 3
    assert any("no outcome" in m for m in v.losses)
    assert any("never executed" in m for m in v.losses)
    assert any("no receipt" in m for m in v.losses)


def test_an_action_nobody_expected_is_unexpected():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    ledger.append({"effect": "ticket.create", "ref": "TKT-1", "idempotency_key": "idem-z"})
    receipts.append({"tool": "CreateTicket", "ref": "TKT-1", "idempotency_key": "idem-z"})
    v = check(inputs, expected, traces, receipts, ledger, dlq)
    assert len(v.unexpected) == 2 and not v.duplicates and not v.losses


def test_a_rejection_without_a_dlq_record_is_unaccounted():
    inputs, expected, traces, receipts, ledger, _ = clean_run()
    v = check(inputs, expected, traces, receipts, ledger, [])
    assert v.unaccounted_rejections == [f"{T}/2@0 traced dlq/pii_not_tokenized without a DLQ record"]
    wrong_reason = [{"reason": "late", "source": {"topic": T, "partition": 2, "offset": 0}}]
    assert not check(inputs, expected, traces, receipts, ledger, wrong_reason).ok


def test_a_redelivered_input_must_be_one_processed_and_the_rest_duplicate():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    again = InputRecord((T, 0, 7), "idem-a", "actionable")
    ok = check([*inputs, again], expected, [*traces, trace(again.position, "duplicate", "idem-a")],
               receipts, ledger, dlq)
    assert ok.ok, ok.examples()
    both = check([*inputs, again], expected, [*traces, trace(again.position, "processed", "idem-a")],
                 receipts, ledger, dlq)
    assert both.wrong_outcomes and "1 processed + 1 duplicate" in both.wrong_outcomes[0]


def test_a_wrong_outcome_for_an_invalid_record_is_reported():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    traces[2] = trace(BAD.position, "no_action", None)
    v = check(inputs, expected, traces, receipts, ledger, dlq)
    assert v.wrong_outcomes == [f"{T}/2@0: expected dlq, got no_action"]


def test_derived_breaches_are_identified_by_their_key_and_need_a_trace():
    inputs, expected, traces, receipts, ledger, dlq = clean_run()
    expected |= {("CreateTicket", "idem-br"), ("PlacePaymentHold", "idem-br")}
    receipts += [{"tool": "CreateTicket", "ref": "TKT-1", "idempotency_key": "idem-br"},
                 {"tool": "PlacePaymentHold", "ref": "HOLD-o3", "idempotency_key": "idem-br"}]
    ledger += [{"effect": "ticket.create", "ref": "TKT-1", "idempotency_key": "idem-br"},
               {"effect": "hold.place", "ref": "HOLD-o3", "idempotency_key": "idem-br"}]
    v = check(inputs, expected, traces, receipts, ledger, dlq)
    assert v.losses == ["no outcome for breach idem-br"]
    breach = {"topic": "risk.order_threshold_breach", "partition": -1, "offset": -1, "derived": True,
              "outcome": "processed", "idempotency_key": "idem-br", "receipts": ["CreateTicket:TKT-1"]}
    assert check(inputs, expected, [*traces, breach], receipts, ledger, dlq).ok
