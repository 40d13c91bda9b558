"""Every gate reason code through the real job (file mode, MiniCluster), then the DLQ tool's replays.

One input file holds one envelope per gate reason plus a few valid ones. The job runs once on it
(with a contract copy allowing 2 actions per minute, so one breach plan is rate-limited); each
line's trace and DLQ record are checked, and no raw PII value may appear in any file the job or the
tool wrote, nor in the job's log. Then `python -m sinks.dlq_tool` fixes the PII record with a
token, replays it (plus the rate-limited breach and the late record) to a file, and the job runs on
that file with the same --state: all three are processed. A second replay of the same records
makes no second side effect.
"""
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyflink
import pytest

from contracts.contract import CONTRACTS_DIR
from contracts.idempotency import idempotency_key
from tests.factories import T0, breach_env, cdc, line, order_row
from tests.jobrun import REPO, contract_copy, run_job, write_lines

pytestmark = pytest.mark.flink
LIMIT = 2
TOKEN = "tok_abcdefgh1"
RAW_PII = ["mal.formed@example.org", "+1-555-0101", "not.allowed@example.net", "+1-555-0102",
           "con.nect@example.com", "jane.roe@example.com", "+1-555-0103", "rest.ricted@example.com"]


def vip(order_id, account, ts, **extra):
    return cdc(ts, "c", after=order_row(order_id, account, "250.00", vip=True, **extra))


def connect_wrapped(ts):
    """Debezium JSON with the Kafka Connect schema block; the writer requires a field we do not know."""
    env = vip("o-conn", "acct-conn", ts, email="con.nect@example.com")
    row_fields = [{"field": f, "type": "string", "optional": f not in ("order_id", "account_id")}
                  for f in ("order_id", "account_id", "amount", "currency", "status", "email")]
    row_fields += [{"field": "vip_flag", "type": "boolean", "optional": False},
                   {"field": "loyalty_tier", "type": "string", "optional": False}]
    schema = {"type": "struct", "name": "dbserver.public.orders.Envelope", "optional": False, "fields": [
        {"field": "op", "type": "string", "optional": False},
        {"field": "before", "type": "struct", "optional": True, "fields": row_fields},
        {"field": "after", "type": "struct", "optional": True, "fields": row_fields},
        {"field": "source", "type": "struct", "optional": False, "fields": [
            {"field": "ts_ms", "type": "int64", "optional": False}, {"field": "lsn", "type": "int64", "optional": True},
            {"field": "table", "type": "string", "optional": False}]}]}
    env["payload"]["after"]["loyalty_tier"] = "gold"
    env["payload"] = {"schema": schema, "payload": env["payload"]}
    return env


def avro_writer_without_default(ts):
    env = breach_env(ts, account="acct-avro")
    ws = json.loads((CONTRACTS_DIR / "schemas" / "order_breach_v3.avsc").read_text())
    ws["fields"].append({"name": "region", "type": "string"})  # required by the writer, unknown to v3
    env["writer_schema"] = ws
    env["payload"]["region"] = "eu-west"
    return env


def missing_key(ts):
    env = vip("o-nokey", "acct-x", ts)
    del env["key"]
    return env


