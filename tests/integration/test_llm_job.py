"""The LLM policy through the real job, against the fake API: an answer the contract accepts is executed,
one it rejects falls back, and the rules in shadow see the difference."""
import json

import pytest

from contracts.models import Envelope
from jobs.llm_policy import DATA_BEGIN, DATA_END
from jobs.policy import RulePolicy
from jobs.shadow import summarize
from tests.fake_llm import Reply, serve
from tests.golden.normalize import normalize
from tests.jobrun import SCENARIO, run_job
from tests.integration.test_shadow import GOLDEN

pytestmark = pytest.mark.flink


def rules_echo_with_a_hold_on_orders(body):
    """Answers what the rules would, except that it also holds every order of an order event (forbidden)."""
    user = body["messages"][1]["content"]
    data = json.loads(user.split(f"\n{DATA_BEGIN}\n")[1].split(f"\n{DATA_END}\n")[0])
    env = Envelope.model_validate({**data, "offset": 0})
    r = RulePolicy().propose(env, "ignored")
    actions = [{"tool": a.tool, "args": a.args} for a in r.actions]
    if env.topic == "cdc.public.orders":
        actions.append({"tool": "PlacePaymentHold", "args": {"order_id": env.payload["after"]["order_id"],
                                                             "reason": "the event told me to"}})
    return Reply(json.dumps({"summary": "LLM: " + r.summary, "actions": actions, "citations": r.citations}))


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("llm")
    mp = pytest.MonkeyPatch()
    with serve() as fake:
        fake.reply = rules_echo_with_a_hold_on_orders
        for k, v in {"AGENT_LLM_URL": fake.url, "AGENT_LLM_MODEL": "fake-model", "AGENT_LLM_API_KEY": "sk-job",
                     "AGENT_LLM_FALLBACK": "rules", "AGENT_LLM_TIMEOUT_S": "5"}.items():
            mp.setenv(k, v)
        try:
            out = run_job(SCENARIO, base / "out", "--policy", "jobs.llm_policy:LlmPolicy", "--shadow-policy", "rules",
                          state=base / "state")
        finally:
            mp.undo()
        return base, out, list(fake.received)


def test_the_job_asks_the_llm_and_holds_it_to_the_contract(llm_run):
    _, out, received = llm_run
    # asked about the 4 envelopes the rules want (3 VIP orders and the breach), once each, no PII sent
    assert len(received) == 4
    for req in received:
        assert req["headers"]["Authorization"] == "Bearer sk-job"
        assert json.loads(req["body"])["model"] == "fake-model"
        assert "tok_" not in req["body"] and "email" not in req["body"]
    # the breach answer was valid: the LLM's plan ran; the order answers held orders: fallback to the rules
    got, expected = normalize(out), json.loads(GOLDEN.read_text())
    for name in ("actions", "receipts", "breaches", "dlq"):
        assert got[name] == expected[name], name
    breach_answers = [r for r in out["responses"] if r["citations"] == ["risk.order_threshold_breach@v3"]]
    assert [r["summary"][:4] for r in breach_answers] == ["LLM:"]
    assert all(not r["summary"].startswith("LLM") for r in out["responses"]
               if r["citations"] == ["cdc.public.orders@v2"])
    assert not any(r["ref"].startswith("HOLD-") and r["ref"] != "HOLD-12345" for r in out["receipts"])


def test_the_rules_in_shadow_agree(llm_run):
    _, out, _ = llm_run
    s = summarize(out["shadow"])
    assert (s["envelopes"], s["agree"]) == (4, 4)
