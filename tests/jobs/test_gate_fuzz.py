"""Fuzzing the gate: whatever arrives, no exception escapes, one outcome each, no raw PII out."""
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.contract import load_contract
from jobs.gate import Gate
from tests.factories import T0, breach_env, cdc, order_row

GATE = Gate(load_contract())
RAW_PII = ["jane.doe@example.com", "+33612345678", "987-65-4321"]
PII_RE = re.compile("|".join(re.escape(v) for v in RAW_PII))

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=20))
# Raw PII only ever sits under a PII field name (at any depth): that is what the contract can know.
pii_pair = st.dictionaries(st.sampled_from(["email", "phone", "ssn_last4"]), st.sampled_from(RAW_PII),
                           min_size=1, max_size=2)
json_value = st.recursive(json_leaf | pii_pair,
                          lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                          max_leaves=30)


@st.composite
def envelopes(draw):
    kind = draw(st.sampled_from(["valid", "pii", "mistyped", "truncated", "unknown_topic", "nested",
                                 "oversized", "binary", "random", "breach", "missing"]))
    ts = T0 + draw(st.integers(0, 10**6))
    base = cdc(ts, draw(st.sampled_from("curd")), after=order_row(f"o{draw(st.integers(0, 99))}",
               vip=draw(st.booleans())))
    if kind == "valid":
        return json.dumps(base)
    if kind == "pii":
        field = draw(st.sampled_from(["email", "phone", "ssn_last4"]))
        base["payload"]["after"][field] = draw(st.sampled_from(RAW_PII))
        return json.dumps(base)
    if kind == "mistyped":
        path = draw(st.sampled_from([("ts_ms",), ("payload", "op"), ("payload", "after", "amount"),
                                     ("payload", "after", "vip_flag"), ("payload", "source"), ("key",)]))
        target = base
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = draw(json_value)
        return json.dumps(base)
    if kind == "truncated":
        text = json.dumps(base)
        return text[: draw(st.integers(0, len(text) - 1))]
    if kind == "unknown_topic":
        base["topic"] = draw(st.text(min_size=1, max_size=30))
        return json.dumps(base)
    if kind == "nested":
        v = base
        for _ in range(draw(st.integers(20, 200))):
            v["x"] = {}
            v = v["x"]
        v["email"] = RAW_PII[0]
        return json.dumps(base)
    if kind == "oversized":
        base["payload"]["after"]["status"] = "x" * draw(st.sampled_from([100, 70_000, (1 << 20) + 10]))
        return json.dumps(base)
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "breach":
        b = breach_env(ts=ts)
        b["payload"][draw(st.sampled_from(list(b["payload"])))] = draw(json_value)
        return json.dumps(b)
    if kind == "missing":
        del base[draw(st.sampled_from(list(base)))]
        return json.dumps(base)
    return json.dumps(draw(json_value))


@pytest.mark.parametrize("chunk", range(5))
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(envelopes())
def test_gate_never_raises_and_never_leaks(chunk, raw):
    r = GATE.check(raw, offset=1)
    assert r.outcome in ("pass", "no_action", "dlq")
    if r.outcome == "dlq":
        assert r.reason and r.error
        out = json.dumps(r.masked, default=str) + r.error
        assert not PII_RE.search(out), out[:300]
    if r.outcome == "pass":
        governed = json.dumps(r.envelope.to_json_dict(), default=str)
        assert not PII_RE.search(governed)
        for img in ("before", "after"):
            image = (r.envelope.payload or {}).get(img) or {}
            assert not {"email", "phone", "ssn_last4"} & set(image)
