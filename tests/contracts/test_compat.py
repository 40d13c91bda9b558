"""Schema compatibility (Avro through fastavro resolution, JSON Schema by field rules) and the schema lock."""
import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.compat import (LOCK_FILE, SCHEMAS_DIR, avro_compat, check_compat, check_contract, json_compat, pin,
                              read_lock, sha256_file, version_pairs, schema_files, write_lock)
from contracts.contract import CONTRACTS_DIR

REPO = Path(__file__).resolve().parents[2]
BREACH_V2 = SCHEMAS_DIR / "order_breach_v2.avsc"
BREACH_V3 = SCHEMAS_DIR / "order_breach_v3.avsc"
DEBEZIUM_V2 = SCHEMAS_DIR / "debezium_order_v2.json"


def load(p):
    return json.loads(Path(p).read_text())


def changed(schema, edit):
    new = copy.deepcopy(schema)
    edit(new)
    return new


def field(schema, name):
    return next(f for f in schema["fields"] if f["name"] == name)


# -- Avro -------------------------------------------------------------------------
V3 = load(BREACH_V3)


@pytest.mark.parametrize("edit,note", [
    (lambda s: s["fields"].append({"name": "region", "type": ["null", "string"], "default": None}),
     "region: field added with default null"),
    (lambda s: s["fields"].remove(field(s, "total_amount")), "total_amount: field removed"),
    (lambda s: field(s, "account_id").update(type=["null", "string"]), "account_id: string now read through"),
    (lambda s: field(s, "auto_hold").update(type="boolean"), None),  # unchanged type
], ids=["added-with-default", "removed", "made-nullable", "unchanged"])
def test_avro_compatible_changes(edit, note):
    r = avro_compat(V3, changed(V3, edit))
    assert r.compatible, r.problems
    if note:
        assert any(n.startswith(note) for n in r.notes), r.notes


def test_avro_promotion_is_compatible():
    old = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}, {"name": "x", "type": "float"}]}
    new = changed(old, lambda s: (s["fields"][0].update(type="long"), s["fields"][1].update(type="double")))
    r = avro_compat(old, new)
    assert r.compatible and "n: type int promoted to long" in r.notes


@pytest.mark.parametrize("edit,problem", [
    (lambda s: s["fields"].append({"name": "region", "type": "string"}), "region: field added without a default"),
    (lambda s: field(s, "window_start_ms").update(type="int"), "window_start_ms: type changed from long to int"),
    (lambda s: field(s, "account_id").update(type="long"), "account_id: type changed from string to long"),
    (lambda s: field(s, "order_ids").update(type={"type": "array", "items": "long"}), "order_ids[]: type changed"),
    (lambda s: s.update(name="Renamed"), "(record): named type OrderThresholdBreach renamed"),
], ids=["added-without-default", "long-to-int", "string-to-long", "array-items", "renamed-record"])
def test_avro_incompatible_changes(edit, problem):
    r = avro_compat(V3, changed(V3, edit))
    assert not r.compatible
    assert any(p.startswith(problem) for p in r.problems), r.problems
    # fastavro's resolution agrees with the field rules
    assert any("SchemaResolutionError" in n for n in r.notes), r.notes


def test_avro_enum_symbols():
    old = {"type": "record", "name": "R", "fields": [
        {"name": "k", "type": {"type": "enum", "name": "K", "symbols": ["A", "B", "C"]}}]}
    dropped = changed(old, lambda s: s["fields"][0]["type"].update(symbols=["A", "B"]))
    r = avro_compat(old, dropped)
    assert not r.compatible and "k: enum symbol(s) removed without a reader default: C" in r.problems
    with_default = changed(dropped, lambda s: s["fields"][0]["type"].update(default="A"))
    assert avro_compat(old, with_default).compatible
    added = changed(old, lambda s: s["fields"][0]["type"].update(symbols=["A", "B", "C", "D"]))
    assert avro_compat(old, added).compatible


def test_resolution_alone_catches_what_the_rules_might_miss(monkeypatch):
    """The fastavro check is not decorative: with the field rules blinded, resolution still fails."""
    import contracts.compat as compat

    monkeypatch.setattr(compat, "_avro_diff", lambda *a, **k: None)
    r = compat.avro_compat(V3, changed(V3, lambda s: s["fields"].append({"name": "region", "type": "string"})))
    assert not r.compatible and r.problems[0].startswith("fastavro schema resolution fails")


# -- the breach pair v2 -> v3 -----------------------------------------------------------
def test_breach_v2_is_v3_without_auto_hold():
    v2, v3 = load(BREACH_V2), load(BREACH_V3)
    assert [f["name"] for f in v2["fields"]] == [f["name"] for f in v3["fields"] if f["name"] != "auto_hold"]
    assert (v2["name"], v2["namespace"]) == (v3["name"], v3["namespace"])