# (line text, expected trace outcome, expected reason or None). Offsets are line numbers (from 1).
CASES = [
    (line(vip("o-vip", "acct-vip", T0)), "processed", None),
    ('{"topic":"cdc.public.orders","key":"{\\"order_id\\":\\"m1\\"}","ts_ms":1767225600000,"schema":"v2",'
     '"payload":{"op":"c","after":{"email":"mal.formed@example.org","phone":"+1-555-0101"',
     "dlq", "malformed_json"),
    ('[1, 2, 3]', "dlq", "not_an_object"),
    (line(missing_key(T0 + 100)), "dlq", "missing_field"),
    (line({**vip("o-badts", "acct-x", T0), "ts_ms": "yesterday"}), "dlq", "invalid_envelope"),
    (line({**vip("o-v9", "acct-x", T0 + 200, email="not.allowed@example.net"), "schema": "v9"}),
     "dlq", "not_allowlisted"),
    (line(cdc(T0 + 300, "c", after=order_row("o-amt", "acct-x", "lots", phone="+1-555-0102"))),
     "dlq", "schema_violation"),
    (line(connect_wrapped(T0 + 400)), "dlq", "unknown_required_field"),
    (line(avro_writer_without_default(T0 + 500)), "dlq", "unknown_required_field"),
    (line(vip("o-pii", "acct-pii", T0 + 1000, email="jane.roe@example.com", phone="+1-555-0103")),
     "dlq", "pii_not_tokenized"),
    (line({**vip("o-restricted", "acct-x", T0 + 600, email="rest.ricted@example.com"), "sensitivity": "Restricted"}),
     "dlq", "sensitivity_above_ceiling"),
    (line(cdc(T0 + 700, "c", after=order_row("o-plain", "acct-plain", "30.00"))), "no_action", None),
    (line({**cdc(T0 + 800, "d", before=order_row("o-gone", "acct-plain", "30.00")), "payload": None}),
     "no_action", None),
    (line(vip("o-r", "acct-r", T0 + 2000)), "processed", None),
    (line(breach_env(T0 + 3000, account="acct-r")), "rate_limited", "rate_limited"),  # 1 + 2 actions > 2
    (line(cdc(T0 + 600_000, "c", after=order_row("o-later", "acct-plain", "30.00"))), "no_action", None),
    (line(vip("o-late", "acct-late", T0 + 5000)), "late", "late"),  # > 30 s behind T0 + 600000
]
PII_LINE = 10
RATE_LIMITED_LINE = 15
LATE_LINE = 17


def contract_with_limit(tmp: Path) -> Path:
    return contract_copy(tmp, max_actions_per_minute=LIMIT)


