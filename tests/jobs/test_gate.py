import json

import pytest

from contracts.contract import load_contract
from contracts.outcomes import Reason
from jobs.gate import Gate
from tests.factories import T0, breach_env, cdc, line, order_row


@pytest.fixture(scope="module")
def gate():
    return Gate(load_contract())


def check(gate, obj, offset=1):
    return gate.check(line(obj), offset=offset)


def test_valid_order_passes_and_is_stripped(gate):
    row = order_row("o1", vip=True, loyalty_tier="gold", phone="tok_phone_12345678")
    r = check(gate, cdc(T0, after=row, extra_top="x"))
    assert r.outcome == "pass", r.error
    after = r.envelope.payload["after"]
    assert "email" not in after and "phone" not in after and "ssn_last4" not in after  # PII stripped
    assert "loyalty_tier" not in after  # unapproved field stripped
    assert "extra_top" not in r.envelope.payload
    assert r.envelope.offset == 1 and r.envelope.partition == 0


def test_the_readers_position_wins_over_the_envelopes_own_fields(gate):
    r = check(gate, cdc(T0, after=order_row("o1"), partition=2, offset=77), offset=5)
    assert (r.envelope.partition, r.envelope.offset) == (0, 5)
    assert (r.position.partition, r.position.offset) == (0, 5)


def test_tombstone_is_no_action(gate):
    r = check(gate, {"topic": "cdc.public.orders", "key": '{"order_id":"1"}', "ts_ms": T0, "schema": "v2",
                     "payload": None})
    assert r.outcome == "no_action" and r.tombstone


def test_breach_input_passes(gate):
    r = check(gate, breach_env())
    assert r.outcome == "pass", r.error


CASES = {
    Reason.MALFORMED_JSON: '{"topic": "cdc.public.orders", "ts_ms": ',
    Reason.NOT_AN_OBJECT: "[1, 2, 3]",
    Reason.MISSING_FIELD: {k: v for k, v in cdc(T0, after=order_row("o1")).items() if k != "ts_ms"},
    Reason.INVALID_ENVELOPE: dict(cdc(T0, after=order_row("o1")), ts_ms="yesterday"),
    Reason.NOT_ALLOWLISTED: dict(cdc(T0, after=order_row("o1")), schema="v1"),
    Reason.SCHEMA_VIOLATION: cdc(T0, after=order_row("o1", amount="a lot")),
    Reason.PII_NOT_TOKENIZED: cdc(T0, after=order_row("o1", email="jane.doe@example.com")),
    Reason.SENSITIVITY_ABOVE_CEILING: dict(cdc(T0, after=order_row("o1")), sensitivity="Restricted"),
}


@pytest.mark.parametrize("reason", list(CASES), ids=str)
def test_each_reason_code(gate, reason):
    r = check(gate, CASES[reason])
    assert r.outcome == "dlq"
    assert r.reason == reason, r.error
    assert r.error
    assert "jane.doe@example.com" not in json.dumps(r.masked) + r.error


def _order(**row):
    return cdc(T0, after=order_row("o1", **row))


def _with_lsn(lsn: int) -> dict:
    env = _order()
    env["payload"]["source"]["lsn"] = lsn
    return env


def _dup_amount() -> str:
    text = line(_order())
    return text.replace('"amount": "1200.00"', '"amount": "1.00", "amount": "1200.00"').replace(
        '"amount":"1200.00"', '"amount":"1.00","amount":"1200.00"')