def test_breach_v2_to_v3_is_backward_compatible():
    r = check_compat(BREACH_V2, BREACH_V3)
    assert r.compatible, r.problems
    assert "auto_hold: field added with default true" in r.notes


def test_v2_breach_bytes_decode_as_v3_with_auto_hold_true():
    import io

    import fastavro

    from contracts.avro import decode_breach

    v2 = fastavro.parse_schema(load(BREACH_V2))
    rec = {"breach_id": "brc-1", "account_id": "a", "order_id": "o3", "order_ids": ["o1", "o2", "o3"],
           "rule": "high_value_orders_3_in_10m", "threshold": "1000.00", "window_start_ms": 0,
           "window_end_ms": 600000, "total_amount": "3000.00", "ts_ms": 600000}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v2, rec)
    assert decode_breach(buf.getvalue(), writer_schema=v2).auto_hold is True


# -- JSON Schema (the Debezium order schema) -----------------------------------------------
DBZ = load(DEBEZIUM_V2)


def row(s):
    return s["$defs"]["row"]


@pytest.mark.parametrize("edit,note", [
    (lambda s: row(s)["properties"].update(region={"type": "string"}), "after.region: optional property added"),
    (lambda s: s["properties"]["op"].update(enum=["c", "u", "d", "r", "t"]), 'op: enum widened with {"t"}'),
    (lambda s: s["properties"]["source"]["properties"]["txId"].update(type=["integer", "string", "null"]),
     "source.txId: type widened"),
    (lambda s: row(s)["properties"].pop("created_at"), "after.created_at: optional property removed"),
    (lambda s: row(s)["properties"]["currency"].update(maxLength=8), "after.currency: maxLength loosened"),
    (lambda s: s["properties"]["source"]["required"].remove("lsn"), None),
], ids=["optional-added", "enum-widened", "type-widened", "optional-removed", "bound-loosened", "made-optional"])
def test_json_compatible_changes(edit, note):
    r = json_compat(DBZ, changed(DBZ, edit))
    assert r.compatible, r.problems
    if note:
        assert any(n.startswith(note) for n in r.notes), r.notes


@pytest.mark.parametrize("edit,problem", [
    (lambda s: (row(s)["properties"].update(region={"type": "string"}), row(s)["required"].append("region")),
     "after.region: new required property"),
    (lambda s: row(s)["required"].append("email"), "after.email: optional in the old schema, required in the new"),
    (lambda s: s["required"].append("ts_ms"), "ts_ms: optional in the old schema, required"),
    (lambda s: s["properties"]["source"]["properties"]["lsn"].update(type="integer"),
     "source.lsn: type narrowed from {integer, string} to {integer}"),
    (lambda s: row(s)["properties"]["amount"]["anyOf"].pop(1), "after.amount: type narrowed"),
    (lambda s: row(s)["properties"].pop("vip_flag"), "after.vip_flag: required property removed"),
    (lambda s: s["properties"]["op"].update(enum=["c", "u", "d"]), 'op: enum narrowed, drops {"r"}'),
    (lambda s: row(s)["properties"]["currency"].update(maxLength=2), "after.currency: maxLength tightened"),
    (lambda s: row(s)["properties"]["amount"]["anyOf"][1].update(pattern="^[0-9]+$"),
     "after.amount (string): pattern changed"),
    (lambda s: row(s).update(additionalProperties=False), "after: additionalProperties closed"),
], ids=["new-required", "optional-to-required", "top-level-required", "narrowed-type", "narrowed-anyof",
        "required-removed", "narrowed-enum", "bound-tightened", "pattern-changed", "closed"])
def test_json_incompatible_changes(edit, problem):
    r = json_compat(DBZ, changed(DBZ, edit))
    assert not r.compatible
    assert any(p.startswith(problem) for p in r.problems), r.problems


def test_json_identical_schema_is_compatible_without_notes():
    r = check_compat(DEBEZIUM_V2, DEBEZIUM_V2)
    assert r.compatible and r.notes == [] and r.kind == "json"


