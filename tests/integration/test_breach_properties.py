"""Property test through the real job: breaches and actions equal brute-force oracles,
identical across arrival orders (within the watermark bound) and parallelism 1 and 2."""
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.factories import T0, arrival_order, cdc, line, order_row
from tests.jobrun import contract_copy, run_job, write_lines
from tests.oracles import actions_oracle, breaches_oracle

pytestmark = pytest.mark.flink
BOUND = 30_000
LIMIT = 3


@st.composite
def account_stream(draw, n):
    acct = f"acct-{n}"
    vip = draw(st.booleans())
    envs = []
    for _ in range(draw(st.integers(1, 12))):
        oid = f"{acct}-o{draw(st.integers(0, 8))}"
        ts = T0 + draw(st.integers(0, 30)) * draw(st.sampled_from([10_000, 60_000, 300_000]))  # 300 s: exact 10 min gaps
        amt = draw(st.sampled_from(["999.99", "1000.00", "1500.50", "20", 3000]))
        op = draw(st.sampled_from(["c", "c", "u", "r", "d"]))
        row = order_row(oid, acct, amt, vip=vip)
        e = cdc(ts, op, after=None if op == "d" else row, before=row if op in ("u", "d") else None)
        envs.append(e)
        if draw(st.integers(0, 5)) == 0:
            envs.append(json.loads(json.dumps(e)))  # redelivery
    return envs


@st.composite
def scenarios(draw):
    envs = []
    for n in range(draw(st.integers(15, 25))):
        envs += draw(account_stream(n))
    return envs


def contract_with_limit(tmp: Path) -> Path:
    return contract_copy(tmp, max_actions_per_minute=LIMIT)


def breach_facts(out):
    return sorted((b["account_id"], b["ts_ms"], b["order_id"], tuple(b["order_ids"]), Decimal(b["total_amount"]))
                  for b in out["breaches"])


@settings(max_examples=2, deadline=None, phases=[Phase.generate], database=None,
          suppress_health_check=list(HealthCheck))
@given(scenarios(), st.integers(0, 2**31))
def test_job_matches_oracles_across_orders_and_parallelism(tmp_path_factory, envs, seed):
    tmp = tmp_path_factory.mktemp("prop")
    contract = contract_with_limit(tmp)
    expected_breaches = sorted((b["account_id"], b["ts_ms"], b["order_id"], tuple(b["order_ids"]), b["total_amount"])
                               for b in breaches_oracle(envs))
    executed, limited = actions_oracle(envs, LIMIT)
    results = []
    (tmp / "oracle.json").write_text(json.dumps({"breaches": [list(map(str, b)) for b in expected_breaches],
                                                 "executed": sorted(executed), "limited": sorted(limited)}))
    for i, parallelism in enumerate((1, 1, 2)):
        f = write_lines(tmp / f"in{i}.jsonl", [line(e) for e in arrival_order(envs, seed + i, BOUND)])
        out = run_job(f, tmp / f"out{i}", "--contract", str(contract), "--parallelism", str(parallelism),
                      "--max-out-of-orderness-ms", str(BOUND))
        print(f"run {i} (parallelism {parallelism}) outputs in {tmp / f'out{i}'}; oracle in {tmp / 'oracle.json'}")
        late = [t for t in out["traces"] if t["outcome"] == "late"]
        assert not late, f"the shuffle stays within the bound, yet: {late[:3]}"
        assert breach_facts(out) == expected_breaches, f"run {i} (parallelism {parallelism})"
        got = {(a["tool"], a["idempotency_key"]) for a in out["actions"] if a["status"] == "executed"}
        assert len(got) == len([a for a in out["actions"] if a["status"] == "executed"]), "an action ran twice"
        assert got == executed, f"run {i}: extra {sorted(got - executed)[:5]}, missing {sorted(executed - got)[:5]}"
        held = {(d["action"]["tool"], d["action"]["idempotency_key"]) for d in out["dlq"] if d["reason"] == "rate_limited"}
        assert held == limited, f"run {i}: rate-limited actions differ from the oracle"
        assert len(out["traces"]) == len(envs) + len(out["breaches"])
        results.append((breach_facts(out), got, held))
    assert results[0] == results[1] == results[2]
