"""The gate's fast path: typed msgspec structs generated from a pinned Debezium JSON Schema. Pure logic.

One C-level pass decodes and type-checks the common shape of an input: the envelope, the
Debezium change event with the schema's fields plus Debezium's own metadata fields, nothing else.
It answers with the governed envelope only when it is *sure*; whenever anything is unusual (an
unknown field, a failed type or length check, an escape that could hide a surrogate, a possible
duplicate key, a string with an at sign or a run of digits, a PII field that is no token, an
amount beyond its bounds, an event time out of range) it answers None and the general path of
the gate decides, with its reason. So the fast path can never change a verdict, only its cost,
and a differential test holds the two paths (and the interpretive oracle) to the same answers.

Duplicate keys: msgspec, like every fast JSON decoder, keeps the last of two equal keys. The
fast path counts colons instead. Outside strings, JSON has a colon after each key and nowhere
else, so the colons of the text are the keys plus the colons inside strings; with no `\\u`
escape in the text (which could write a colon as `\\u003a`) the decoded strings hold exactly
those. The structs saw every key (unknown fields fail the decoding), so a text with more colons
than keys-plus-string-colons held a key twice. Whitespace and other escapes change nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType, to_builtins

from contracts.pii import PiiRules
from jobs.schema_check import ecma_pattern

INT64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
NON_NEGATIVE_INT64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]
_JOIN = "\n\nA\n\n"  # joins strings searched at once: no hint spans it (a letter, more than 3 non-words)
_SHORTEST_PII = 6  # characters in the shortest string a PII hint can match ("a@b.fr")


class Unsupported(Exception):
    """The schema uses something the generator does not express: there is no fast path for it."""


# Debezium's own envelope and source fields, besides those the contract's schema names: typed as
# Debezium documents them, stripped by governance like any field the schema does not name.
DEBEZIUM_PAYLOAD_FIELDS: dict[str, Any] = {"ts_us": INT64, "ts_ns": INT64}
DEBEZIUM_SOURCE_FIELDS: dict[str, Any] = {"version": str, "name": str, "sequence": Union[str, None],
                                          "ts_us": INT64, "ts_ns": INT64, "xmin": Union[INT64, None]}
_Transaction = msgspec.defstruct("Transaction", [("id", str), ("total_order", INT64),
                                                 ("data_collection_order", INT64)], forbid_unknown_fields=True)


@dataclass
class _Shape:
    """What the generator knows of one struct class: its fields, which are optional, which governance keeps."""

    name: str
    fields: list[tuple[str, Any]]
    optional: frozenset[str]
    kept: frozenset[str]
    checks: dict[str, str]  # field -> Python expression over `v` a value must satisfy (not msgspec-typed)


class _Generator:
    """JSON Schema (objects, $ref into $defs, anyOf, string enums, typed scalars) -> msgspec structs."""

    _OBJECT_KEYS = {"type", "properties", "required", "title", "description", "$id", "$schema", "$defs"}

    def __init__(self, schema: dict[str, Any], extra: dict[str, dict[str, Any]],
                 drop: dict[str, frozenset[str]]) -> None:
        self.defs = schema.get("$defs", {})
        self.extra, self.drop = extra, drop
        self.shapes: dict[type, _Shape] = {
            _Transaction: _Shape("Transaction", [("id", str), ("total_order", INT64),
                                                 ("data_collection_order", INT64)], frozenset(), frozenset(), {})}
        self.by_name: dict[str, type] = {}
        self.namespace: dict[str, Any] = {}  # names the generated expressions use

    def struct(self, node: dict[str, Any], name: str) -> type:
        if name in self.by_name:
            return self.by_name[name]
        if node.get("type") != "object" or "properties" not in node or set(node) - self._OBJECT_KEYS:
            raise Unsupported(f"{name}: only objects with properties")
        required = set(node.get("required", []))
        fields: list[tuple[Any, ...]] = []
        checks: dict[str, str] = {}
        for field, sub in node["properties"].items():
            if not field.isidentifier():
                raise Unsupported(f"{name}.{field}: not an identifier")
            try:
                typ = self._type(sub, field.capitalize())
            except Unsupported:
                # Not expressible as a msgspec type (a JSON number must stay an exact Decimal): decoded as a
                # plain value and checked by a generated expression after decoding.
                checks[field] = self.check_expr(sub, "v")
                typ = Any
            fields.append((field, typ) if field in required else (field, Union[typ, UnsetType], UNSET))
        for field, typ in self.extra.get(name, {}).items():
            if field not in node["properties"]:
                fields.append((field, Union[typ, UnsetType], UNSET))
        cls = msgspec.defstruct(name, fields, forbid_unknown_fields=True, kw_only=True)
        kept = frozenset(node["properties"]) - self.drop.get(name, frozenset())
        self.shapes[cls] = _Shape(name, [(f[0], f[1]) for f in fields], frozenset(f[0] for f in fields if len(f) == 3),
                                  kept, checks)
        self.by_name[name] = cls
        return cls

    def _type(self, sub: dict[str, Any], name: str) -> Any:
        if "$ref" in sub:
            ref = sub["$ref"]
            if set(sub) != {"$ref"} or not ref.startswith("#/$defs/") or ref[8:] not in self.defs:
                raise Unsupported(ref)
            return self.struct(self.defs[ref[8:]], ref[8:].capitalize())
        if "properties" in sub:
            return self.struct(sub, name)
        if "anyOf" in sub:
            if set(sub) != {"anyOf"}:
                raise Unsupported("anyOf with siblings")
            return Union[tuple(self._type(s, name) for s in sub["anyOf"])]  # type: ignore[return-value]
        if "enum" in sub:
            if set(sub) != {"enum"} or not all(isinstance(v, str) for v in sub["enum"]):
                raise Unsupported("enum")
            return Literal[tuple(sub["enum"])]  # type: ignore[return-value]
        types = sub.get("type")
        if types is None or set(sub) - {"type", "minLength", "maxLength", "pattern"}:
            raise Unsupported(str(sorted(sub)))
        options = [self._scalar(t, sub) for t in (types if isinstance(types, list) else [types])]
        return Union[tuple(options)] if len(options) > 1 else options[0]  # type: ignore[return-value]

    @staticmethod
    def _scalar(t: str, sub: dict[str, Any]) -> Any:
        if t == "string":
            meta = {k: v for k, v in (("min_length", sub.get("minLength")), ("max_length", sub.get("maxLength")),
                                      ("pattern", ecma_pattern(sub["pattern"]) if "pattern" in sub else None))
                    if v is not None}
            return Annotated[str, Meta(**meta)] if meta else str
        if set(sub) - {"type"}:
            raise Unsupported(f"constraints on {t}")
        if t == "integer":
            return INT64  # wider integers are the general path's number_out_of_range
        if t == "boolean":
            return bool
        if t == "null":
            return None
        raise Unsupported(t)

    def check_expr(self, sub: dict[str, Any], var: str) -> str:
        """A Python expression true exactly when `var` (a JSON scalar) satisfies `sub`."""
        if set(sub) == {"anyOf"}:
            return "(" + " or ".join(self.check_expr(s, var) for s in sub["anyOf"]) + ")"
        if set(sub) - {"type", "minLength", "maxLength", "pattern"} or "type" not in sub:
            raise Unsupported(str(sorted(sub)))
        types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
        parts = []
        for t in types:
            if t == "string":
                cond = [f"{var}.__class__ is str"]
                if "minLength" in sub:
                    cond.append(f"len({var}) >= {int(sub['minLength'])}")
                if "maxLength" in sub:
                    cond.append(f"len({var}) <= {int(sub['maxLength'])}")
                if "pattern" in sub:
                    name = f"PATTERN_{len(self.namespace)}"
                    self.namespace[name] = re.compile(ecma_pattern(sub["pattern"])).search
                    cond.append(f"{name}({var}) is not None")
                parts.append("(" + " and ".join(cond) + ")")
            elif set(sub) - {"type"}:
                raise Unsupported(f"constraints on {t}")
            else:
                parts.append({"number": f"{var}.__class__ in (int, Decimal)", "integer": f"{var}.__class__ is int",
                              "boolean": f"{var}.__class__ is bool", "null": f"{var} is None"}[t])
        return "(" + " or ".join(parts) + ")"


def _string_expr(field: str, typ: Any, optional: bool) -> str:
    """An expression for the field's string value in `d`, or '' when it is absent or no string."""
    if _plain_str(typ) and not optional:
        return f"d[{field!r}]"
    if all(_plain_str(t) or t is UnsetType for t in _members(typ)):
        return f"d.get({field!r}, '')"
    return f"(v if (v := d.get({field!r})).__class__ is str else '')"


