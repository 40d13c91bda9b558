"""SPEC section 3's edge cases through the real job, one account per case, all in one file.

Expectations are worked out by hand from the rule's text (not from tests/oracles.py), and the
file is run in two arrival orders (shuffled within the watermark bound) at parallelism 1 and 2,
so a Flink shell that orders, ties or flushes differently from the pure rule fails here.
"""
import pytest

from tests.factories import MINUTE, T0, arrival_order, cdc, line, order_row
from tests.jobrun import run_job, write_lines

pytestmark = pytest.mark.flink
BOUND = 30_000


def create(acct: str, oid: str, ts: int, amount: object = "1200.00") -> dict:
    return cdc(ts, "c", after=order_row(oid, acct, amount))


def update(acct: str, oid: str, ts: int, old: object, new: object) -> dict:
    return cdc(ts, "u", after=order_row(oid, acct, new), before=order_row(oid, acct, old))


def delete(acct: str, oid: str, ts: int, amount: object = "1200.00") -> dict:
    return cdc(ts, "d", before=order_row(oid, acct, amount))


M = MINUTE
CASES = {
    # exactly 10 minutes from first to third: inclusive, a breach
    "acct-inclusive": ([create("acct-inclusive", "i1", T0), create("acct-inclusive", "i2", T0 + 5 * M),
                        create("acct-inclusive", "i3", T0 + 10 * M)],
                       [(T0 + 10 * M, "i3", ("i1", "i2", "i3"), "3600.00")]),
    # one millisecond more: no breach
    "acct-just-over": ([create("acct-just-over", "j1", T0), create("acct-just-over", "j2", T0 + 5 * M),
                        create("acct-just-over", "j3", T0 + 10 * M + 1)], []),
    # the threshold exactly qualifies (as text, number and longer text); a cent below does not
    "acct-threshold": ([create("acct-threshold", "h1", T0, "1000.00"), create("acct-threshold", "h2", T0 + M, "999.99"),
                        create("acct-threshold", "h3", T0 + 2 * M, 1000),
                        create("acct-threshold", "h4", T0 + 3 * M, "1000.000")],
                       [(T0 + 3 * M, "h4", ("h1", "h3", "h4"), "3000.000")]),
    # the same order updated twice counts once, at its first qualifying amount; two orders are not three
    "acct-updated": ([create("acct-updated", "u1", T0, "1500.00"),
                      update("acct-updated", "u1", T0 + M, "1500.00", "1600.00"),
                      update("acct-updated", "u1", T0 + 2 * M, "1600.00", "1700.00"),
                      create("acct-updated", "u2", T0 + 3 * M)], []),
    # an update that crosses the threshold qualifies at the update's time
    "acct-crossing": ([create("acct-crossing", "x1", T0, "500.00"), create("acct-crossing", "x2", T0 + 6 * M),
                       create("acct-crossing", "x3", T0 + 7 * M),
                       update("acct-crossing", "x1", T0 + 11 * M, "500.00", "2000.00")],
                      [(T0 + 11 * M, "x1", ("x2", "x3", "x1"), "4400.00")]),
    # a deleted order still counts
    "acct-deleted": ([create("acct-deleted", "d1", T0), delete("acct-deleted", "d1", T0 + M),
                      create("acct-deleted", "d2", T0 + 2 * M), create("acct-deleted", "d3", T0 + 3 * M)],
                     [(T0 + 3 * M, "d3", ("d1", "d2", "d3"), "3600.00")]),
    # a breach clears the kept orders; the next is allowed exactly 10 minutes later (inclusive cooldown)
    "acct-cooldown": ([create("acct-cooldown", f"c{i}", T0 + i * M) for i in (1, 2, 3, 4, 5, 6)]
                      + [create("acct-cooldown", "c7", T0 + 13 * M)],
                      [(T0 + 3 * M, "c3", ("c1", "c2", "c3"), "3600.00"),
                       (T0 + 13 * M, "c7", ("c4", "c5", "c6", "c7"), "4800.00")]),
    # equal timestamps: processed by order_id, so the last id triggers and the list is id-ordered
    "acct-tie": ([create("acct-tie", "t3", T0), create("acct-tie", "t1", T0), create("acct-tie", "t2", T0)],
                 [(T0, "t3", ("t1", "t2", "t3"), "3600.00")]),
    # one order with two qualifying images at the same first time counts with the larger amount
    "acct-same-time": ([create("acct-same-time", "s1", T0, "1100.00"),
                        update("acct-same-time", "s1", T0, "1100.00", "1900.00"),
                        create("acct-same-time", "s2", T0 + M), create("acct-same-time", "s3", T0 + 2 * M)],
                       [(T0 + 2 * M, "s3", ("s1", "s2", "s3"), "4300.00")]),
}


@pytest.mark.parametrize("parallelism,seed", [(1, 1), (2, 2)])
def test_edge_cases_through_the_job(tmp_path, parallelism, seed):
    envs = [e for inputs, _ in CASES.values() for e in inputs]
    f = write_lines(tmp_path / "in.jsonl", [line(e) for e in arrival_order(envs, seed, BOUND)])
    out = run_job(f, tmp_path / "out", "--parallelism", str(parallelism), "--max-out-of-orderness-ms", str(BOUND))

    assert not [t for t in out["traces"] if t["outcome"] in ("late", "dlq")]
    got = {}
    for b in out["breaches"]:
        assert b["window_end_ms"] == b["ts_ms"] and b["window_start_ms"] == b["ts_ms"] - 600_000
        assert b["rule"] == "high_value_orders_3_in_10m" and b["threshold"] == "1000.00" and b["auto_hold"] is True
        got.setdefault(b["account_id"], []).append((b["ts_ms"], b["order_id"], tuple(b["order_ids"]),
                                                    b["total_amount"]))
    for acct, (_, expected) in CASES.items():
        assert sorted(got.get(acct, [])) == expected, acct  # total_amount compared as exact decimal text
    assert set(got) <= set(CASES)
