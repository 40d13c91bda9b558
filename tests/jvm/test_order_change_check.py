"""The JVM prefilter's check against the Python gate and router, record by record (no Flink).

The prefilter may keep a record on the JVM only when Python would give it outcome no_action; it
may be more careful than that, but a plain valid non-actionable change must stay on the JVM, or
the prefilter buys nothing. The Java side runs as a CLI over the same generated records.
"""
from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
from decimal import Decimal
from typing import Any

import pytest

from contracts.contract import load_contract
from jobs.gate import Gate
from jobs.policy import RulePolicy
from jobs.prefilter import JAR, plan_prefilter
from jobs.routing import route
from tests.factories import T0, order_row

pytestmark = pytest.mark.skipif(not JAR.exists() or shutil.which("java") is None,
                                reason="jvm/ not built (scripts/setup.sh --infra builds it)")
CONTRACT = load_contract()
THRESHOLD = Decimal("1000.00")
ORDERS = "cdc.public.orders"


GATE = Gate(CONTRACT)


def python_outcome(rec: dict[str, Any]) -> str:
    """'dlq', 'no_action' or 'routed', exactly as the Kafka-mode ingress decides."""
    value = base64.b64decode(rec["value_b64"]) if rec["value_b64"] is not None else None
    headers = {k: rec[k].encode() for k in ("schema", "sensitivity") if rec[k] is not None}
    key = None if rec["key"] is None else rec["key"].encode()
    res = GATE.check_kafka(rec["topic"], 0, 7, key, value, T0, headers)
    if res.outcome != "pass":
        return str(res.outcome)
    return "routed" if route(res.envelope, THRESHOLD, RulePolicy()) is not None else "no_action"


def jvm_verdicts(recs: list[dict[str, Any]]) -> list[str]:
    plan = plan_prefilter(CONTRACT, "rules", str(THRESHOLD), 30_000)
    assert plan.enabled, plan.why_not
    out = subprocess.run(["java", "-cp", str(JAR), "streamingagent.prefilter.CheckCli", *plan.args],
                         input="\n".join(json.dumps(r) for r in recs) + "\n", capture_output=True, text=True,
                         timeout=120, check=True)
    verdicts = out.stdout.split()
    assert len(verdicts) == len(recs)
    return verdicts


def record(payload: Any, topic: str = ORDERS, schema: str | None = "v2", sensitivity: str | None = None,
           raw: bytes | None = None, key: str | None = '{"id":1}') -> dict[str, Any]:
    value = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    return {"topic": topic, "value_b64": None if value is None else base64.b64encode(value).decode(),
            "schema": schema, "sensitivity": sensitivity, "key": key}


def change(op: str = "c", **row: Any) -> dict[str, Any]:
    after = order_row("o1", amount="20.00") | row
    return {"op": op, "before": None, "after": None if op == "d" else after,
            "source": {"ts_ms": T0, "lsn": 42, "table": "orders"}}


MISSING = object()
VARIANTS: dict[str, list[Any]] = {
    "op": ["c", "u", "d", "r", "x", MISSING],
    "amount": ["999.99", "1000", "1000.00", 999.99, 1000, 1e3, "999.999999", "12.5\n", "abc", True, None,
               MISSING, -5, "1" * 16, 999.99999999999999999],
    "vip_flag": [False, True, "true", None, MISSING],
    "email": ["tok_abcdefgh", None, "alice@example.com", "tok_short", 5, MISSING],
    "currency": ["EUR", "EU", "EURO", None],
    "order_id": ["o1", "", "x" * 129, 7, "2015550123", "o7-1000000", "ïd", "ord-1234567"],
    "account_id": ["acct-1", "jane@example.com", "acct-+33612345678", "a\ud800"],
    "status": ["created", "s" * 65, None, "call 123-45-6789"],
    "created_at": [MISSING, 1, "2026-01-01", 1.5, None, True, 2**63],
    "source.ts_ms": [T0, 1.0, str(T0), MISSING, 2**64],
    "source.lsn": [42, "0/16B3748", None, MISSING, 2**63, "2015550123"],
    "source.db": [MISSING, "shop", None],
    "source.snapshot": [MISSING, "false", False, None, 3],
    "ts_ms": [MISSING, None, T0, 1.5],
    "extra": [MISSING, {"nested": [1, {"deeper": True}]}],
}