def _walker_source(cls: type, shape: _Shape, shapes: dict[type, _Shape], pii_fields: frozenset[str],
                   hints: dict[str, str], amount_field: str) -> str:
    """Python source of `walk_<Name>(d)` over the plain dict msgspec made of a decoded struct (absent
    fields omitted): the keys it and its nested objects hold plus the colons in their strings (see the
    module docstring), or -1 when unsure. On the way it strips what governance strips (PII fields,
    Debezium metadata), in place.

    The strings of one PII hint are joined and searched at once, then their colons counted; strings no
    hint applies to (metadata, exempt fields, fields too short to hold PII) are joined for the count."""
    groups: dict[str, list[str]] = {}  # hint name ("" for none) -> string expressions
    for f, typ in shape.fields:
        if not _may_be_str(typ):
            continue
        hint = hints.get(f, "") if f in shape.kept and _may_hold_pii(typ) else ""
        groups.setdefault(hint, []).append(_string_expr(f, typ, f in shape.optional))
    lines = [f"def walk_{shape.name}(d):", "    n = len(d)"]
    for hint, exprs in groups.items():
        lines.append(f"    j = {_JOIN!r}.join(({', '.join(exprs)},))")
        if hint:
            lines += [f"    if {hint}(j):", "        return -1"]
        lines.append("    n += j.count(':')")
    for field, typ in shape.fields:
        nested = [shapes[c].name for c in shapes if c in _members(typ)]
        body: list[str] = []
        if nested:
            body += ["if v.__class__ is dict:", f"    m = walk_{nested[0]}(v)", "    if m < 0:", "        return -1",
                     "    n += m"]
        if field in shape.checks:
            body += [f"if v.__class__ in (dict, list) or not {shape.checks[field]}:", "    return -1"]
        if field == amount_field and shape.name == "Row":
            body += ["if v.__class__ is not str and not AMOUNT_OK(v):", "    return -1"]
        if shape.name == "Row" and field in pii_fields:
            body += ["if v is not None and (v.__class__ is not str or TOKEN(v) is None):", "    return -1"]
        dropped = shape.kept and field not in shape.kept
        if not body:
            if dropped:
                lines.append(f"    d.pop({field!r}, None)")
            continue
        if dropped:
            lines.append(f"    v = d.pop({field!r}, None)")
        elif field in shape.optional:
            lines.append(f"    v = d.get({field!r})")
        else:
            lines.append(f"    v = d[{field!r}]")
        lines += ["    " + b for b in body]
    lines.append("    return n")
    return "\n".join(lines)


