"""The demo scenario through the real job on a Flink MiniCluster (file mode)."""
import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.golden.normalize import normalize
from tests.jobrun import SCENARIO, run_job

pytestmark = pytest.mark.flink
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "orders_scenario.expected.json"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    first = run_job(SCENARIO, base / "out1", state=base / "state")
    second = run_job(SCENARIO, base / "out2", state=base / "state")
    return base, first, second


def test_golden_trace(demo):
    _, first, _ = demo
    got = normalize(first)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    for name in expected:
        assert got[name] == expected[name], f"{name} differs from {GOLDEN.name}"


def test_seed_story(demo):
    _, o, _ = demo
    [b] = o["breaches"]
    assert b["order_id"] == "12345" and b["order_ids"] == ["12343", "12344", "12345"]
    refs = {r["ref"] for r in o["receipts"]}
    assert "HOLD-12345" in refs
    assert sum(1 for r in o["receipts"] if r["tool"] == "SendNotice") == 3
    assert sum(1 for r in o["receipts"] if r["tool"] == "CreateTicket") == 1


def test_every_line_traced_exactly_once(demo):
    _, o, _ = demo
    n_lines = len(SCENARIO.read_text().splitlines())
    inputs = [t for t in o["traces"] if not t.get("derived")]
    assert sorted(t["offset"] for t in inputs) == list(range(1, n_lines + 1))
    assert len([t for t in o["traces"] if t.get("derived")]) == len(o["breaches"])
    allowed = {"processed", "no_action", "duplicate", "dlq", "late", "rate_limited"}
    assert {t["outcome"] for t in o["traces"]} <= allowed
    for t in o["traces"]:
        assert {"topic", "partition", "offset", "key", "ts_ms", "schema", "idempotency_key", "outcome",
                "actions", "receipts", "lag_ms"} <= set(t)


def test_no_raw_pii_anywhere(demo):
    base, _, _ = demo
    raw_values = ["jane.doe@example.com"]
    for p in base.rglob("*"):
        if p.is_file() and p.suffix in (".jsonl", ".log"):
            text = p.read_text(errors="replace")
            for v in raw_values:
                assert v not in text, p


def test_replay_makes_no_second_side_effect(demo):
    base, first, second = demo
    ledger = sqlite3.connect(base / "state" / "sandbox_tools.sqlite").execute(
        "SELECT effect, idempotency_key FROM ledger").fetchall()
    assert len(ledger) == len(set(ledger)) == len(first["receipts"]) == 5
    assert second["receipts"] == [] and second["actions"] == []
    # the replay answers with the original receipts
    assert sorted(r for x in second["responses"] for r in x["receipts"]) == \
        sorted(f"{r['tool']}:{r['ref']}" for r in first["receipts"])
    outcomes = {t["offset"]: t["outcome"] for t in second["traces"] if not t.get("derived")}
    processed_first = {t["offset"] for t in first["traces"] if t["outcome"] == "processed" and not t.get("derived")}
    assert all(outcomes[o] == "duplicate" for o in processed_first)


def test_optional_global_limit_holds_back_plans_across_accounts(tmp_path):
    """With a global limit of 2 actions per 60 s: the notices at 6:50 and 7:00 fit, the breach
    plan at 7:00 (ticket + hold) would make 4 and is held back, traced and DLQ'd, never executed."""
    o = run_job(SCENARIO, tmp_path / "out", "--global-max-actions-per-minute", "2")
    assert sorted(a["tool"] for a in o["actions"]) == ["SendNotice"] * 3
    held = sorted(d["action"]["tool"] for d in o["dlq"] if d["reason"] == "rate_limited")
    assert held == ["CreateTicket", "PlacePaymentHold"]
    assert [t["outcome"] for t in o["traces"] if t.get("derived")] == ["rate_limited"]
    assert len(o["breaches"]) == 1  # detected and published all the same
