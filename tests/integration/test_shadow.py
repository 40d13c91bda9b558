"""Shadow mode through the real job: the candidate proposes beside the live policy and executes nothing."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.policy import RulePolicy
from jobs.shadow import summarize
from tests.golden.normalize import normalize
from tests.jobrun import REPO, SCENARIO, run_job

pytestmark = pytest.mark.flink
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "orders_scenario.expected.json"


class NoHoldPolicy(RulePolicy):
    """A deliberately different candidate: the rules, but it never places a payment hold."""

    name = "no-hold"

    def propose(self, env, idempotency_key):
        r = super().propose(env, idempotency_key)
        return r.model_copy(update={"actions": [a for a in r.actions if a.tool != "PlacePaymentHold"]})


@pytest.fixture(scope="module")
def shadow_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("shadow")
    mp = pytest.MonkeyPatch()
    # the Flink Python workers import the candidate from this module
    mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    try:
        out = run_job(SCENARIO, base / "out", "--shadow-policy", "tests.integration.test_shadow:NoHoldPolicy",
                      state=base / "state")
    finally:
        mp.undo()
    return base, out


def test_live_outputs_are_unchanged(shadow_run):
    _, out = shadow_run
    got, expected = normalize(out), json.loads(GOLDEN.read_text())
    for name in expected:  # receipts, actions, responses, traces, dlq, breaches: as without shadow
        assert got[name] == expected[name], f"{name} differs from {GOLDEN.name}"
    assert any(r["ref"] == "HOLD-12345" for r in out["receipts"])  # the live policy still held


def test_the_candidate_executed_nothing(shadow_run):
    base, out = shadow_run
    ledger = sqlite3.connect(base / "state" / "sandbox_tools.sqlite").execute(
        "SELECT effect, idempotency_key FROM ledger").fetchall()
    assert len(ledger) == len(out["receipts"]) == 5
    assert sorted(k for _, k in ledger) == sorted(r["idempotency_key"] for r in out["receipts"])


def test_the_shadow_report_shows_the_difference(shadow_run):
    base, out = shadow_run
    recs = out["shadow"]
    handled = [t for t in out["traces"] if t["outcome"] in ("processed", "rate_limited", "no_action")
               and t["idempotency_key"] in {r["idempotency_key"] for r in recs}]
    assert len(recs) == len({r["idempotency_key"] for r in recs}) == 4  # 3 VIP notices + 1 breach; no duplicate
    assert len(handled) == 4
    s = summarize(recs)
    assert (s["envelopes"], s["agree"]) == (4, 3)
    assert s["live_by_tool"] == {"CreateTicket": 1, "PlacePaymentHold": 1, "SendNotice": 3}
    assert s["candidate_by_tool"] == {"CreateTicket": 1, "SendNotice": 3}
    [d] = s["examples"]
    assert d["topic"] == "risk.order_threshold_breach" and d["live_outcome"] == "processed"
    assert (d["live"], d["candidate"]) == (["CreateTicket", "PlacePaymentHold"], ["CreateTicket"])
    text = subprocess.run([sys.executable, "-m", "jobs.shadow", "report", str(base / "out" / "shadow.jsonl")],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "agreement: 3/4 (75.0%)" in text
    assert "live actions: CreateTicket x1, PlacePaymentHold x1, SendNotice x3" in text
    assert "candidate actions: CreateTicket x1, SendNotice x3" in text
    assert "PlacePaymentHold" in text.split("disagreements")[1]