# Hostile records (issue 17): each is DLQ'd with its reason and no raw value in the copy or the error.
HOSTILE = {
    "pii in account_id": (_order(account="jane.doe@example.com"), Reason.PII_NOT_TOKENIZED),
    "phone as account_id": (_order(account="+44 20 7946 0958"), Reason.PII_NOT_TOKENIZED),
    "ssn in account_id": (_order(account="ssn 123-45-6789"), Reason.PII_NOT_TOKENIZED),
    "pii in the record key": (dict(_order(), key='{"order_id":"jane.doe@example.com"}'), Reason.PII_NOT_TOKENIZED),
    "full-width at sign": (_order(account="jane\uff20example.com"), Reason.PII_NOT_TOKENIZED),
    "lone surrogate in an id": (_order(account="acct-\ud800"), Reason.INVALID_TEXT),
    "lone surrogate in the key": (dict(_order(), key="\udfff"), Reason.INVALID_TEXT),
    "ts_ms of 2^63": (dict(_order(), ts_ms=2**63), Reason.TS_OUT_OF_RANGE),
    "ts_ms in the year 3000": (dict(_order(), ts_ms=32503680000000), Reason.TS_OUT_OF_RANGE),
    "integer beyond int64": (_with_lsn(2**64), Reason.NUMBER_OUT_OF_RANGE),
    "amount of 1e26": (_order(amount=1e26), Reason.NUMBER_OUT_OF_RANGE),
    "duplicate key": (_dup_amount(), Reason.INVALID_ENVELOPE),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_records_get_their_reason_and_stay_masked(gate, case):
    obj, reason = HOSTILE[case]
    text = obj if isinstance(obj, str) else json.dumps(obj)
    r = gate.check(text, offset=1)
    assert (r.outcome, r.reason) == ("dlq", reason), r.error
    out = json.dumps(r.masked, ensure_ascii=False, default=str) + r.error
    for raw in ("jane.doe@example.com", "7946 0958", "123-45-6789"):
        assert raw not in out


@pytest.mark.parametrize("payload_patch", [
    {"op": "x"},
    {"source": {"lsn": 1, "table": "orders"}},  # source.ts_ms missing
])
def test_schema_violations(gate, payload_patch):
    env = cdc(T0, after=order_row("o1"))
    env["payload"].update(payload_patch)
    assert check(gate, env).reason == Reason.SCHEMA_VIOLATION


def test_wrong_type_amount_and_missing_row_field(gate):
    env = cdc(T0, after=order_row("o1", amount=True))
    assert check(gate, env).reason == Reason.SCHEMA_VIOLATION
    row = order_row("o1")
    del row["currency"]
    assert check(gate, cdc(T0, after=row)).reason == Reason.SCHEMA_VIOLATION


def test_pii_in_before_image_is_caught_and_masked(gate):
    env = cdc(T0, op="u", before=order_row("o1", ssn_last4="1234"), after=order_row("o1"))
    r = check(gate, env)
    assert r.reason == Reason.PII_NOT_TOKENIZED
    assert r.masked["payload"]["before"]["ssn_last4"] == "***"


def test_connect_writer_schema_with_unknown_required_field_fails_closed(gate):
    value = cdc(T0, after=order_row("o1"))["payload"]
    schema = {"type": "struct", "fields": [
        {"field": "after", "type": "struct", "optional": True, "fields": [
            {"field": "order_id", "type": "string", "optional": False},
            {"field": "risk_score", "type": "int32", "optional": False}]},
        {"field": "op", "type": "string", "optional": False}]}
    env = dict(cdc(T0, after=order_row("o1")), payload={"schema": schema, "payload": value})
    assert check(gate, env).reason == Reason.UNKNOWN_REQUIRED_FIELD
    schema["fields"][0]["fields"][1]["optional"] = True  # an unknown optional field is fine (stripped)
    r = check(gate, env)
    assert r.outcome == "pass", r.error


def test_avro_writer_schema_with_unknown_required_field_fails_closed(gate):
    env = breach_env()
    env["writer_schema"] = {"type": "record", "name": "B", "fields": [
        {"name": "breach_id", "type": "string"}, {"name": "severity", "type": "int"}]}
    assert check(gate, env).reason == Reason.UNKNOWN_REQUIRED_FIELD
    env["writer_schema"]["fields"][1]["default"] = 0
    assert check(gate, env).outcome == "pass"


def test_breach_with_too_few_orders_violates_schema(gate):
    env = breach_env()
    env["payload"]["order_ids"] = ["a", "b"]
    assert check(gate, env).reason == Reason.SCHEMA_VIOLATION


def test_non_utf8_bytes_and_deep_nesting(gate):
    assert gate.check(b'{"topic": "\xff\xfe"}', offset=1).reason == Reason.MALFORMED_JSON
    deep = "[" * 5000 + "]" * 5000
    assert gate.check(deep, offset=1).outcome == "dlq"
    nested = cdc(T0, after=order_row("o1"))
    x = nested["payload"]
    for _ in range(40):
        x["deeper"] = {}
        x = x["deeper"]
    assert check(gate, nested).reason == Reason.INVALID_ENVELOPE


def test_nan_is_malformed(gate):
    assert gate.check('{"ts_ms": NaN}', offset=1).reason == Reason.MALFORMED_JSON
