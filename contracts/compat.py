"""Schema compatibility and the schema lock: can a reader of NEW read data written with OLD?

    python -m contracts.compat OLD NEW        # one pair (.avsc or JSON Schema .json); exit 1 if breaking
    python -m contracts.compat --check        # the lock and every version pair in contracts/schemas
    python -m contracts.compat --pin          # add schema files missing from the lock (never re-pins)

Avro: fastavro schema resolution is the judge. Sample records generated from OLD
(`fastavro.utils.generate_many`, seeded) are written with OLD and read with
`schemaless_reader(writer=OLD, reader=NEW)`; a field-by-field comparison explains the
failures (a field added without default, a type change that is not a promotion, a removed
enum symbol, a renamed record) and lists the harmless changes.

JSON Schema (the Debezium order schema): field-level rules, following `$ref`, `anyOf`/`oneOf`,
nested objects and array items. Breaking: a property required in NEW that was absent or
optional in OLD, a narrowed type set, a removed property that was required, a narrowed enum
or const, a tightened bound (maxLength, minimum, ...), a changed pattern, additionalProperties
closed. Harmless (reported as notes): new optional properties, widened types and enums,
loosened bounds, removed optional properties.

The lock (`contracts/schemas/schemas.lock.json`) pins every schema file to its sha256. A pinned
file must never change in place: a change is a new version file (`<family>_v<N+1>.<ext>`) plus a
new contract input. Consecutive versions of a family must be backward compatible unless the
lock marks the newer one `"breaking": true`.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from contracts.contract import CONTRACTS_DIR, DEFAULT_CONTRACT, load_contract

SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
LOCK_FILE = SCHEMAS_DIR / "schemas.lock.json"
SCHEMA_SUFFIXES = (".avsc", ".json")
VERSIONED = re.compile(r"^(?P<family>.+)_v(?P<version>\d+)\.(?P<ext>avsc|json)$")
SAMPLES = 200


@dataclass
class CompatReport:
    old: str
    new: str
    kind: str  # "avro" | "json"
    problems: list[str] = field(default_factory=list)  # breaking changes
    notes: list[str] = field(default_factory=list)     # changes a reader of NEW copes with

    @property
    def compatible(self) -> bool:
        return not self.problems

    def render(self) -> str:
        head = f"{self.old} -> {self.new} ({self.kind}): " + (
            "backward compatible" if self.compatible else "NOT backward compatible")
        lines = [head] + [f"  breaking: {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _load(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def kind_of(path: str | Path, schema: Any | None = None) -> str:
    p = Path(path)
    if p.suffix == ".avsc":
        return "avro"
    schema = _load(p) if schema is None else schema
    if isinstance(schema, dict) and ("$schema" in schema or "properties" in schema or "$defs" in schema):
        return "json"
    return "avro"


def check_compat(old: str | Path, new: str | Path) -> CompatReport:
    """Is NEW backward compatible with OLD (both files of the same kind)?"""
    o, n = _load(old), _load(new)
    ko, kn = kind_of(old, o), kind_of(new, n)
    if ko != kn:
        return CompatReport(str(old), str(new), f"{ko}/{kn}", [f"{Path(old).name} is {ko} but "
                                                               f"{Path(new).name} is {kn}"])
    report = avro_compat(o, n) if ko == "avro" else json_compat(o, n)
    report.old, report.new = str(old), str(new)
    return report


# -- Avro --------------------------------------------------------------------------
PROMOTIONS = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"), ("long", "double"),
              ("float", "double"), ("string", "bytes"), ("bytes", "string")}
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def avro_compat(old: Any, new: Any, samples: int = SAMPLES, seed: int = 0) -> CompatReport:
    report = CompatReport("OLD", "NEW", "avro")
    named_old: dict[str, Any] = {}
    named_new: dict[str, Any] = {}
    _collect_named(old, None, named_old)
    _collect_named(new, None, named_new)
    _avro_diff(old, new, "", report, named_old, named_new, set())
    failure = _resolution_failure(old, new, samples, seed)
    if failure and not report.problems:
        report.problems.append(f"fastavro schema resolution fails: {failure}")
    elif failure:
        report.notes.append(f"fastavro schema resolution confirms: {failure}")
    return report


def _resolution_failure(old: Any, new: Any, samples: int, seed: int) -> str | None:
    import fastavro
    from fastavro.utils import generate_many

    try:
        writer = fastavro.parse_schema(old)
        reader = fastavro.parse_schema(new)
    except Exception as e:  # noqa: BLE001 - a schema fastavro rejects is reported, not raised
        return f"schema does not parse: {e}"
    state = random.getstate()
    random.seed(seed)  # fastavro's generator draws from the global `random`
    try:
        records = list(generate_many(writer, samples))
    finally:
        random.setstate(state)
    for rec in records:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, rec)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, writer, reader)
        except Exception as e:  # noqa: BLE001 - SchemaResolutionError and friends
            text = " ".join(str(e).split())
            return f"{type(e).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"
    return None


def _fullname(schema: dict[str, Any], namespace: str | None) -> str:
    name = schema["name"]
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _collect_named(schema: Any, namespace: str | None, named: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for s in schema:
            _collect_named(s, namespace, named)
    elif isinstance(schema, dict):
        t = schema.get("type")
        if t in ("record", "error", "enum", "fixed") and "name" in schema:
            full = _fullname(schema, namespace)
            named[full] = schema
            named.setdefault(schema["name"], schema)
            ns = full.rpartition(".")[0] or None
            for f in schema.get("fields", []) if t in ("record", "error") else []:
                _collect_named(f.get("type"), ns, named)
        elif t == "array":
            _collect_named(schema.get("items"), namespace, named)
        elif t == "map":
            _collect_named(schema.get("values"), namespace, named)
        elif isinstance(t, (dict, list)):
            _collect_named(t, namespace, named)


def _resolve(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema not in PRIMITIVES:
        return named.get(schema, schema)
    if isinstance(schema, dict) and isinstance(schema.get("type"), str) and schema["type"] in PRIMITIVES \
            and "logicalType" not in schema:
        return schema["type"]
    if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)):
        return _resolve(schema["type"], named)
    return schema


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union[" + ", ".join(_type_name(s) for s in schema) + "]"
    if isinstance(schema, dict):
        t = schema.get("type")
        if t in ("record", "error", "enum", "fixed"):
            return f"{t} {schema.get('name')}"
        if t == "array":
            return f"array<{_type_name(schema.get('items'))}>"
        if t == "map":
            return f"map<{_type_name(schema.get('values'))}>"
        return str(t)
    return repr(schema)


def _avro_diff(w: Any, r: Any, path: str, rep: CompatReport, nw: dict[str, Any], nr: dict[str, Any],
               seen: set[tuple[str, str]]) -> None:
    """Can data of writer type `w` be read as reader type `r`? Problems and notes go to `rep`."""
    w, r = _resolve(w, nw), _resolve(r, nr)
    where = path or "(record)"
    if isinstance(w, list):
        for branch in w:
            _avro_diff(branch, r, path, rep, nw, nr, seen)
        return
    if isinstance(r, list):
        matches = [b for b in r if _avro_matches(w, _resolve(b, nr))]
        if not matches:
            rep.problems.append(f"{where}: type {_type_name(w)} is not readable as {_type_name(r)}")
        else:
            rep.notes.append(f"{where}: {_type_name(w)} now read through {_type_name(r)}")
            _avro_diff(w, matches[0], path, rep, nw, nr, seen)
        return
    tw = w if isinstance(w, str) else w.get("type")
    tr = r if isinstance(r, str) else r.get("type")
    if tw in PRIMITIVES or tr in PRIMITIVES:
        if tw == tr:
            return
        if (tw, tr) in PROMOTIONS:
            rep.notes.append(f"{where}: type {tw} promoted to {tr}")
        else:
            rep.problems.append(f"{where}: type changed from {_type_name(w)} to {_type_name(r)}")
        return
    if tw != tr:
        rep.problems.append(f"{where}: type changed from {_type_name(w)} to {_type_name(r)}")
        return
    if tw in ("record", "error", "enum", "fixed"):
        if w["name"].rpartition(".")[2] != r["name"].rpartition(".")[2] and \
                w["name"] not in r.get("aliases", []) and _fullname(w, None) not in r.get("aliases", []):
            rep.problems.append(f"{where}: named type {w['name']} renamed to {r['name']} without an alias")
            return
    if tw in ("record", "error"):
        pair = (_fullname(w, None), _fullname(r, None))
        if pair in seen:
            return
        seen = seen | {pair}
        _avro_record(w, r, path, rep, nw, nr, seen)
    elif tw == "enum":
        removed = [s for s in w.get("symbols", []) if s not in r.get("symbols", [])]
        if removed and "default" not in r:
            rep.problems.append(f"{where}: enum symbol(s) removed without a reader default: {', '.join(removed)}")
        elif removed:
            rep.notes.append(f"{where}: enum symbol(s) {', '.join(removed)} now read as {r['default']}")
        added = [s for s in r.get("symbols", []) if s not in w.get("symbols", [])]
        if added:
            rep.notes.append(f"{where}: enum symbol(s) added: {', '.join(added)}")
    elif tw == "fixed":
        if w.get("size") != r.get("size"):
            rep.problems.append(f"{where}: fixed size changed from {w.get('size')} to {r.get('size')}")
    elif tw == "array":
        _avro_diff(w.get("items"), r.get("items"), f"{path}[]", rep, nw, nr, seen)
    elif tw == "map":
        _avro_diff(w.get("values"), r.get("values"), f"{path}{{}}", rep, nw, nr, seen)


def _avro_matches(w: Any, r: Any) -> bool:
    tw = w if isinstance(w, str) else (w.get("type") if isinstance(w, dict) else "union")
    tr = r if isinstance(r, str) else (r.get("type") if isinstance(r, dict) else "union")
    if tw == tr:
        if tw in ("record", "error", "enum", "fixed"):
            return w["name"].rpartition(".")[2] == r["name"].rpartition(".")[2] or w["name"] in r.get("aliases", [])
        return True
    return (tw, tr) in PROMOTIONS


def _avro_record(w: dict[str, Any], r: dict[str, Any], path: str, rep: CompatReport,
                 nw: dict[str, Any], nr: dict[str, Any], seen: set[tuple[str, str]]) -> None:
    wf = {f["name"]: f for f in w.get("fields", [])}
    prefix = f"{path}." if path else ""
    used: set[str] = set()
    for f in r.get("fields", []):
        names = [f["name"], *f.get("aliases", [])]
        match = next((wf[n] for n in names if n in wf), None)
        if match is None:
            if "default" in f:
                rep.notes.append(f"{prefix}{f['name']}: field added with default {json.dumps(f['default'])}")
            else:
                rep.problems.append(f"{prefix}{f['name']}: field added without a default "
                                    f"(data written with the old schema has no value for it)")
            continue
        used.add(match["name"])
        if match["name"] != f["name"]:
            rep.notes.append(f"{prefix}{f['name']}: renamed from {match['name']} (alias)")
        _avro_diff(match["type"], f["type"], prefix + f["name"], rep, nw, nr, seen)
    for name in wf:
        if name not in used:
            rep.notes.append(f"{prefix}{name}: field removed (ignored when reading old data)")


# -- JSON Schema ----------------------------------------------------------------------------
BOUNDS_MAX = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
BOUNDS_MIN = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum", "multipleOf")


def json_compat(old: dict[str, Any], new: dict[str, Any]) -> CompatReport:
    report = CompatReport("OLD", "NEW", "json")
    _JsonDiff(old, new, report).node(old, new, "", frozenset())
    return report


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _key(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


class _JsonDiff:
    def __init__(self, old_root: dict[str, Any], new_root: dict[str, Any], report: CompatReport) -> None:
        self.roots = (old_root, new_root)
        self.rep = report

    @staticmethod
    def deref(node: Any, root: dict[str, Any]) -> tuple[Any, str | None]:
        ref = None
        for _ in range(32):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/")):
                break
            ref = node["$ref"]
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            node = target
        return node, ref

    def branches(self, node: Any, root: dict[str, Any]) -> list[Any]:
        node, _ = self.deref(node, root)
        if isinstance(node, dict):
            for k in ("anyOf", "oneOf"):
                if isinstance(node.get(k), list):
                    return [b for x in node[k] for b in self.branches(x, root)]
        return [node]

    def types(self, node: Any, root: dict[str, Any]) -> set[str] | None:
        """The JSON types a node accepts; None when unconstrained."""
        acc: set[str] = set()
        for b in self.branches(node, root):
            if not isinstance(b, dict):
                return None
            if "type" in b:
                t = b["type"]
                ts = {t} if isinstance(t, str) else set(t)
            elif "enum" in b:
                ts = {_json_type(v) for v in b["enum"]}
            elif "const" in b:
                ts = {_json_type(b["const"])}
            elif "properties" in b or "required" in b:
                ts = {"object"}
            elif "items" in b:
                ts = {"array"}
            else:
                return None
            if "number" in ts:
                ts.add("integer")
            acc |= ts
        return acc

    def values(self, node: Any, root: dict[str, Any]) -> set[str] | None:
        """The allowed values (enum/const), as canonical JSON; None when not an enumeration."""
        acc: set[str] = set()
        for b in self.branches(node, root):
            if isinstance(b, dict) and "enum" in b:
                acc |= {_key(v) for v in b["enum"]}
            elif isinstance(b, dict) and "const" in b:
                acc.add(_key(b["const"]))
            elif isinstance(b, dict) and b.get("type") == "null":
                acc.add("null")
            else:
                return None
        return acc

    def node(self, o: Any, n: Any, path: str, seen: frozenset[tuple[str | None, str | None]]) -> None:
        ro, rn = self.roots
        o, ref_o = self.deref(o, ro)
        n, ref_n = self.deref(n, rn)
        if ref_o or ref_n:
            if (ref_o, ref_n) in seen:
                return
            seen = seen | {(ref_o, ref_n)}
        where = path or "(root)"
        to, tn = self.types(o, ro), self.types(n, rn)
        if tn is not None:
            if to is None:
                self.rep.problems.append(f"{where}: was unconstrained, now restricted to {_fmt(tn)}")
            elif not to <= tn:
                self.rep.problems.append(f"{where}: type narrowed from {_fmt(to)} to {_fmt(tn)} "
                                         f"(drops {_fmt(to - tn)})")
            elif to != tn:
                self.rep.notes.append(f"{where}: type widened from {_fmt(to)} to {_fmt(tn)}")
        vo, vn = self.values(o, ro), self.values(n, rn)
        if vn is not None:
            if vo is None:
                self.rep.problems.append(f"{where}: now restricted to the values {_fmt(vn)}")
            elif not vo <= vn:
                self.rep.problems.append(f"{where}: enum narrowed, drops {_fmt(vo - vn)}")
            elif vo != vn:
                self.rep.notes.append(f"{where}: enum widened with {_fmt(vn - vo)}")
        bo, bn = self.branches(o, ro), self.branches(n, rn)
        if len(bo) == 1 and len(bn) == 1:
            self.constraints(bo[0], bn[0], where)
            self.obj(bo[0], bn[0], path, seen)
            self.array(bo[0], bn[0], path, seen)
            return
        # anyOf/oneOf: compare each old branch with the new branch of the same type
        for b in bo:
            t = self.types(b, ro)
            if not t or t == {"null"}:
                continue
            partner = next((c for c in bn if (self.types(c, rn) or set()) & (t - {"null"})), None)
            if partner is None:
                continue  # its type is gone: reported as a narrowed type above
            (ob, ref_b), (nb, ref_p) = self.deref(b, ro), self.deref(partner, rn)
            if (ref_b or ref_p) and (ref_b, ref_p) in seen:
                continue
            inner = seen | {(ref_b, ref_p)} if (ref_b or ref_p) else seen
            label = "/".join(sorted(t - {"integer"} if "number" in t else t))
            self.constraints(ob, nb, f"{where} ({label})")
            self.obj(ob, nb, path, inner)
            self.array(ob, nb, path, inner)

    def constraints(self, o: Any, n: Any, where: str) -> None:
        if not (isinstance(o, dict) and isinstance(n, dict)):
            return
        for k in BOUNDS_MAX:
            if k in n and (k not in o or n[k] < o[k]):
                self.rep.problems.append(f"{where}: {k} tightened from {o.get(k, 'none')} to {n[k]}")
            elif k in o and (k not in n or n[k] > o[k]):
                self.rep.notes.append(f"{where}: {k} loosened from {o[k]} to {n.get(k, 'none')}")
        for k in BOUNDS_MIN:
            if k in n and (k not in o or n[k] > o[k]) and k != "multipleOf":
                self.rep.problems.append(f"{where}: {k} tightened from {o.get(k, 'none')} to {n[k]}")
            elif k == "multipleOf" and k in n and n[k] != o.get(k):
                self.rep.problems.append(f"{where}: multipleOf changed from {o.get(k, 'none')} to {n[k]}")
            elif k in o and (k not in n or n[k] < o[k]) and k != "multipleOf":
                self.rep.notes.append(f"{where}: {k} loosened from {o[k]} to {n.get(k, 'none')}")
        for k in ("pattern", "format"):
            if k in n and n[k] != o.get(k):
                self.rep.problems.append(f"{where}: {k} changed from {o.get(k, 'none')!r} to {n[k]!r} "
                                         "(old data is not proven to match)")
            elif k in o and k not in n:
                self.rep.notes.append(f"{where}: {k} removed")

    def obj(self, o: Any, n: Any, path: str, seen: frozenset[Any]) -> None:
        if not (isinstance(o, dict) and isinstance(n, dict)):
            return
        if not ({"properties", "required", "additionalProperties"} & (set(o) | set(n))):
            return
        po, pn = o.get("properties", {}) or {}, n.get("properties", {}) or {}
        ro, rn = set(o.get("required", []) or []), set(n.get("required", []) or [])
        prefix = f"{path}." if path else ""
        for p in sorted(rn - ro):
            if p in po:
                self.rep.problems.append(f"{prefix}{p}: optional in the old schema, required in the new one")
            else:
                self.rep.problems.append(f"{prefix}{p}: new required property (absent from old data)")
        for p in sorted(set(po) - set(pn)):
            if p in ro:
                self.rep.problems.append(f"{prefix}{p}: required property removed")
            elif n.get("additionalProperties") is False:
                self.rep.problems.append(f"{prefix}{p}: property removed while additionalProperties is false "
                                         "(old data carrying it is rejected)")
            else:
                self.rep.notes.append(f"{prefix}{p}: optional property removed")
        for p in sorted(set(pn) - set(po)):
            if p not in rn:
                self.rep.notes.append(f"{prefix}{p}: optional property added")
        for p in sorted(set(po) & set(pn)):
            self.node(po[p], pn[p], prefix + p, seen)
        if n.get("additionalProperties") is False and o.get("additionalProperties") is not False:
            self.rep.problems.append(f"{path or '(root)'}: additionalProperties closed (old data may carry "
                                     "properties the new schema rejects)")

    def array(self, o: Any, n: Any, path: str, seen: frozenset[Any]) -> None:
        if isinstance(o, dict) and isinstance(n, dict) and isinstance(n.get("items"), dict):
            self.node(o.get("items", {}), n["items"], f"{path}[]", seen)


def _fmt(s: set[str]) -> str:
    return "{" + ", ".join(sorted(s)) + "}"


# -- the lock --------------------------------------------------------------------------------
def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def schema_files(schemas_dir: str | Path) -> list[Path]:
    d = Path(schemas_dir)
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix in SCHEMA_SUFFIXES
                  and p.name != LOCK_FILE.name)


def read_lock(lock_path: str | Path) -> dict[str, dict[str, Any]]:
    p = Path(lock_path)
    if not p.exists():
        return {}
    return dict(json.loads(p.read_text()).get("schemas", {}))


def write_lock(lock_path: str | Path, entries: dict[str, dict[str, Any]]) -> None:
    doc = {"comment": "sha256 of every pinned schema file. Never edit a pinned file: add <family>_v<N+1> and "
                      "a new contract input, then `python -m contracts.compat --pin`. \"breaking\": true allows "
                      "that version to break backward compatibility with the previous one.",
           "schemas": {k: entries[k] for k in sorted(entries)}}
    Path(lock_path).write_text(json.dumps(doc, indent=2) + "\n")


def pin(schemas_dir: str | Path = SCHEMAS_DIR, lock_path: str | Path = LOCK_FILE) -> list[str]:
    """Add the schema files missing from the lock; pinned entries are never changed. Returns the added names."""
    lock = read_lock(lock_path)
    added = [p.name for p in schema_files(schemas_dir) if p.name not in lock]
    for name in added:
        lock[name] = {"sha256": sha256_file(Path(schemas_dir) / name)}
    if added or not Path(lock_path).exists():
        write_lock(lock_path, lock)
    return added


def families(paths: list[Path]) -> dict[str, list[tuple[int, Path]]]:
    out: dict[str, list[tuple[int, Path]]] = {}
    for p in paths:
        m = VERSIONED.match(p.name)
        if m:
            out.setdefault(f"{m['family']}.{m['ext']}", []).append((int(m["version"]), p))
    return {k: sorted(v) for k, v in out.items()}


def version_pairs(paths: list[Path]) -> Iterator[tuple[Path, Path]]:
    """Consecutive present versions of each family: (v2, v3), (v3, v4), ..."""
    for versions in families(paths).values():
        for (_, a), (_, b) in zip(versions, versions[1:]):
            yield a, b


@dataclass
class ContractCheck:
    problems: list[str] = field(default_factory=list)
    pairs: list[CompatReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [r.render() for r in self.pairs]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        lines.append("schema lock and compatibility: " + ("ok" if self.ok else f"{len(self.problems)} problem(s)"))
        return "\n".join(lines)


def check_contract(schemas_dir: str | Path = SCHEMAS_DIR, lock_path: str | Path = LOCK_FILE,
                   contract_paths: list[str | Path] | None = None) -> ContractCheck:
    """The CI gate on schemas: pinned files unchanged, every file pinned, version pairs compatible."""
    result = ContractCheck()
    d = Path(schemas_dir)
    if not Path(lock_path).exists():
        result.problems.append(f"lock file {lock_path} is missing (create it with `python -m contracts.compat --pin`)")
    lock = read_lock(lock_path)
    for name, entry in sorted(lock.items()):
        p = d / name
        if not p.exists():
            result.problems.append(f"{name}: pinned in the lock but missing from {d}")
        elif sha256_file(p) != entry.get("sha256"):
            result.problems.append(f"{name}: changed in place (sha256 differs from the lock); a pinned schema "
                                   "never changes: add a new version file and a new contract input instead")
    files = schema_files(d)
    for p in files:
        if p.name not in lock:
            result.problems.append(f"{p.name}: not pinned in {Path(lock_path).name} "
                                   "(run `python -m contracts.compat --pin`)")
    for old, new in version_pairs(files):
        report = check_compat(old, new)
        report.old, report.new = old.name, new.name
        result.pairs.append(report)
        if not report.compatible and not lock.get(new.name, {}).get("breaking", False):
            result.problems.append(f"{new.name} is not backward compatible with {old.name} "
                                   f"({'; '.join(report.problems)}); mark it \"breaking\": true in the lock "
                                   "only if every consumer is migrated")
    paths = [DEFAULT_CONTRACT] if contract_paths is None else contract_paths
    for cp in paths:
        contract = load_contract(cp)
        for spec in contract.inputs:
            f = Path(contract.base_dir) / spec.schema_file
            if f.resolve().parent == d.resolve() and f.name not in lock:
                result.problems.append(f"{contract.name} input {spec.citation} uses {spec.schema_file}, "
                                       "which is not pinned")
            elif not f.exists():
                result.problems.append(f"{contract.name} input {spec.citation}: {spec.schema_file} does not exist")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m contracts.compat", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", nargs="?", help="schema the data was written with")
    ap.add_argument("new", nargs="?", help="schema the reader uses")
    ap.add_argument("--check", action="store_true", help="check the lock and every version pair")
    ap.add_argument("--pin", action="store_true", help="add unpinned schema files to the lock")
    ap.add_argument("--schemas", default=str(SCHEMAS_DIR))
    ap.add_argument("--lock", default=str(LOCK_FILE))
    a = ap.parse_args(argv)
    if a.pin:
        added = pin(a.schemas, a.lock)
        print("pinned: " + (", ".join(added) or "nothing new"))
        return 0
    if a.check:
        result = check_contract(a.schemas, a.lock)
        print(result.render())
        return 0 if result.ok else 1
    if not (a.old and a.new):
        ap.error("give OLD and NEW, or --check, or --pin")
    report = check_compat(a.old, a.new)
    print(report.render())
    return 0 if report.compatible else 1


if __name__ == "__main__":
    sys.exit(main())