def generated(n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        pick = {k: rnd.choice(v) if rnd.random() < 0.3 else v[0] for k, v in VARIANTS.items()}
        p = change("c")
        p["after"]["order_id"] = pick["order_id"]
        p["after"]["account_id"] = pick["account_id"]
        for f in ("amount", "vip_flag", "email", "currency", "status", "created_at"):
            if pick[f] is MISSING:
                p["after"].pop(f, None)
            else:
                p["after"][f] = pick[f]
        for f in ("ts_ms", "lsn", "db", "snapshot"):
            v = pick["source." + f]
            if v is MISSING:
                p["source"].pop(f, None)
            else:
                p["source"][f] = v
        if pick["ts_ms"] is not MISSING:
            p["ts_ms"] = pick["ts_ms"]
        if pick["extra"] is not MISSING:
            p["transaction"] = pick["extra"]
        if pick["op"] is MISSING:
            del p["op"]
        else:
            p["op"] = pick["op"]
            if pick["op"] == "d":
                p["before"], p["after"] = p["after"], None
        schema = rnd.choice(["v2", "v2", None, "", "v1"])
        sensitivity = rnd.choice([None, None, "Public", "Confidential", "Restricted", "Secret", ""])
        key = rnd.choice(['{"id":1}', '{"id":1}', None, "", '{"id":"jane@example.com"}', '{"id":2015550123}'])
        out.append(record(p, schema=schema, sensitivity=sensitivity, key=key))
    return out


EDGES = [
    record(change()),                                            # plain: the JVM's case
    record(change("u", vip_flag=False, amount=12)),
    record(change("d")),
    record(change("r", vip_flag=True)),                          # a snapshot read never notifies
    record(change(amount="1000.00")),                            # qualifies
    record(None, raw=json.dumps(change(amount=0)).replace('"amount": 0', '"amount": 999.9999999999999999')
           .encode()),                                           # beyond 6 fraction digits: number_out_of_range
    record(change(vip_flag=True)),                               # notice
    record(None),                                                # tombstone
    record(change(), topic="risk.order_threshold_breach", schema="v3"),
    record(change(), topic="cdc.public.other"),
    record({"schema": {"fields": []}, "payload": change()}),     # Connect wrapper
    record(None, raw=b'{"op":"c","op":"c"}'),                     # duplicate keys
    record(None, raw=b"\xff\xfe{}"),                             # not UTF-8
    record(None, raw=b'{"op": NaN}'),
    record(None, raw=b"[1, 2]"),
    record(None, raw=json.dumps(change()).encode() + b" {}"),    # trailing data
    record(None, raw=b"{" * 300 + b"}" * 300),
    record(change(email="alice@example.com")),                   # raw PII: DLQ
    record(change(account_id="jane@example.com")),               # PII where no PII field is: DLQ
    record(change(), key='{"id":"jane@example.com"}'),           # PII in the record key: DLQ
    record(change(), key=None),                                  # no key: its idempotency key needs Python
    record(None, raw=json.dumps(change()).replace('"o1"', '"o\\ud800"').encode()),  # a lone surrogate
    record(None, raw=json.dumps(change(amount=0)).replace('"amount": 0', '"amount": 1.0000001').encode()),
    record(change(order_id="o71000000")),                        # digits glued to a letter: the JVM's case
]


def test_jvm_keeps_only_what_python_settles_as_no_action():
    recs = EDGES + generated(3000, seed=11)
    verdicts = jvm_verdicts(recs)
    outcomes = [python_outcome(r) for r in recs]
    wrong = [(o, r) for v, o, r in zip(verdicts, outcomes, recs) if v == "jvm" and o != "no_action"]
    assert not wrong, f"{len(wrong)} records kept on the JVM that Python would not settle as no_action: {wrong[:2]}"
    kept = sum(v == "jvm" for v in verdicts)
    settled = sum(o == "no_action" and bool(r["key"]) for o, r in zip(outcomes, recs))  # no key: Python's
    assert kept >= 0.5 * settled, f"the JVM kept only {kept} of {settled} no_action records"
    assert {"dlq", "routed", "no_action"} <= set(outcomes), "the generator must cover every outcome"


@pytest.mark.parametrize("i,expected", [(0, "jvm"), (1, "jvm"), (2, "jvm"), (3, "jvm"), (4, "python"),
                                        (5, "python"), (6, "python"), (7, "python"), (8, "python"), (9, "python"),
                                        (10, "python"), (11, "python"), (12, "python"), (13, "python"),
                                        (14, "python"), (15, "python"), (16, "python"), (17, "python"),
                                        (18, "python"), (19, "python"), (20, "python"), (21, "python"),
                                        (22, "python"), (23, "jvm")])
def test_edge_cases(i, expected):
    assert jvm_verdicts([EDGES[i]]) == [expected]


EVENT_TIMES = [  # value, source.ts_ms as the Kafka source's watermark column must read it
    (b'{"op":"c","source":{"ts_ms":1767225600000,"lsn":1}}', 1767225600000),
    (b'{"source":{"lsn":1,"ts_ms":"1767225600001"},"op":"c"}', 1767225600001),
    (b'{"before":{"source":{"ts_ms":5}},"source":{"ts_ms":7}}', 7),           # nested look-alike skipped
    (b'{"source":{"ts_ms":1},"source":{"ts_ms":2}}', 2),                       # repeated key: the last
    (b'{"source":{"ts_ms":1.5}}', None),
    (b'{"source":{"ts_ms":null}}', None),
    (b'{"source":[1,2]}', None),
    (b'{"op":"c"}', None),
    (b"not json", None),
    (b"[1]", None),
]


def test_event_time_scan_reads_source_ts_ms():
    values = "\n".join(base64.b64encode(v).decode() for v, _ in EVENT_TIMES) + "\n"
    out = subprocess.run(["java", "-cp", str(JAR), "streamingagent.prefilter.CheckCli", "--event-time"],
                         input=values, capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out == ["null" if ts is None else str(ts) for _, ts in EVENT_TIMES]


def test_the_jvm_hint_looks_wherever_the_python_hint_does():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests.envelope_strategies import RAW_PII
    plain, plus = CONTRACT.pii.digits_needed()
    texts: list[str] = []

    @settings(max_examples=1500, deadline=None, database=None, derandomize=True)
    @given(st.one_of(st.text(alphabet="0123456789 -+().ab_/x@", max_size=24), st.text(max_size=12),
                     st.sampled_from(RAW_PII + ["o7-100000", "acct-2015550123", "tok_x_12345678"])))
    def collect(text):
        texts.append(text)

    collect()
    texts = [t for t in texts if "\n" not in t and "\r" not in t]
    lines = "\n".join(base64.b64encode(t.encode("utf-8", "surrogatepass")).decode() for t in texts) + "\n"
    out = subprocess.run(["java", "-cp", str(JAR), "streamingagent.prefilter.CheckCli", "--pii-hint", str(plain),
                          str(plus)], input=lines, capture_output=True, text=True, timeout=120, check=True)
    java = [v == "true" for v in out.stdout.split()]
    python = CONTRACT.pii.hint_for("order_id")
    assert len(java) == len(texts)
    missed = [t for t, j in zip(texts, java) if python(t) and not j]
    assert not missed, f"the JVM keeps strings the Python gate would search: {missed[:5]}"
    ascii_differ = [t for t, j in zip(texts, java) if t.isascii() and "@" not in t and python(t) != j]
    assert not ascii_differ, f"for ASCII text the two hints should agree: {ascii_differ[:5]}"


def test_the_jvm_computes_the_version_2_idempotency_key():
    from contracts.idempotency import idempotency_key
    cases = [("cdc.public.orders", '{"order_id":"1"}', T0), ("t", "ord-1", 767225600000), ("t", "ord-", 1767225600000),
             ("cdc.public.orders", '{"id":"é"}', 0)]
    lines = "".join(f"{base64.b64encode(t.encode()).decode()} {base64.b64encode(k.encode()).decode()} {ts}\n"
                    for t, k, ts in cases)
    out = subprocess.run(["java", "-cp", str(JAR), "streamingagent.prefilter.CheckCli", "--idempotency-key"],
                         input=lines, capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out == [idempotency_key(t, k, ts) for t, k, ts in cases]
