from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.models import Envelope
from jobs.breach_rule import AccountWindow, QualifyingOrder, on_order, qualifying_order
from tests.factories import MINUTE, T0, cdc, order_row
from tests.oracles import breaches_oracle

TH = Decimal("1000.00")


def run_rule(envs):
    """Drive the pure rule the way the operator does: first qualifying event per order, event-time order."""
    first = {}
    for e in envs:
        q = qualifying_order(Envelope.model_validate({"offset": 0, **e}), TH)
        if q and (q.order_id not in first or (q.ts_ms, -q.amount) < (first[q.order_id].ts_ms, -first[q.order_id].amount)):
            first[q.order_id] = q
    states, out = {}, []
    for q in sorted(first.values()):
        b = on_order(states.setdefault(q.account_id, AccountWindow()), q, TH)
        if b:
            out.append(b)
    return out


def orders(*specs):
    return [cdc(T0 + ts, op, after=order_row(oid, acct, amt)) for ts, oid, acct, amt, op in specs]


def test_three_within_ten_minutes_inclusive():
    envs = orders((0, "a", "x", "1000.00", "c"), (5 * MINUTE, "b", "x", "1500", "c"), (10 * MINUTE, "c", "x", 2000, "c"))
    [b] = run_rule(envs)
    assert b.order_id == "c" and b.order_ids == ["a", "b", "c"] and b.ts_ms == T0 + 10 * MINUTE
    assert b.total_amount == "4500.00" and b.window_end_ms == b.ts_ms and b.threshold == "1000.00"


def test_just_over_ten_minutes_is_no_breach():
    envs = orders((0, "a", "x", 1000, "c"), (5 * MINUTE, "b", "x", 1500, "c"), (10 * MINUTE + 1, "c", "x", 2000, "c"))
    assert run_rule(envs) == []


def test_below_threshold_by_a_cent_does_not_qualify():
    envs = orders((0, "a", "x", "999.99", "c"), (1, "b", "x", 1500, "c"), (2, "c", "x", 2000, "c"))
    assert run_rule(envs) == []


def test_same_order_updated_twice_counts_once():
    envs = orders((0, "a", "x", 1200, "c"), (1000, "a", "x", 1300, "u"), (2000, "a", "x", 1400, "u"),
                  (3000, "b", "x", 1500, "c"))
    assert run_rule(envs) == []


def test_update_that_crosses_threshold_qualifies_at_update_time():
    envs = orders((0, "a", "x", 10, "c"), (1000, "b", "x", 1500, "c"), (2000, "c", "x", 1500, "c"),
                  (3000, "a", "x", 5000, "u"))
    [b] = run_rule(envs)
    assert b.order_id == "a" and b.ts_ms == T0 + 3000


def test_deleted_order_still_counts():
    envs = orders((0, "a", "x", 1200, "c"), (1000, "b", "x", 1500, "c"))
    envs.append(cdc(T0 + 1500, "d", before=order_row("a", "x", 1200)))
    envs += orders((2000, "c", "x", 1500, "c"))
    assert len(run_rule(envs)) == 1


def test_cooldown_then_second_breach():
    specs = [(i * MINUTE, f"o{i}", "x", 2000, "c") for i in range(3)]  # breach at 2 min
    specs += [(3 * MINUTE, "o3", "x", 2000, "c"), (4 * MINUTE, "o4", "x", 2000, "c"),
              (11 * MINUTE, "o5", "x", 2000, "c"),  # 9 min after: in cooldown
              (12 * MINUTE, "o6", "x", 2000, "c")]  # 10 min after: o3 is too old now (9 min back ok)
    bs = run_rule(orders(*specs))
    assert [b.ts_ms - T0 for b in bs] == [2 * MINUTE, 12 * MINUTE]
    assert bs[1].order_ids == ["o3", "o4", "o5", "o6"]


def test_equal_timestamps_tie_break_by_order_id():
    envs = orders((0, "c", "x", 2000, "c"), (0, "a", "x", 2000, "c"), (0, "b", "x", 2000, "c"))
    [b] = run_rule(envs)
    assert b.order_ids == ["a", "b", "c"] and b.order_id == "c"


def test_breach_id_is_deterministic():
    envs = orders(*[(i, f"o{i}", "x", 2000, "c") for i in range(3)])
    assert run_rule(envs)[0].breach_id == run_rule(list(reversed(envs)))[0].breach_id


def test_total_amount_has_no_float_drift():
    envs = orders((0, "a", "x", "1000.10", "c"), (1, "b", "x", "1000.20", "c"), (2, "c", "x", 1000.3, "c"))
    assert run_rule(envs)[0].total_amount == "3000.60"


@st.composite
def order_streams(draw):
    n = draw(st.integers(1, 40))
    envs = []
    for _ in range(n):
        acct = f"a{draw(st.integers(0, 3))}"
        oid = f"{acct}-o{draw(st.integers(0, 15))}"
        ts = T0 + draw(st.integers(0, 40)) * 30_000
        amt = draw(st.sampled_from(["999.99", "1000.00", "1000.01", "50", "2500.5"]))
        op = draw(st.sampled_from(["c", "u", "r", "d"]))
        row = order_row(oid, acct, amt)
        envs.append(cdc(ts, op, after=None if op == "d" else row, before=row if op in ("u", "d") else None))
    return envs


@settings(max_examples=200, deadline=None)
@given(order_streams(), st.randoms())
def test_rule_matches_oracle_in_any_order(envs, rnd):
    expected = breaches_oracle(envs)
    rnd.shuffle(envs)
    got = run_rule(envs)
    assert sorted((b.account_id, b.ts_ms, b.order_id, b.order_ids, Decimal(b.total_amount)) for b in got) == \
        sorted((b["account_id"], b["ts_ms"], b["order_id"], b["order_ids"], b["total_amount"]) for b in expected)


def test_qualifying_order_ignores_deletes_and_missing_amount():
    env = Envelope.model_validate({"offset": 0, **cdc(T0, "d", before=order_row("a", amount=5000))})
    assert qualifying_order(env, TH) is None
    env = Envelope.model_validate({"offset": 0, **cdc(T0, "r", after=order_row("a", amount=5000))})
    assert qualifying_order(env, TH) == QualifyingOrder(T0, "a", "acct-1", Decimal(5000))