def _may_be_str(typ: Any) -> bool:
    """Whether a value of `typ` can be a string with a colon in it (a literal only if one of its values has)."""
    for t in _members(typ):
        if t is Any or t is str or getattr(t, "__origin__", None) is str:
            return True
        if getattr(t, "__origin__", None) is Literal and any(":" in str(a) for a in t.__args__):
            return True
    return False


def _plain_str(typ: Any) -> bool:
    return typ is str or (getattr(typ, "__origin__", None) is Annotated and typ.__origin__ is str) or \
        getattr(typ, "__metadata__", None) is not None and getattr(typ, "__origin__", None) is str


def _may_hold_pii(typ: Any) -> bool:
    """Whether a value of `typ` can be a string long enough for a PII hint to match."""
    for t in _members(typ):
        if t is Any or t is str:
            return True
        if getattr(t, "__origin__", None) is str:  # Annotated[str, Meta(...)]
            meta = t.__metadata__[0]
            return meta.max_length is None or meta.max_length >= _SHORTEST_PII
    return False


def _members(typ: Any) -> tuple[Any, ...]:
    args = getattr(typ, "__args__", None)
    return tuple(a for t in args for a in _members(t)) if args and getattr(typ, "__origin__", None) is Union \
        else (typ,)


class FastPath:
    """Built once per debezium-json input of the contract. The hot path: `try_envelope` (a file-mode line,
    envelope and payload) or `try_payload` (a Kafka record's value), each answering the governed
    payload when it is sure the record passes, else None (then the general path decides)."""

    def __init__(self, topic: str, schema_version: str, schema: dict[str, Any], allowed_sensitivities: list[str],
                 pii: PiiRules, pii_fields: frozenset[str], amount_field: str = "amount") -> None:
        if "source" not in schema.get("properties", {}) or "row" not in schema.get("$defs", {}):
            raise Unsupported("not a Debezium change event schema (properties.source, $defs.row)")
        gen = _Generator(schema, extra={"Payload": {**DEBEZIUM_PAYLOAD_FIELDS,
                                                    "transaction": Union[_Transaction, None]},
                                        "Source": DEBEZIUM_SOURCE_FIELDS},
                         drop={"Row": pii_fields})
        payload = gen.struct(schema, "Payload")
        envelope = msgspec.defstruct("Envelope", [
            ("topic", Literal[topic]), ("key", Union[str, None]), ("ts_ms", INT64),
            ("schema", Literal[schema_version]), ("payload", Union[payload, None]),
            ("partition", Union[NON_NEGATIVE_INT64, None, UnsetType], UNSET),
            ("offset", Union[NON_NEGATIVE_INT64, None, UnsetType], UNSET),
            ("sensitivity", Union[Literal[tuple(allowed_sensitivities)], UnsetType], UNSET)],  # type: ignore[misc]
            forbid_unknown_fields=True, kw_only=True)
        self._envelope_decoder = msgspec.json.Decoder(envelope, float_hook=Decimal)
        self._payload_decoder = msgspec.json.Decoder(payload, float_hook=Decimal)
        self._literal_colons = topic.count(":") + schema_version.count(":")
        ns: dict[str, Any] = {"UNSET": UNSET, "Decimal": Decimal, "AMOUNT_OK": amount_in_bounds,
                              "TOKEN": pii.token.fullmatch, **gen.namespace}
        hints: dict[str, str] = {}  # field -> name of its hint's test (one name per distinct test)
        names: dict[str, str] = {}
        for shape in gen.shapes.values():
            ns[shape.name] = next(c for c, s in gen.shapes.items() if s is shape)
            for field in shape.kept:
                h = pii.hint_for(field)
                if h is not None:
                    hints[field] = names.setdefault(h.__name__, f"HINT_{len(names)}")
                    ns[hints[field]] = h
        source = "\n\n".join(_walker_source(c, s, gen.shapes, pii_fields, hints, amount_field)
                              for c, s in gen.shapes.items())
        exec(compile(source, f"<fast path of {topic}@{schema_version}>", "exec"), ns)  # noqa: S102 - our own code
        self.source = source  # kept for reading and for tests
        self._walk = ns["walk_Payload"]
        self._key_hint = pii.hint_for(None)
        self.topic, self.schema_version = topic, schema_version

    def try_envelope(self, text: str, max_ts_ms: int) -> tuple[Any, dict[str, Any] | None] | None:
        """(the decoded envelope, its governed payload or None for a tombstone), or None when unsure."""
        if "\\u" in text:
            return None
        try:
            env = self._envelope_decoder.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        key = env.key
        if not 0 <= env.ts_ms <= max_ts_ms:
            return None
        n = 5 + (env.partition is not UNSET) + (env.offset is not UNSET) + (env.sensitivity is not UNSET) + \
            self._literal_colons
        if key is not None:
            if self._key_hint is not None and self._key_hint(key):
                return None
            n += key.count(":")
        governed = None
        if env.payload is not None:
            governed = to_builtins(env.payload, builtin_types=_DECIMAL)
            m = self._walk(governed)
            if m < 0:
                return None
            n += m
        if n != text.count(":"):
            return None  # a duplicate key
        return env, governed

    def try_payload(self, text: str | bytes) -> dict[str, Any] | None:
        """The governed payload of a Kafka record's value, or None when unsure."""
        if (b"\\u" if isinstance(text, bytes) else "\\u") in text:
            return None
        try:
            governed = to_builtins(self._payload_decoder.decode(text), builtin_types=_DECIMAL)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        n = self._walk(governed)
        if n < 0 or n != text.count(b":" if isinstance(text, bytes) else ":"):
            return None
        return governed


_DECIMAL = (Decimal,)


def amount_in_bounds(value: Any) -> bool:
    """A number amount within what the decimal-string form allows: 15 integer and 6 fraction digits."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return False
    d = Decimal(value)
    if not d.is_finite():
        return False
    sign, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    return exponent >= -6 and len(digits) + exponent <= 15
