"""Shadow mode, pure part: comparing proposals and reporting."""
import json
import subprocess
import sys

from contracts.contract import load_contract
from contracts.idempotency import idempotency_key
from contracts.models import Action, Envelope
from jobs import shadow
from jobs.policy import PolicyRejected, RulePolicy
from tests.factories import T0, breach_env, cdc, order_row

CONTRACT = load_contract()


def env(d):
    return Envelope.model_validate({"offset": 1, **d})


def key(e):
    return idempotency_key(e.topic, e.key, e.ts_ms)


class NoHold(RulePolicy):
    name = "no-hold"

    def propose(self, env, idem):
        r = super().propose(env, idem)
        return r.model_copy(update={"actions": [a for a in r.actions if a.tool != "PlacePaymentHold"]})


class Reworded(RulePolicy):
    def propose(self, env, idem):
        r = super().propose(env, idem)
        acts = [a.model_copy(update={"args": {**a.args, "summary": "other words"}}) if a.tool == "CreateTicket" else a
                for a in r.actions]
        return r.model_copy(update={"actions": acts, "summary": "Something else."})


class HoldsOrders(RulePolicy):
    def propose(self, env, idem):
        r = super().propose(env, idem)
        hold = Action(tool="PlacePaymentHold", idempotency_key=idem,
                      args={"order_id": env.payload["after"]["order_id"], "reason": "x"})
        return r.model_copy(update={"actions": [*r.actions, hold]})


class Raises(RulePolicy):
    def propose(self, env, idem):
        raise RuntimeError("secret value 12345")


class Rejects(RulePolicy):
    def propose(self, env, idem):
        raise PolicyRejected("timeout: no answer within 10 s")


def live(e):
    return RulePolicy().propose(e, key(e))


def test_same_tools_and_targets_agree_even_when_reworded():
    e = env(breach_env(order_ids=["a", "b", "c"]))
    for cand in (RulePolicy(), Reworded()):
        rec = shadow.shadow_record(cand, e, key(e), CONTRACT, live(e), "processed")
        assert rec["agree"] and rec["candidate_error"] is None
        assert rec["live"] == rec["candidate"] == ["CreateTicket", "PlacePaymentHold"]
    assert set(rec) == {"idempotency_key", "topic", "live", "candidate", "agree", "live_args",
                        "candidate_args", "candidate_error", "live_outcome"}


def test_a_missing_hold_disagrees():
    e = env(breach_env(order_ids=["a", "b", "c"]))
    rec = shadow.shadow_record(NoHold(), e, key(e), CONTRACT, live(e), "processed")
    assert not rec["agree"] and rec["candidate"] == ["CreateTicket"]
    assert rec["live_args"][1] == {"order_id": "c", "reason": "high_value_orders_3_in_10m"}
    assert rec["topic"] == "risk.order_threshold_breach" and rec["idempotency_key"] == key(e)


def test_a_different_target_disagrees():
    e = env(breach_env(order_ids=["a", "b", "c"]))
    p = live(e)
    other = p.model_copy(update={"actions": [p.actions[0], p.actions[1].model_copy(
        update={"args": {"order_id": "b", "reason": "high_value_orders_3_in_10m"}})]})
    assert not shadow.compare(e, key(e), p, other)["agree"]


def test_invalid_or_failing_candidates_propose_nothing_and_disagree():
    e = env(cdc(T0, after=order_row("o12345", "acct-9", vip=True)))
    rec = shadow.shadow_record(HoldsOrders(), e, key(e), CONTRACT, live(e), "processed")
    assert not rec["agree"] and rec["candidate"] == [] and rec["candidate_args"] == []
    assert "PlacePaymentHold is not allowed for input cdc.public.orders@v2" in rec["candidate_error"]
    rec = shadow.shadow_record(Raises(), e, key(e), CONTRACT, live(e), "processed")
    assert rec["candidate_error"] == "candidate failed: RuntimeError" and "12345" not in rec["candidate_error"]
    rec = shadow.shadow_record(Rejects(), e, key(e), CONTRACT, None, "dlq")
    assert rec["candidate_error"] == "invalid_response: timeout: no answer within 10 s"
    assert rec["live"] == [] and rec["live_outcome"] == "dlq" and not rec["agree"]


def test_nothing_and_nothing_agree():
    e = env(cdc(T0, after=order_row("o12345", "acct-9", vip=False)))
    assert shadow.shadow_record(RulePolicy(), e, key(e), CONTRACT, live(e), "no_action")["agree"]


def _records():
    b = env(breach_env(order_ids=["a", "b", "c"]))
    vips = [env(cdc(T0 + i, after=order_row(f"o{i}", "acct-9", vip=True))) for i in range(3)]
    return ([shadow.shadow_record(NoHold(), b, key(b), CONTRACT, live(b), "processed")]
            + [shadow.shadow_record(NoHold(), v, key(v), CONTRACT, live(v), "processed") for v in vips])


def test_report_counts_agreement_and_examples():
    recs = _records()
    s = shadow.summarize(recs, examples=1)
    assert (s["envelopes"], s["agree"], s["agreement_rate"]) == (4, 3, 0.75)
    assert s["live_by_tool"] == {"CreateTicket": 1, "PlacePaymentHold": 1, "SendNotice": 3}
    assert s["candidate_by_tool"] == {"CreateTicket": 1, "SendNotice": 3}
    assert len(s["examples"]) == 1 and s["examples"][0]["topic"] == "risk.order_threshold_breach"
    text = shadow.report(recs)
    assert "agreement: 3/4 (75.0%)" in text
    assert "live actions: CreateTicket x1, PlacePaymentHold x1, SendNotice x3" in text
    assert "candidate actions: CreateTicket x1, SendNotice x3" in text
    assert "disagreements (first 1 of 1)" in text
    assert shadow.report([]) == "shadow: no envelopes compared"


def test_report_command(tmp_path):
    p = tmp_path / "shadow.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    out = subprocess.run([sys.executable, "-m", "jobs.shadow", "report", str(p), "--examples", "3"],
                         capture_output=True, text=True, check=True).stdout
    assert "agreement: 3/4 (75.0%)" in out
    js = json.loads(subprocess.run([sys.executable, "-m", "jobs.shadow", "report", str(p), "--json"],
                                   capture_output=True, text=True, check=True).stdout)
    assert js["agreement_rate"] == 0.75