def dlq_tool(*args):
    proc = subprocess.run([sys.executable, "-m", "sinks.dlq_tool", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    return proc


def ledger(state: Path):
    return sorted(sqlite3.connect(state / "sandbox_tools.sqlite").execute(
        "SELECT effect, idempotency_key FROM ledger").fetchall())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("gate_reasons")
    contract = contract_with_limit(base)
    events = write_lines(base / "events.jsonl", [text for text, _, _ in CASES])
    first = run_job(events, base / "out1", "--contract", str(contract), state=base / "state")
    return base, contract, first


def test_every_line_has_its_outcome_and_reason(run):
    _, _, o = run
    traces = {t["offset"]: t for t in o["traces"] if not t.get("derived")}
    assert sorted(traces) == list(range(1, len(CASES) + 1)), "every input line is traced exactly once"
    assert len(o["traces"]) == len(CASES)
    for n, (_, outcome, reason) in enumerate(CASES, start=1):
        t = traces[n]
        assert (t["outcome"], t.get("reason")) == (outcome, reason), f"line {n}: {t}"


def test_dlq_records_carry_reason_error_masked_envelope_source_contract(run):
    _, _, o = run
    gate = [d for d in o["dlq"] if d["reason"] not in ("rate_limited", "late")]
    by_offset = {d["source"]["offset"]: d for d in gate}
    expected = {n: reason for n, (_, outcome, reason) in enumerate(CASES, start=1) if outcome == "dlq"}
    assert len(gate) == len(expected) and {n: by_offset[n]["reason"] for n in expected} == expected
    for d in o["dlq"]:
        assert d["error"] and isinstance(d["error"], str)
        assert d["contract"] == "streaming_agent@v1"
        assert isinstance(d["at_ms"], int) and d["at_ms"] > T0
        assert set(d["source"]) == {"topic", "partition", "offset"} and d["source"]["partition"] == 0
    malformed = by_offset[2]
    assert malformed["source"]["topic"] is None
    assert isinstance(malformed["envelope"], str) and '"email":"***"' in malformed["envelope"]
    for n in (4, 5, 6, 7, 8, 10, 11):
        assert by_offset[n]["source"]["topic"] == "cdc.public.orders", n
    assert by_offset[9]["source"]["topic"] == "risk.order_threshold_breach"
    assert by_offset[3]["envelope"] == "[1, 2, 3]"  # kept as (masked) text, like unparsable lines
    assert "key" in by_offset[4]["error"]
    assert "ts_ms" in by_offset[5]["error"]
    assert "cdc.public.orders@v9" in by_offset[6]["error"]
    assert by_offset[6]["envelope"]["payload"]["after"]["email"] == "***"
    assert "after fails" in by_offset[7]["error"]  # the gate names the image (the anyOf), not the field
    assert by_offset[7]["envelope"]["payload"]["after"]["phone"] == "***"
    assert "after.loyalty_tier" in by_offset[8]["error"]
    assert by_offset[8]["envelope"]["payload"]["payload"]["after"]["email"] == "***"
    assert "region" in by_offset[9]["error"]
    pii = by_offset[PII_LINE]
    assert "after.email" in pii["error"] and "after.phone" in pii["error"]
    assert pii["envelope"]["payload"]["after"]["email"] == "***"
    assert pii["envelope"]["payload"]["after"]["phone"] == "***"
    assert pii["envelope"]["payload"]["after"]["order_id"] == "o-pii"  # the rest is kept for the operator
    assert "Restricted" in by_offset[11]["error"]
    assert by_offset[11]["envelope"]["payload"]["after"]["email"] == "***"


def test_rate_limited_and_late_records_carry_the_governed_envelope(run):
    _, _, o = run
    limited = [d for d in o["dlq"] if d["reason"] == "rate_limited"]
    breach = json.loads(CASES[RATE_LIMITED_LINE - 1][0])
    key = idempotency_key(breach["topic"], breach["key"], breach["ts_ms"])
    assert sorted(d["action"]["tool"] for d in limited) == ["CreateTicket", "PlacePaymentHold"]
    assert {d["idempotency_key"] for d in limited} == {key}
    assert all(d["source"]["offset"] == RATE_LIMITED_LINE for d in limited)
    assert limited[0]["envelope"]["payload"]["account_id"] == "acct-r"
    [late] = [d for d in o["dlq"] if d["reason"] == "late"]
    assert late["source"]["offset"] == LATE_LINE and late["idempotency_key"].startswith("idem2-")
    assert "email" not in late["envelope"]["payload"]["after"]  # governed: PII stripped


def test_valid_records_act(run):
    _, _, o = run
    assert sorted((r["tool"], r["ref"][:4]) for r in o["receipts"]) == [("SendNotice", "MSG-"), ("SendNotice", "MSG-")]


def _no_raw_pii(base: Path, skip: set[Path]):
    seen = 0
    for p in base.rglob("*"):
        if p.is_file() and p not in skip:
            data = p.read_bytes()
            for v in RAW_PII:
                assert v.encode() not in data, f"raw PII {v!r} in {p}"
            seen += 1
    return seen


def test_dlq_tool_replays_fixed_pii_rate_limited_and_late_records(run):
    base, contract, first = run
    dlq = base / "out1" / "dlq.jsonl"
    listing = dlq_tool("list", "--dlq", dlq)
    assert listing.returncode == 0, listing.stderr
    rows = listing.stdout.splitlines()
    assert len(rows) == len(first["dlq"])
    counts = dlq_tool("count", "--dlq", dlq)
    by_reason = {k: int(v) for k, v in (row.split() for row in counts.stdout.splitlines())}
    assert by_reason["unknown_required_field"] == 2 and by_reason["rate_limited"] == 2
    assert by_reason["total"] == len(first["dlq"]) == sum(v for k, v in by_reason.items() if k != "total")
    pii_index = next(i for i, d in enumerate(first["dlq"], start=1) if d["reason"] == "pii_not_tokenized")
    shown = dlq_tool("show", pii_index, "--dlq", dlq)
    assert json.loads(shown.stdout)["reason"] == "pii_not_tokenized"

    # unfixed, the PII record is refused: its values are masked
    refused = dlq_tool("replay", "--dlq", dlq, "--index", pii_index, "--to-file", base / "nope.jsonl")
    assert refused.returncode == 1 and "masked value(s) at payload.after.email, payload.after.phone" in refused.stderr
    assert not (base / "nope.jsonl").exists()
    # the malformed line cannot be replayed at all
    raw = dlq_tool("replay", "--dlq", dlq, "--reason", "malformed_json", "--to-file", base / "nope.jsonl")
    assert raw.returncode == 1 and "raw text" in raw.stderr

    fixed = dlq_tool("replay", "--dlq", dlq, "--index", pii_index, "--set", f"payload.after.email={TOKEN}",
                     "--unset", "payload.after.phone", "--to-file", base / "replay_pii.jsonl", "--contract", contract)
    assert fixed.returncode == 0, fixed.stderr
    limited = dlq_tool("replay", "--dlq", dlq, "--reason", "rate_limited", "--reason", "late",
                       "--to-file", base / "replay_held.jsonl", "--contract", contract)
    assert limited.returncode == 0, limited.stderr
    assert "same idempotency key" in limited.stderr  # ticket + hold of one plan: one envelope
    held = [json.loads(x) for x in (base / "replay_held.jsonl").read_text().splitlines()]
    assert sorted(e["topic"] for e in held) == ["cdc.public.orders", "risk.order_threshold_breach"]
    replay = base / "replay1.jsonl"
    replay.write_text((base / "replay_pii.jsonl").read_text() + (base / "replay_held.jsonl").read_text())
    [pii_env] = [json.loads(x) for x in (base / "replay_pii.jsonl").read_text().splitlines()]
    assert pii_env["payload"]["after"]["email"] == TOKEN and "phone" not in pii_env["payload"]["after"]

    ledger_before = ledger(base / "state")
    second = run_job(replay, base / "out2", "--contract", str(contract), state=base / "state")
    outcomes = sorted((t["topic"], t["outcome"]) for t in second["traces"])
    assert outcomes == [("cdc.public.orders", "processed"), ("cdc.public.orders", "processed"),
                        ("risk.order_threshold_breach", "processed")], second["traces"]
    assert second["dlq"] == []
    assert sorted(r["tool"] for r in second["receipts"]) == ["CreateTicket", "PlacePaymentHold", "SendNotice",
                                                            "SendNotice"]
    # the replays kept their identity: the same idempotency keys as the DLQ records / original lines
    originals = [json.loads(CASES[n - 1][0]) for n in (PII_LINE, RATE_LIMITED_LINE, LATE_LINE)]
    assert {t["idempotency_key"] for t in second["traces"]} == {
        idempotency_key(e["topic"], e["key"], e["ts_ms"]) for e in originals}
    ledger_after = ledger(base / "state")
    assert len(ledger_after) == len(ledger_before) + 4

    # the same records replayed again (a second invocation of the tool): no second side effect
    again = dlq_tool("replay", "--dlq", dlq, "--reason", "rate_limited", "--to-file", base / "replay2.jsonl")
    assert again.returncode == 0, again.stderr
    replay2 = base / "replay2.jsonl"
    replay2.write_text(replay2.read_text() + (base / "replay_pii.jsonl").read_text())
    third = run_job(replay2, base / "out3", "--contract", str(contract), state=base / "state")
    assert sorted(t["outcome"] for t in third["traces"]) == ["duplicate", "duplicate"]
    assert third["receipts"] == [] and third["actions"] == [] and third["dlq"] == []
    assert ledger(base / "state") == ledger_after
    # every file written by the job and the tool, and the job's logs: no raw PII value
    assert _no_raw_pii(base, skip={base / "events.jsonl"}) > 15
    flink_logs = Path(pyflink.__file__).parent / "log"  # the MiniCluster's own logs (shared, append-only)
    if flink_logs.is_dir():
        _no_raw_pii(flink_logs, skip=set())
    for proc in (listing, counts, shown, refused, raw, fixed, limited, again):
        for v in RAW_PII:
            assert v not in proc.stdout + proc.stderr
