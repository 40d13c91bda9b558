"""Hypothesis strategies for envelope lines: valid Debezium events, and near-valid mutations of each field.

Shared by the gate's differential test (compiled path against the jsonschema oracle) and the
hostile-input tests. Lines are text, as they arrive; `hostile_lines` adds what an attacker
would send: arbitrary Unicode (lone surrogates, controls, RTL marks), numbers of any magnitude,
deep nesting, duplicate keys, PII under random names.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from contracts.pii import phone_number_examples
from tests.factories import T0

EMAILS = ["jane.doe@example.com", "x@y.fr", "jané@exämple.de", "用户@例子.广告", "jane＠example.com",
          "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"]
PHONES = ["+1 212 555 0101", "+33 6 12 34 56 78", "(201) 555-0123", *phone_number_examples()[:6]]
SSNS = ["123-45-6789", "987 65 4321"]
RAW_PII = EMAILS + PHONES + SSNS

texts = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)  # any code point
weird_text = st.one_of(texts, st.sampled_from(["\ud800", "a\udfffb", "\u202eevil", "\x00", "\ufffd", "\ufeff",
                                               "o\u0301", "\U0001F600", "line\nbreak", "tab\there"]))
big_numbers = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 10**15,
                                                                       10**15 - 1]),
                        st.decimals(allow_nan=False, allow_infinity=False, places=None),
                        st.sampled_from([Decimal("1e26"), Decimal("1E+999"), Decimal("0.0000001"),
                                         Decimal("999999999999999.999999"), Decimal("-0.0")]))
json_leaf = st.one_of(st.none(), st.booleans(), big_numbers, weird_text, st.sampled_from(RAW_PII))


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3),
                        max_leaves=max_leaves)


def dumps(value: Any) -> str:
    """Compact JSON text; Decimals written as their own number text; lone surrogates as escapes."""
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else "null"
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


@st.composite
def rows(draw: Any, order_id: str | None = None) -> dict[str, Any]:
    oid = order_id or draw(st.sampled_from(["o1", "o2", "12345", "ord-77", "o-" + "9" * 6]))
    row: dict[str, Any] = {
        "order_id": oid, "account_id": draw(st.sampled_from(["acct-1", "acct-2", "acct-vip-7", "a"])),
        "amount": draw(st.one_of(st.sampled_from(["1200.00", "999.99", "1000.00", "0.01", "5000"]),
                                 st.integers(0, 5000), st.decimals("0", "5000", places=2))),
        "currency": "EUR", "status": draw(st.sampled_from(["created", "paid", "in progress", ""])),
        "vip_flag": draw(st.booleans())}
    for f in ("email", "phone", "ssn_last4"):
        choice = draw(st.sampled_from(["absent", "null", "token"]))
        if choice != "absent":
            row[f] = None if choice == "null" else f"tok_{f}_{oid}xxxxxxxx"
    if draw(st.booleans()):
        row["created_at"] = draw(st.one_of(st.integers(0, 2**40), st.just("2026-01-01T10:00:00Z")))
    return row


@st.composite
def cdc_envelopes(draw: Any) -> dict[str, Any]:
    """A valid cdc.public.orders@v2 envelope, shaped as Debezium writes it (metadata fields included)."""
    ts = T0 + draw(st.integers(0, 10**7))
    op = draw(st.sampled_from("curd"))
    before = draw(rows()) if op in "ud" else None
    after = None if op == "d" else draw(rows(order_id=before["order_id"] if before else None))
    source: dict[str, Any] = {"ts_ms": ts, "lsn": draw(st.one_of(st.integers(0, 2**40), st.just("0/16B3748"))),
                              "table": "orders"}
    for f, v in (("db", "shop"), ("schema", "public"), ("connector", "postgresql"), ("version", "3.1.0.Final"),
                 ("name", "dbserver1"), ("snapshot", "false"), ("txId", 771), ("ts_us", ts * 1000),
                 ("sequence", '["22","23"]'), ("xmin", None)):
        if draw(st.booleans()):
            source[f] = v
    payload: dict[str, Any] = {"op": op, "before": before, "after": after, "source": source}
    if draw(st.booleans()):
        payload["ts_ms"] = ts + 5
    if draw(st.booleans()):
        payload["transaction"] = draw(st.sampled_from([None, {"id": "571:53475", "total_order": 1,
                                                              "data_collection_order": 1}]))
    image = after or before or {}
    env: dict[str, Any] = {"topic": "cdc.public.orders",
                           "key": draw(st.one_of(st.just(json.dumps({"order_id": image.get("order_id")},
                                                                    separators=(",", ":"))),
                                                 st.none(), st.just(""))),
                           "ts_ms": ts, "schema": "v2", "payload": payload}
    if draw(st.booleans()):
        env["sensitivity"] = draw(st.sampled_from(["Public", "Internal", "Confidential"]))
    return env


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated_envelopes(draw: Any) -> str:
    """A valid envelope with one field changed: a wrong type, removed, added, duplicated, or a boundary value."""
    env = draw(cdc_envelopes())
    paths = [p for p in _paths(env) if p]
    row_fields = [p for p in paths if len(p) == 3 and p[1] in ("before", "after")]
    # half the time a field of a row image: that is where most of the schema's rules are
    path = draw(st.sampled_from(row_fields if row_fields and draw(st.booleans()) else paths))
    parent = env
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    how = draw(st.sampled_from(["replace", "replace", "delete", "delete", "add", "boundary", "duplicate", "pii",
                                "raw_pii_field"]))
    if how == "raw_pii_field" and row_fields:  # a named PII field of an image holding a raw value
        image = env["payload"][draw(st.sampled_from(sorted({p[1] for p in row_fields})))]
        image[draw(st.sampled_from(["email", "phone", "ssn_last4"]))] = draw(st.sampled_from(["1234", *RAW_PII]))
        return dumps(env)
    if how == "replace":
        parent[last] = draw(json_values(4))
    elif how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        parent[draw(texts)] = draw(json_values(3))
    elif how == "boundary":
        parent[last] = draw(st.sampled_from([2**63, -1, 10**15, Decimal("1e26"), "1000.0000001", "x" * 129,
                                             "\ud800", "", True, 0, Decimal("1.5"), "EURO", T0 + 10**12]))
    elif how == "pii":
        parent[last] = draw(st.sampled_from(RAW_PII))
    text = dumps(env)
    if how == "duplicate" and isinstance(last, str):
        key = json.dumps(last) + ":"
        at = text.find(key)
        if at > 0:  # the same key again, just before its first occurrence
            text = text[:at] + key + dumps(draw(json_leaf)) + "," + text[at:]
    return text


@st.composite
def hostile_lines(draw: Any) -> str:
    """Anything at all on a line: mutated envelopes, random JSON, raw Unicode, PII under any name."""
    kind = draw(st.sampled_from(["mutated", "valid", "random", "pii_anywhere", "deep", "whitespace"]))
    if kind == "mutated":
        return draw(mutated_envelopes())
    if kind == "valid":
        return dumps(draw(cdc_envelopes()))
    if kind == "random":
        return dumps(draw(json_values()))
    if kind == "pii_anywhere":
        env = draw(cdc_envelopes())
        target = draw(st.sampled_from(["key", "topic", "account_id", "order_id", "status", "newfield", "objkey"]))
        pii = draw(st.sampled_from(RAW_PII))
        image = env["payload"]["after"] or env["payload"]["before"]
        if target in ("key", "topic"):
            env[target] = pii if target == "topic" else json.dumps({"id": pii})
        elif target == "newfield":
            image[draw(st.sampled_from(["Phone", "SSN", "notes", "contact"]))] = f"reach me: {pii}"
        elif target == "objkey":
            image[pii] = "x"
        else:
            image[target] = pii
        return dumps(env)
    if kind == "deep":
        v: Any = "x"
        for _ in range(draw(st.integers(20, 60))):
            v = {"a": v}
        env = draw(cdc_envelopes())
        env["payload"]["extra"] = v
        return dumps(env)
    env = draw(cdc_envelopes())
    return json.dumps(env, default=str, indent=draw(st.sampled_from([None, 1])),
                      separators=draw(st.sampled_from([(", ", ": "), (",", " : ")]))).replace("\n", " ")
