"""The contract gate: allowlist, pinned schemas, PII, sensitivity. Pure logic, no Flink.

Every line gets exactly one `GateResult`: pass (a governed envelope), no_action
(a Debezium tombstone) or dlq (a reason code, an error without raw values, and
a masked copy of what arrived).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import fastavro
import fastavro.validation
import jsonschema
from pydantic import ValidationError

from contracts.contract import Contract, InputSpec
from contracts.models import Breach, Envelope
from contracts.outcomes import Reason
from contracts.pii import mask_pii, mask_raw_text
from contracts.records import Position

REQUIRED_ENVELOPE_FIELDS = ("topic", "key", "ts_ms", "schema", "payload")
MAX_LINE_BYTES = 1 << 20
MAX_DEPTH = 32


@dataclass(frozen=True)
class GateResult:
    outcome: Literal["pass", "no_action", "dlq"]
    position: Position
    envelope: Envelope | None = None
    reason: Reason | None = None
    error: str | None = None
    masked: Any = None
    facts: dict[str, Any] = field(default_factory=dict)


class _Reject(Exception):
    def __init__(self, reason: Reason, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


class Gate:
    """Checks one raw line against the contract; built once per operator instance."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.gov = contract.governance
        self._ceiling = self.gov.sensitivity_rank(self.gov.sensitivity_ceiling)
        self._schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, Any] = {}
        for spec in contract.inputs:
            schema = contract.load_schema(spec)
            self._schemas[spec.citation] = schema
            if spec.format == "avro":
                self._validators[spec.citation] = fastavro.parse_schema(schema)
            else:
                self._validators[spec.citation] = jsonschema.Draft202012Validator(schema)

    # -- entry point -------------------------------------------------------
    def check(self, line: str | bytes, offset: int, partition: int = 0) -> GateResult:
        """Check one JSON Lines envelope (file mode)."""
        pos = Position(None, partition, offset)
        try:
            obj = self._parse(line)
        except _Reject as r:
            return GateResult("dlq", pos, reason=r.reason, error=r.error, masked=self._mask(line))
        return self.check_object(obj, offset, partition)

    def check_object(self, obj: dict[str, Any], offset: int, partition: int = 0) -> GateResult:
        """Check an envelope that is already decoded (Kafka mode builds it from key, value and headers)."""
        pos = Position(None, partition, offset)
        try:
            pos = self._position(obj, pos)
            env = self._envelope(obj, pos)
            pos = Position(env.topic, env.partition, env.offset, env.key, env.ts_ms, env.schema_version)
            spec = self.contract.input_for(env.topic, env.schema_version)
            if spec is None:
                raise _Reject(Reason.NOT_ALLOWLISTED, f"{env.citation} is not an input of contract {self.contract.name}")
            self._check_sensitivity(env)
            if env.payload is None:
                if spec.format == "debezium-json":
                    return GateResult("no_action", pos, envelope=env, facts={"tombstone": True})
                raise _Reject(Reason.SCHEMA_VIOLATION, f"{spec.citation} payload must not be null")
            governed = self._govern(env, spec)
            return GateResult("pass", pos, envelope=governed)
        except _Reject as r:
            return GateResult("dlq", pos, reason=r.reason, error=r.error, masked=self._mask(obj))
        except Exception as e:  # noqa: BLE001 - the gate must never crash the job
            return GateResult("dlq", pos, reason=Reason.INVALID_ENVELOPE,
                              error=f"unexpected {type(e).__name__} while checking the envelope",
                              masked=self._mask(obj))

    def malformed(self, raw: str | bytes, pos: Position, error: str) -> GateResult:
        """A record whose value cannot be decoded at all (Kafka mode): DLQ with the masked raw text."""
        return GateResult("dlq", pos, reason=Reason.MALFORMED_JSON, error=error, masked=self._mask(raw))

    # -- steps ---------------------------------------------------------------
    def _parse(self, line: str | bytes) -> Any:
        if isinstance(line, bytes):
            if len(line) > MAX_LINE_BYTES:
                raise _Reject(Reason.INVALID_ENVELOPE, f"record of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _Reject(Reason.MALFORMED_JSON, f"not UTF-8 text at byte {e.start}") from None
        if len(line) > MAX_LINE_BYTES:
            raise _Reject(Reason.INVALID_ENVELOPE, f"record of {len(line)} chars exceeds {MAX_LINE_BYTES}")
        if "\ufffd" in line:
            raise _Reject(Reason.MALFORMED_JSON, "not UTF-8 text (replacement character found)")
        try:
            obj = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
        except RecursionError:
            raise _Reject(Reason.MALFORMED_JSON, "JSON nested too deeply") from None
        except ValueError as e:
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "invalid JSON"
            col = f" at column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
            raise _Reject(Reason.MALFORMED_JSON, f"not valid JSON: {msg}{col}") from None
        if not isinstance(obj, dict):
            raise _Reject(Reason.NOT_AN_OBJECT, f"envelope is a JSON {type(obj).__name__}, not an object")
        if _depth(obj, MAX_DEPTH) > MAX_DEPTH:
            raise _Reject(Reason.INVALID_ENVELOPE, f"envelope nested deeper than {MAX_DEPTH} levels")
        return obj

    @staticmethod
    def _position(obj: dict[str, Any], pos: Position) -> Position:
        def opt(name: str, typ: type) -> Any:
            v = obj.get(name)
            return v if isinstance(v, typ) and not isinstance(v, bool) else None

        return Position(opt("topic", str), opt("partition", int) or pos.partition,
                        opt("offset", int) if opt("offset", int) is not None else pos.offset,
                        opt("key", str), opt("ts_ms", int), opt("schema", str))

    def _envelope(self, obj: dict[str, Any], pos: Position) -> Envelope:
        missing = [f for f in REQUIRED_ENVELOPE_FIELDS if f not in obj]
        if missing:
            raise _Reject(Reason.MISSING_FIELD, f"envelope lacks field(s): {', '.join(missing)}")
        checks = {"topic": str, "schema": str, "ts_ms": int}
        for name, typ in checks.items():
            if not isinstance(obj[name], typ) or isinstance(obj[name], bool):
                raise _Reject(Reason.INVALID_ENVELOPE, f"envelope field '{name}' must be {typ.__name__}")
        if obj["key"] is not None and not isinstance(obj["key"], str):
            raise _Reject(Reason.INVALID_ENVELOPE, "envelope field 'key' must be a string (compact JSON text)")
        if obj["payload"] is not None and not isinstance(obj["payload"], dict):
            raise _Reject(Reason.INVALID_ENVELOPE, "envelope field 'payload' must be an object or null")
        for name in ("partition", "offset"):
            v = obj.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise _Reject(Reason.INVALID_ENVELOPE, f"envelope field '{name}' must be a non-negative integer")
        if obj["ts_ms"] < 0:
            raise _Reject(Reason.INVALID_ENVELOPE, "envelope field 'ts_ms' must be non-negative")
        sens = obj.get("sensitivity")
        if sens is not None and sens not in self.gov.sensitivity_levels:
            raise _Reject(Reason.INVALID_ENVELOPE,
                          f"unknown sensitivity label; expected one of {', '.join(self.gov.sensitivity_levels)}")
        ws = obj.get("writer_schema")
        if ws is not None and not isinstance(ws, dict):
            raise _Reject(Reason.INVALID_ENVELOPE, "envelope field 'writer_schema' must be an object")
        fields = {k: obj.get(k) for k in ("topic", "partition", "offset", "key", "ts_ms", "schema",
                                          "sensitivity", "payload", "writer_schema") if k in obj}
        if fields.get("partition") is None:
            fields["partition"] = pos.partition
        if fields.get("offset") is None:
            fields["offset"] = pos.offset
        return Envelope.model_validate(fields)

    def _check_sensitivity(self, env: Envelope) -> None:
        label = env.sensitivity or self.gov.default_sensitivity
        if self.gov.sensitivity_rank(label) > self._ceiling:
            raise _Reject(Reason.SENSITIVITY_ABOVE_CEILING,
                          f"sensitivity {label} is above the ceiling {self.gov.sensitivity_ceiling}")

    def _govern(self, env: Envelope, spec: InputSpec) -> Envelope:
        assert env.payload is not None
        if spec.format == "avro":
            payload = self._govern_avro(env, spec)
        else:
            payload = self._govern_debezium(env, spec)
        return env.model_copy(update={"payload": payload, "writer_schema": None})

    def _govern_avro(self, env: Envelope, spec: InputSpec) -> dict[str, Any]:
        schema = self._schemas[spec.citation]
        known = {f["name"] for f in schema["fields"]}
        if env.writer_schema is not None:
            required = [f.get("name") for f in env.writer_schema.get("fields", [])
                        if isinstance(f, dict) and "default" not in f]
            unknown = sorted(str(n) for n in required if n not in known)
            if unknown:
                raise _Reject(Reason.UNKNOWN_REQUIRED_FIELD,
                              f"writer schema requires field(s) unknown to {spec.schema_ref}: {', '.join(unknown)}")
        record = {k: v for k, v in env.payload.items() if k in known}  # unknown optional fields stripped
        record = json.loads(json.dumps(record, default=str))
        for f in schema["fields"]:
            if f["name"] not in record and "default" in f:
                record[f["name"]] = f["default"]
        try:
            fastavro.validation.validate(record, self._validators[spec.citation], raise_errors=True)
        except fastavro.validation.ValidationError as e:
            names = sorted({str(err.field) for err in e.errors})
            raise _Reject(Reason.SCHEMA_VIOLATION, f"payload does not match {spec.schema_ref}: field(s) {', '.join(names)}") from None
        try:
            Breach.model_validate(record)
        except ValidationError as e:
            fields_ = sorted({".".join(str(p) for p in err["loc"]) for err in e.errors()})
            raise _Reject(Reason.SCHEMA_VIOLATION, f"payload breaks {spec.schema_ref}: {', '.join(fields_)}") from None
        return record

    def _govern_debezium(self, env: Envelope, spec: InputSpec) -> dict[str, Any]:
        schema = self._schemas[spec.citation]
        payload = env.payload
        assert payload is not None
        if set(payload) == {"schema", "payload"} and isinstance(payload["payload"], dict):
            self._check_connect_schema(payload["schema"], schema, spec)
            payload = payload["payload"]
        validator = self._validators[spec.citation]
        errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        if errors:
            where = [("/".join(str(p) for p in e.absolute_path) or "(payload)") + f" fails '{e.validator}'"
                     for e in errors[:5]]
            raise _Reject(Reason.SCHEMA_VIOLATION, f"payload breaks {spec.schema_ref}: {'; '.join(where)}")
        row_props = schema["$defs"]["row"]["properties"]
        pii = self.gov.pii_fields
        bad = sorted({f"{img}.{f}" for img in ("before", "after") if isinstance(payload.get(img), dict)
                      for f in pii if payload[img].get(f) is not None
                      and not (isinstance(payload[img][f], str) and self.contract.token_regex.fullmatch(payload[img][f]))})
        if bad:
            raise _Reject(Reason.PII_NOT_TOKENIZED, f"PII field(s) not tokenized: {', '.join(bad)} (values masked)")
        top_props = schema["properties"]
        src_props = top_props["source"]["properties"]
        out: dict[str, Any] = {}
        for k, v in payload.items():
            if k not in top_props:
                continue
            if k in ("before", "after") and isinstance(v, dict):
                v = {f: x for f, x in v.items() if f in row_props and f not in pii}
            elif k == "source":
                v = {f: x for f, x in v.items() if f in src_props}
            out[k] = v
        return out

    def _check_connect_schema(self, connect_schema: Any, schema: dict[str, Any], spec: InputSpec) -> None:
        """Fail closed on a Kafka Connect writer schema that requires a field the contract lacks."""
        if not isinstance(connect_schema, dict):
            raise _Reject(Reason.SCHEMA_VIOLATION, "Kafka Connect schema block must be an object")
        row_known = set(schema["$defs"]["row"]["properties"])
        top_known = set(schema["properties"]) | {"transaction"}
        src_known = set(schema["properties"]["source"]["properties"]) | {
            "version", "name", "ts_us", "ts_ns", "sequence", "xmin", "snapshot"}
        unknown: list[str] = []
        for f in connect_schema.get("fields", []) or []:
            if not isinstance(f, dict):
                continue
            name = f.get("field")
            if name not in top_known and f.get("optional") is False:
                unknown.append(str(name))
            known_inner = row_known if name in ("before", "after") else src_known if name == "source" else None
            if known_inner is not None:
                for inner in f.get("fields", []) or []:
                    if isinstance(inner, dict) and inner.get("optional") is False and inner.get("field") not in known_inner:
                        unknown.append(f"{name}.{inner.get('field')}")
        if unknown:
            raise _Reject(Reason.UNKNOWN_REQUIRED_FIELD,
                          f"writer schema requires field(s) unknown to {spec.schema_ref}: {', '.join(sorted(set(unknown)))}")

    def _mask(self, raw: Any) -> Any:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        if isinstance(raw, str):
            return mask_raw_text(raw, self.gov.pii_fields)
        return mask_pii(json.loads(json.dumps(raw, default=str)), self.gov.pii_fields, self.contract.token_regex)
