"""The compiled gate against the interpretive jsonschema oracle: the same verdict for every input.

Verdict = outcome, reason and the governed envelope (or the masked copy and position of a DLQ
record). Three gates: the compiled one with its msgspec fast path (what the job runs), the
compiled one without it (fastjsonschema only), and the reference (jsonschema). Inputs:
hypothesis-generated valid envelopes and near-valid mutations of each field, the gate fuzz
corpus, hostile lines, and every envelope fixture in the repository.
"""
import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from contracts.contract import load_contract
from jobs.gate import Gate
from tests.envelope_strategies import cdc_envelopes, dumps, hostile_lines, mutated_envelopes
from tests.factories import T0
from tests.jobs.test_gate_fuzz import envelopes as fuzz_corpus

REPO = Path(__file__).resolve().parents[2]
CONTRACT = load_contract()
NOW = T0 + 30 * 86_400_000  # a fixed clock, so the skew rule decides the same in all three
COMPILED = Gate(CONTRACT, "compiled", clock_ms=lambda: NOW)
GENERAL = Gate(CONTRACT, "compiled", clock_ms=lambda: NOW, fast_path=False)
REFERENCE = Gate(CONTRACT, "reference", clock_ms=lambda: NOW)
def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def verdict(gate: Gate, line: str | bytes) -> tuple:
    r = gate.check(line, offset=3)
    env = r.envelope.to_json_dict() if r.envelope is not None else None
    return r.outcome, r.reason, r.tombstone, json.dumps(env, sort_keys=True, default=str), tuple(r.position), \
        json.dumps(r.masked, sort_keys=True, default=str)


def assert_same(line: str | bytes) -> None:
    ref = verdict(REFERENCE, line)
    assert verdict(GENERAL, line) == ref, line
    assert verdict(COMPILED, line) == ref, line


@examples(1500)
@given(cdc_envelopes())
def test_valid_envelopes(env):
    assert_same(dumps(env))
    assert REFERENCE.check(dumps(env), 3).outcome in ("pass", "no_action")


@examples(3000)
@given(mutated_envelopes())
def test_near_valid_mutations(line):
    assert_same(line)


@examples(1500)
@given(hostile_lines())
def test_hostile_lines(line):
    assert_same(line)


@pytest.mark.parametrize("chunk", range(5))
@examples(2000)
@given(fuzz_corpus())
def test_the_gate_fuzz_corpus(chunk, raw):
    assert_same(raw)


def fixture_lines() -> list[str]:
    lines = [ln for p in sorted(REPO.glob("examples/*.jsonl")) for ln in p.read_text().splitlines()]
    from tests.factories import line
    from tests.integration.test_breach_edges import CASES as EDGES
    from tests.integration.test_gate_reasons import CASES
    return lines + [text for text, _, _ in CASES] + [line(e) for inputs, _ in EDGES.values() for e in inputs]


@pytest.mark.parametrize("line", fixture_lines())
def test_every_fixture(line):
    assert_same(line)


def test_the_fast_path_takes_the_common_debezium_shape():
    # not a verdict check: the fast path must actually be the hot path for real Debezium events
    env = {"topic": "cdc.public.orders", "key": '{"id":1001}', "ts_ms": T0, "schema": "v2", "payload": {
        "before": None, "after": {"order_id": "1001", "account_id": "acct-1", "amount": "12.50", "currency": "EUR",
                                  "status": "created", "vip_flag": False, "email": "tok_email_12345678",
                                  "phone": None, "ssn_last4": None},
        "source": {"version": "3.1.0.Final", "connector": "postgresql", "name": "dbserver1", "ts_ms": T0,
                   "snapshot": "false", "db": "shop", "sequence": '["24023928","24023928"]', "ts_us": T0 * 1000,
                   "ts_ns": T0 * 10**6, "schema": "public", "table": "orders", "txId": 771, "lsn": 24023928,
                   "xmin": None},
        "transaction": None, "op": "c", "ts_ms": T0 + 3, "ts_us": (T0 + 3) * 1000, "ts_ns": (T0 + 3) * 10**6}}
    fast = COMPILED._fast[0]
    assert fast.try_envelope(json.dumps(env), NOW) is not None
    assert fast.try_envelope(json.dumps(env, indent=1), NOW) is not None  # whitespace changes nothing
    assert fast.try_payload(json.dumps(env["payload"]).encode()) is not None


@pytest.mark.parametrize("mutate", ["drop_required", "loosen_amount", "keep_pii"])
def test_the_differential_check_catches_a_wrong_compiled_path(mutate, tmp_path):
    """A compiled path with one rule lost disagrees with the oracle on inputs this module generates."""
    import yaml

    from tests.jobrun import contract_copy

    path = contract_copy(tmp_path)
    schema_file = path.parent / "schemas" / "debezium_order_v2.json"
    schema = json.loads(schema_file.read_text())
    broken = copy.deepcopy(schema)
    if mutate == "drop_required":
        broken["$defs"]["row"]["required"].remove("currency")
    elif mutate == "loosen_amount":
        broken["$defs"]["row"]["properties"]["amount"] = {}
    schema_file.write_text(json.dumps(broken))
    contract = load_contract(path)
    if mutate == "keep_pii":
        c = yaml.safe_load(path.read_text())
        c["governance"]["pii_fields"] = ["email", "phone"]
        path.write_text(yaml.safe_dump(c))
        schema_file.write_text(json.dumps(schema))
        contract = load_contract(path)
    wrong = Gate(contract, "compiled", clock_ms=lambda: NOW)
    found = []

    @settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    @given(mutated_envelopes())
    def search(line):
        if verdict(wrong, line) != verdict(REFERENCE, line):
            found.append(line)

    search()
    assert found, f"the differential inputs did not notice a compiled path with {mutate}"
