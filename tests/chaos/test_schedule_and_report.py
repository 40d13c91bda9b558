"""The pure parts of the harness: seeded schedule, seeded load records, the report, the unsafe sink's client."""
import asyncio
import random

from chaos.faults import KINDS, SINK_KILL, campaign, count_by_kind
from chaos.load import make_record
from chaos.report import markdown, percentile, totals
from sinks.unsafe import RekeyingClient


def test_the_schedule_is_a_function_of_the_seed_and_covers_every_kind():
    a = campaign(7, runs=3, faults_per_run=8, warmup_s=30, span_s=120)
    assert a == campaign(7, runs=3, faults_per_run=8, warmup_s=30, span_s=120)
    assert a != campaign(8, runs=3, faults_per_run=8, warmup_s=30, span_s=120)
    flat = [f for run in a for f in run]
    assert count_by_kind(flat) == {k: 3 for k in KINDS}
    for run in a:
        times = [f.at_s for f in run]
        assert times == sorted(times) and 30 <= times[0] and times[-1] < 150


def test_a_schedule_can_be_restricted_to_some_kinds():
    runs = campaign(1, runs=1, faults_per_run=2, warmup_s=10, span_s=20, kinds=(SINK_KILL,))
    assert [f.kind for f in runs[0]] == [SINK_KILL, SINK_KILL]


def test_load_records_are_seeded_and_their_expectations_match_their_content():
    def stream(seed):
        rng = random.Random(seed)
        return [make_record(i, 1_000 * i, rng, accounts=30) for i in range(400)]

    s = stream(3)
    assert s == stream(3) and s != stream(4)
    kinds = {e for _, e in s}
    assert kinds == {"actionable", "no_action", "dlq"}
    for env, expect in s:
        row = env["payload"]["after"]
        bad = not row["email"].startswith("tok_") or row["amount"] == "twelve"
        assert (expect == "dlq") == bad
        assert (expect == "actionable") == (row["vip_flag"] and not bad)
    assert all(e == "no_action" for _, e in
               (make_record(i, i, random.Random(i), 30, actionable=False) for i in range(50)))


def _run(dups=0, losses=0, recoveries=(1.0, 2.0)):
    faults = [{"kind": k, "triggered": True, "recovery_s": r, "at_s": 1, "note": ""}
              for k, r in zip(KINDS, recoveries)]
    verdict = {"duplicates": dups, "losses": losses, "unexpected": 0, "wrong_outcomes": 0,
               "unaccounted_rejections": 0, "redelivered_outputs": 4, "expected_actions": 10}
    return {"seed": 1, "broken_sink": False, "settled": True, "faults": faults, "unplanned_restarts": [],
            "verdict": verdict, "examples": {}, "inputs": 100, "redelivered_inputs": 3, "wall_s": 60.0}


def test_totals_and_table_show_duplicates_losses_and_recovery_percentiles():
    runs = [_run(), _run(dups=2, losses=1, recoveries=(3.0, 10.0))]
    t = totals(runs)
    assert (t["faults_injected"], t["duplicates"], t["losses"]) == (4, 2, 1)
    assert t["recovery_p50_s"] == 2.0 and t["recovery_p95_s"] == 10.0
    md = markdown(runs, "Chaos campaign", "cmd")
    assert "| 2 | 4 | 4 | 200 | 20 | 2 | 1 |" in md
    assert f"| {KINDS[0]} | 2 | 2 | 1.0 | 3.0 | 3.0 |" in md


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_the_unsafe_client_sends_a_new_key_for_every_call():
    seen = []

    class Recorder:
        async def post(self, endpoint, body, idempotency_key):
            seen.append(idempotency_key)
            return {"id": "X"}

    client = RekeyingClient(Recorder())
    asyncio.run(client.post("/messages", {}, "idem-a"))
    asyncio.run(client.post("/messages", {}, "idem-a"))
    assert len(set(seen)) == 2 and all(k.startswith("idem-a:unsafe-") for k in seen)
