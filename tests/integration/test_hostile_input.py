"""Hostile input through the real job (file mode, MiniCluster): no line stops it, leaks PII, or hides an action.

One file holds one line per class of attack (a BOM first, CRLF endings, a raw CR inside a line),
run once; then a structure-aware fuzz (hypothesis) writes files of arbitrary lines around valid
VIP orders and runs the job on each. Every run: exit 0, one trace per line at its line number, no
injected PII value in any output file, the job's output or the Flink log, and every valid VIP
order sends its notice.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyflink
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.idempotency import idempotency_key
from tests.envelope_strategies import RAW_PII, hostile_lines
from tests.factories import T0, cdc, line, order_row
from tests.jobrun import run_job

pytestmark = pytest.mark.flink
FLINK_LOGS = Path(pyflink.__file__).parent / "log"
YEAR_3000 = 32503680000000


def vip(order_id: str, account: str, ts: int, **extra: Any) -> dict[str, Any]:
    """A VIP create (it sends a notice); `extra` overrides envelope fields (key, topic, offset, ...)."""
    env = cdc(ts, "c", after=order_row(order_id, account, "250.00", vip=True))
    env.update(extra)
    return env


def text_with(env: dict[str, Any], old: str, new: str) -> str:
    out = line(env)
    assert old in out
    return out.replace(old, new, 1)


def dlq_copy_with_pii() -> dict[str, Any]:
    env = vip("o-copy", "acct-copy", T0 + 900)
    env["payload"]["after"].update({"amount": "a lot", "Phone": "+1 212 555 0101", "SSN": "123-45-6789",
                                    "notes": "call me on +33 6 12 34 56 78", "contact": "jané@exämple.de",
                                    "alt": "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "bob@example.org": 1})
    return env


PII_IN_CASES = ["jane.doe@example.com", "jane.roe@example.com", "mal.lory@example.com", "+1 212 555 0101",
                "123-45-6789", "+33 6 12 34 56 78", "jané@exämple.de", "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
                "bob@example.org", "tail.end@example.net"]

PREFIX = '{"topic":"cdc.public.orders","payload":{"notes":"'
# (line text, outcome, reason). Line numbers start at 1; line 1 follows a BOM, every line ends in CRLF.
CASES: list[tuple[str, str, str | None]] = [
    # the seed formula's collision: "ord-1"+"767225600000" == "ord-"+"1767225600000" (= T0)
    (line(vip("o-c1", "acct-c1", 767225600000, key="ord-1")), "processed", None),
    (line(vip("o-c2", "acct-c2", T0, key="ord-")), "processed", None),
    (line(vip("o-e1", "acct-e1", T0 + 100, key="")), "processed", None),  # no key, same ts: two orders
    (line(vip("o-e2", "acct-e2", T0 + 100, key="")), "processed", None),
    (text_with(vip("o-sk", "acct-sk", T0 + 200), '"key":"{', '"key":"\\ud800{'), "dlq", "invalid_text"),
    (text_with(vip("o-sa", "acct-sa", T0 + 200), '"acct-sa"', '"acct-\\ud800"'), "dlq", "invalid_text"),
    (text_with(vip("o-so", "acct-so", T0 + 200), '"order_id":"o-so"', '"order_id":"o-\\udfff"'),
     "dlq", "invalid_text"),
    (line(vip("o-big", "acct-big", 2**63)), "dlq", "ts_out_of_range"),
    (line(vip("o-bigger", "acct-big", 2**64 + 5)), "dlq", "ts_out_of_range"),
    *[(text_with(cdc(T0 + 300 + i, "c", after=order_row(f"o-1e26-{i}", "acct-huge", "0")), '"amount":"0"',
                 '"amount":1e26'), "dlq", "number_out_of_range") for i in range(3)],
    (line(vip("o-pa", "jane.doe@example.com", T0 + 400)), "dlq", "pii_not_tokenized"),
    (line(vip("o-pk", "acct-pk", T0 + 500, key='{"id":"jane.roe@example.com"}')), "dlq", "pii_not_tokenized"),
    (line(vip("o-pt", "acct-pt", T0 + 600, topic="mal.lory@example.com")), "dlq", "not_allowlisted"),
    (line(dlq_copy_with_pii()), "dlq", "schema_violation"),
    (PREFIX + "x" * (4096 - len(PREFIX) - 8) + " tail.end@example.net and more", "dlq", "malformed_json"),
    (line(vip("o-cr", "acct-cr", T0 + 1000)).replace(',"schema":', ',\r"schema":'), "processed", None),
    (line(vip("o-off", "acct-off", T0 + 1100, offset=999, partition=7)), "processed", None),
    (line(vip("o-3000", "acct-3000", YEAR_3000)), "dlq", "ts_out_of_range"),
    (line(vip("o-after", "acct-after", T0 + 1200)), "processed", None),  # not late: year 3000 moved nothing
    (text_with(vip("o-dup", "acct-dup", T0 + 1300), '"schema":"v2"',
               '"schema":"v2","sensitivity":"Restricted","sensitivity":"Internal"'), "dlq", "invalid_envelope"),
    (line(vip("o-fffd", "acct-fffd", T0 + 1400)).replace('"created"', '"cr\ufffdated"'), "processed", None),
    (text_with(cdc(T0 + 1500, "c", after=order_row("o-9n", "acct-9", "0")), '"amount":"0"',
               '"amount":12.123456789'), "dlq", "number_out_of_range"),
    (line(cdc(T0 + 1600, "c", after=order_row("o-9s", "acct-9", "12.123456789"))), "dlq", "schema_violation"),
    # Line and paragraph separators are JSON text, not line ends: a reader that splits at them breaks lines.
    (text_with(vip("o-ls", "acct-ls", T0 + 1650), '"amount":"250.00"', '"amount":"2\u2028\u0085"'),
     "dlq", "schema_violation"),
    (line(vip("o-ps", "acct-ps", T0 + 1660)).replace('"created"', '"cr\u2029\u0085ated"'), "processed", None),
    (line(vip("o-last", "acct-last", T0 + 1700)), "processed", None),
]


def line_of(fragment: str) -> int:
    """The line number of the case whose text holds `fragment`."""
    [n] = [n for n, (text, _, _) in enumerate(CASES, start=1) if fragment in text]
    return n


def no_raw_pii(root: Path, values: list[str], *extra: str) -> None:
    forms = {f for v in values for f in (v, json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1])}
    texts = [(str(p), p.read_bytes().decode("utf-8", "replace")) for p in root.rglob("*")
             if p.is_file() and p.suffix in (".jsonl", ".log") and p.name != "events.jsonl"]
    texts += [(f"output {i}", t) for i, t in enumerate(extra)]
    if FLINK_LOGS.is_dir():
        texts += [(str(p), p.read_text(errors="replace")) for p in FLINK_LOGS.glob("*.log")]
    for where, text in texts:
        for f in forms:
            assert f not in text, f"raw PII {f!r} in {where}"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    events = base / "events.jsonl"
    events.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(text for text, _, _ in CASES).encode("utf-8") + b"\r\n")
    out = run_job(events, base / "out")
    return base, out


def test_every_line_is_traced_once_at_its_line_number_with_its_outcome(hostile_run):
    _, o = hostile_run
    traces = [t for t in o["traces"] if not t.get("derived")]
    assert sorted(t["offset"] for t in traces) == list(range(1, len(CASES) + 1))
    assert {t["partition"] for t in traces} == {0}
    by_line = {t["offset"]: t for t in traces}
    for n, (_, outcome, reason) in enumerate(CASES, start=1):
        assert (by_line[n]["outcome"], by_line[n].get("reason")) == (outcome, reason), f"line {n}: {by_line[n]}"


def test_colliding_and_keyless_orders_each_send_their_notice(hostile_run):
    _, o = hostile_run
    accounts = sorted(a["args"]["account_id"] for a in o["actions"] if a["tool"] == "SendNotice")
    assert accounts == sorted(["acct-c1", "acct-c2", "acct-e1", "acct-e2", "acct-cr", "acct-off", "acct-after",
                               "acct-fffd", "acct-ps", "acct-last"])
    keys = [r["idempotency_key"] for r in o["receipts"]]
    assert len(keys) == len(set(keys)) == len(accounts)
    assert idempotency_key("cdc.public.orders", "ord-1", 767225600000) != idempotency_key(
        "cdc.public.orders", "ord-", 1767225600000)


def test_no_raw_pii_in_outputs_traces_dlq_errors_or_logs(hostile_run):
    base, o = hostile_run
    no_raw_pii(base, PII_IN_CASES, (base / "out.log").read_text())
    dlq = {d["source"]["offset"]: d for d in o["dlq"]}
    copy = dlq[line_of('"o-copy"')]["envelope"]["payload"]["after"]
    assert copy["Phone"] == copy["SSN"] == copy["notes"] == copy["contact"] == copy["alt"] == "***"
    assert "***" in copy and copy["order_id"] == "o-copy"  # the e-mail object key went, the rest stayed
    topic = dlq[line_of("mal.lory@")]
    assert topic["source"]["topic"] == "***" and "***" in topic["error"]
    cut = dlq[line_of("tail.end@")]["envelope"]
    assert isinstance(cut, str) and "more chars]" in cut and "tail" not in cut


def test_a_carriage_return_inside_a_line_and_the_envelopes_own_offset_change_no_position(hostile_run):
    _, o = hostile_run
    traces = {t["offset"]: t for t in o["traces"] if not t.get("derived")}
    cr = traces[line_of('"o-cr"')]
    assert cr["outcome"] == "processed" and cr["key"] == '{"order_id":"o-cr"}'
    assert traces[line_of('"o-off"')]["partition"] == 0


# -- the structure-aware fuzz ----------------------------------------------------------------------------

MARKERS = 4


@st.composite
def hostile_files(draw: Any) -> tuple[list[str], list[int]]:
    lines = draw(st.lists(hostile_lines(), min_size=15, max_size=40))
    marker_lines = []
    for i in range(MARKERS):  # valid VIP orders at random places: each must send its notice
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, line(vip(f"marker-{i}", f"acct-marker-{i}", T0 + 5_000_000 + i,
                                  key=json.dumps({"id": f"marker-{i}"}, separators=(",", ":")))))
    for i, text in enumerate(lines):
        if text.startswith('{"topic":"cdc.public.orders","key":"{\\"id\\":\\"marker-'):
            marker_lines.append(i + 1)
    return [t.replace("\n", " ") for t in lines], marker_lines


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(hostile_files())
def test_fuzzed_files_through_the_job(tmp_path_factory, case):
    lines, marker_lines = case
    base = tmp_path_factory.mktemp("fuzz")
    events = base / "events.jsonl"
    events.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n")
    # a wide watermark bound: the generated event times spread over hours, and lateness is not under test
    o = run_job(events, base / "out", "--max-out-of-orderness-ms", str(10**9))
    traces = [t for t in o["traces"] if not t.get("derived")]
    assert sorted(t["offset"] for t in traces) == list(range(1, len(lines) + 1))
    by_line = {t["offset"]: t for t in traces}
    noticed = {a["args"]["account_id"] for a in o["actions"] if a["tool"] == "SendNotice"}
    for i, n in enumerate(marker_lines):
        assert by_line[n]["outcome"] == "processed", by_line[n]
        assert f"acct-marker-{i}" in noticed
    no_raw_pii(base, RAW_PII, (base / "out.log").read_text())