def test_cli_exit_codes(tmp_path):
    bad = tmp_path / "debezium_order_v3.json"
    bad.write_text(json.dumps(changed(DBZ, lambda s: s["properties"]["op"].update(enum=["c", "u"]))))
    ok = subprocess.run([sys.executable, "-m", "contracts.compat", str(BREACH_V2), str(BREACH_V3)],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "backward compatible" in ok.stdout
    ko = subprocess.run([sys.executable, "-m", "contracts.compat", str(DEBEZIUM_V2), str(bad)],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ko.returncode == 1 and "NOT backward compatible" in ko.stdout and "enum narrowed" in ko.stdout


# -- the lock -------------------------------------------------------------------------
def test_the_repository_schemas_pass_the_check():
    result = check_contract()
    assert result.ok, result.render()
    assert [(r.old, r.new) for r in result.pairs] == [("order_breach_v2.avsc", "order_breach_v3.avsc")]


def test_every_schema_file_and_contract_input_is_pinned():
    lock = read_lock(LOCK_FILE)
    assert {p.name for p in schema_files(SCHEMAS_DIR)} == set(lock)
    for name, entry in lock.items():
        assert entry["sha256"] == sha256_file(SCHEMAS_DIR / name), f"{name} changed in place"


@pytest.fixture
def schemas(tmp_path):
    """A copy of contracts/ (schemas, lock, contract) to break in various ways."""
    d = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR / "schemas", d / "schemas")
    shutil.copy(CONTRACTS_DIR / "streaming_agent_v1.yaml", d / "streaming_agent_v1.yaml")
    return d


def _check(d):
    return check_contract(d / "schemas", d / "schemas" / "schemas.lock.json", [d / "streaming_agent_v1.yaml"])


def test_check_of_the_copy_passes(schemas):
    assert _check(schemas).ok, _check(schemas).render()


def test_a_pinned_schema_changed_in_place_fails(schemas):
    p = schemas / "schemas" / "order_breach_v3.avsc"
    s = load(p)
    field(s, "auto_hold")["doc"] = "even a doc change is a change"
    p.write_text(json.dumps(s, indent=2))
    r = _check(schemas)
    assert not r.ok and any(x.startswith("order_breach_v3.avsc: changed in place") for x in r.problems), r.problems


def test_an_unpinned_schema_fails_until_pinned(schemas):
    d = schemas / "schemas"
    v4 = changed(V3, lambda s: s["fields"].append({"name": "region", "type": ["null", "string"], "default": None}))
    (d / "order_breach_v4.avsc").write_text(json.dumps(v4))
    r = _check(schemas)
    assert not r.ok and any(x.startswith("order_breach_v4.avsc: not pinned") for x in r.problems)
    assert pin(d, d / "schemas.lock.json") == ["order_breach_v4.avsc"]
    r = _check(schemas)
    assert r.ok, r.render()
    assert [(p.old, p.new) for p in r.pairs] == [("order_breach_v2.avsc", "order_breach_v3.avsc"),
                                                 ("order_breach_v3.avsc", "order_breach_v4.avsc")]


def test_pin_never_repins_a_changed_file(schemas):
    d = schemas / "schemas"
    before = read_lock(d / "schemas.lock.json")
    (d / "order_breach_v3.avsc").write_text("{}")
    assert pin(d, d / "schemas.lock.json") == []
    assert read_lock(d / "schemas.lock.json") == before
    assert not _check(schemas).ok


def test_an_incompatible_next_version_fails_unless_marked_breaking(schemas):
    d = schemas / "schemas"
    lock_path = d / "schemas.lock.json"
    v4 = changed(V3, lambda s: s["fields"].append({"name": "region", "type": "string"}))  # no default
    (d / "order_breach_v4.avsc").write_text(json.dumps(v4))
    pin(d, lock_path)
    r = _check(schemas)
    assert not r.ok
    assert any(x.startswith("order_breach_v4.avsc is not backward compatible with order_breach_v3.avsc")
               for x in r.problems), r.problems
    lock = read_lock(lock_path)
    lock["order_breach_v4.avsc"]["breaking"] = True
    write_lock(lock_path, lock)
    assert _check(schemas).ok, _check(schemas).render()


def test_an_incompatible_json_version_fails(schemas):
    d = schemas / "schemas"
    v3 = changed(DBZ, lambda s: row(s)["required"].append("email"))
    (d / "debezium_order_v3.json").write_text(json.dumps(v3))
    pin(d, d / "schemas.lock.json")
    r = _check(schemas)
    assert not r.ok and any("debezium_order_v3.json is not backward compatible" in x for x in r.problems)


def test_a_deleted_pinned_file_and_an_unpinned_contract_input_fail(schemas):
    d = schemas / "schemas"
    (d / "order_breach_v2.avsc").unlink()
    lock = read_lock(d / "schemas.lock.json")
    del lock["debezium_order_v2.json"]
    write_lock(d / "schemas.lock.json", lock)
    problems = _check(schemas).problems
    assert any(x.startswith("order_breach_v2.avsc: pinned in the lock but missing") for x in problems)
    assert any("cdc.public.orders@v2 uses schemas/debezium_order_v2.json, which is not pinned" in x
               for x in problems)


def test_version_pairs_pair_consecutive_present_versions(tmp_path):
    for n in ("a_v1.avsc", "a_v3.avsc", "a_v2.avsc", "b_v2.json", "b_v10.json", "a_v1.json", "c.json"):
        (tmp_path / n).write_text("{}")
    pairs = sorted((a.name, b.name) for a, b in version_pairs(schema_files(tmp_path)))
    assert pairs == [("a_v1.avsc", "a_v2.avsc"), ("a_v2.avsc", "a_v3.avsc"), ("b_v2.json", "b_v10.json")]
