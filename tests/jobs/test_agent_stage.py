from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.contract import load_contract
from contracts.idempotency import idempotency_key
from contracts.models import AgentResponse, Envelope
from contracts.outcomes import Outcome, Reason
from jobs.agent_stage import AgentStage
from jobs.dedup import MemoryDedupStore
from jobs.policy import RulePolicy
from tests.factories import T0, breach_env, cdc, order_row

CONTRACT = load_contract()


def env(d, offset=0):
    return Envelope.model_validate({"offset": offset, **d})


def key(e):
    return idempotency_key(e.topic, e.key, e.ts_ms)


def test_vip_order_gives_notice_then_duplicate():
    stage, dedup = AgentStage(CONTRACT, RulePolicy()), MemoryDedupStore()
    e = env(cdc(T0, after=order_row("o1", "acct-9", vip=True)))
    d, acc = stage.decide(e, key(e), dedup, [])
    assert d.outcome == Outcome.PROCESSED
    [a] = d.actions
    assert (a.tool, a.args, a.idempotency_key) == ("SendNotice", {"account_id": "acct-9", "template": "vip-order-received"}, key(e))
    d2, _ = stage.decide(e, key(e), dedup, acc)
    assert d2.outcome == Outcome.DUPLICATE and d2.actions == []


def test_breach_gives_ticket_and_hold():
    stage = AgentStage(CONTRACT, RulePolicy())
    e = env(breach_env(account="acct-9", order_ids=["a", "b", "12345"]))
    d, _ = stage.decide(e, key(e), MemoryDedupStore(), [])
    tools = [a.tool for a in d.actions]
    assert tools == ["CreateTicket", "PlacePaymentHold"]
    assert d.actions[0].args["summary"] == "Order 12345 risk breach (high_value_orders_3_in_10m)"
    assert d.actions[0].args["labels"] == ["risk", "orders"]
    assert d.actions[1].args == {"order_id": "12345", "reason": "high_value_orders_3_in_10m"}
    assert d.response.citations == ["risk.order_threshold_breach@v3"]
    assert len(d.response.summary.split()) <= 120


def test_breach_without_auto_hold_gives_only_ticket():
    stage = AgentStage(CONTRACT, RulePolicy())
    e = env(breach_env(auto_hold=False))
    d, _ = stage.decide(e, key(e), MemoryDedupStore(), [])
    assert [a.tool for a in d.actions] == ["CreateTicket"]


class RoguePolicy(RulePolicy):
    name = "rogue"

    def __init__(self, mutate):
        self.mutate = mutate

    def propose(self, env, idem):
        r = super().propose(env, idem).model_dump()
        self.mutate(r)
        return AgentResponse.model_validate(r) if not isinstance(r, str) else r


def test_invalid_proposals_never_reach_the_sink():
    e = env(breach_env(account="acct-9", order_ids=["a", "b", "c"]))
    mutations = [
        lambda r: r["actions"][1]["args"].update(order_id="c-hallucinated"),
        lambda r: r.update(summary="word " * 121),
        lambda r: r.update(citations=["cdc.public.orders@v2"]),
        lambda r: r["actions"][0]["args"].update(account_id="someone-else"),
        lambda r: r["actions"][0].update(idempotency_key="idem-other"),
        lambda r: r["actions"].append(dict(r["actions"][0])),
    ]
    for m in mutations:
        d, acc = AgentStage(CONTRACT, RoguePolicy(m)).decide(e, key(e), MemoryDedupStore(), [])
        assert d.outcome == Outcome.DLQ and d.reason == Reason.INVALID_RESPONSE, d
        assert d.actions == [] and acc == []


def raising_policy(name, error):
    """A rule policy whose propose() raises `error`."""

    class Raising(RulePolicy):
        def propose(self, env, idem):
            raise error

    policy = Raising()
    policy.name = name
    return policy


def test_policy_exception_is_dlq():
    e = env(breach_env())
    d, _ = AgentStage(CONTRACT, raising_policy("broken", RuntimeError("boom"))).decide(e, key(e), MemoryDedupStore(), [])
    assert d.outcome == Outcome.DLQ and "RuntimeError" in d.error


def test_rate_limited_plan_is_not_marked_handled():
    stage, dedup = AgentStage(CONTRACT, RulePolicy()), MemoryDedupStore()
    stage.limit = 1
    e1 = env(cdc(T0, after=order_row("o1", "acct-9", vip=True)))
    e2 = env(cdc(T0 + 1, after=order_row("o2", "acct-9", vip=True)))
    _, acc = stage.decide(e1, key(e1), dedup, [])
    d2, acc = stage.decide(e2, key(e2), dedup, acc)
    assert d2.outcome == Outcome.RATE_LIMITED and [a.tool for a in d2.held_back] == ["SendNotice"]
    assert not dedup.seen(key(e2))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=30))
def test_dedup_matches_oracle_over_replays(deliveries):
    """Any sequence of (re)deliveries: exactly the first of each key acts, whatever the repeats."""
    stage, dedup = AgentStage(CONTRACT, RulePolicy()), MemoryDedupStore()
    stage.limit = 10_000
    seen, acc = set(), []
    for order, ts in sorted(deliveries, key=lambda d: d[1]):
        e = env(cdc(T0 + ts, after=order_row(f"o{order}", "acct-9", vip=True)))
        d, acc = stage.decide(e, key(e), dedup, acc)
        expected = Outcome.DUPLICATE if key(e) in seen else Outcome.PROCESSED
        seen.add(key(e))
        assert d.outcome == expected


def test_per_input_tool_allowlist():
    """An order event may only send a notice; a breach may not send one. Fails closed for unlisted inputs."""
    order = env(cdc(T0, after=order_row("o1", "acct-9", vip=True)))

    def add_hold(r):
        r["actions"].append({"tool": "PlacePaymentHold", "args": {"order_id": "o1", "reason": "x"},
                             "idempotency_key": r["actions"][0]["idempotency_key"]})

    d, _ = AgentStage(CONTRACT, RoguePolicy(add_hold)).decide(order, key(order), MemoryDedupStore(), [])
    assert d.outcome == Outcome.DLQ and d.reason == Reason.INVALID_RESPONSE and d.actions == []
    assert "PlacePaymentHold is not allowed for input cdc.public.orders@v2" in d.error

    b = env(breach_env(account="acct-9", order_ids=["a", "b", "c"]))

    def add_notice(r):
        r["actions"].append({"tool": "SendNotice", "args": {"account_id": "acct-9", "template": "t"},
                             "idempotency_key": r["actions"][0]["idempotency_key"]})

    d, _ = AgentStage(CONTRACT, RoguePolicy(add_notice)).decide(b, key(b), MemoryDedupStore(), [])
    assert d.outcome == Outcome.DLQ and "SendNotice is not allowed" in d.error

    closed = CONTRACT.model_copy(update={"output": CONTRACT.output.model_copy(update={"tools_by_input": {}})})
    d, _ = AgentStage(closed, RulePolicy()).decide(order, key(order), MemoryDedupStore(), [])
    assert d.outcome == Outcome.DLQ


def test_policy_rejected_is_dlq_with_its_reason():
    from jobs.policy import PolicyRejected

    refuses = raising_policy("refuses", PolicyRejected("timeout: no answer within 10 s"))
    e = env(breach_env())
    d, acc = AgentStage(CONTRACT, refuses).decide(e, key(e), MemoryDedupStore(), [])
    assert d.outcome == Outcome.DLQ and d.reason == Reason.INVALID_RESPONSE and acc == []
    assert d.error == "policy refuses rejected its answer: timeout: no answer within 10 s"
