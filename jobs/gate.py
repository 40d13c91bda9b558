"""The contract gate: allowlist, pinned schemas, PII, sensitivity, and data that is data. Pure logic.

Every record gets exactly one `GateResult`: pass (a governed envelope), no_action (a Debezium
tombstone) or dlq (a reason code, an error and a copy of what arrived, none of them holding a
raw PII value). Nothing the gate passes can hold a value it did not check: strings are Unicode
text with no PII (ids, the record key and free text are searched, contracts.pii), integers fit
in 64 bits, amounts in 15 integer and 6 fraction digits, event times lie between 0 and the
contract's skew ahead of the wall clock. Positions come from the reader (a file's line number,
a Kafka partition and offset), never from the record.

Two ways to the same verdicts: `Gate(contract)` runs the compiled path (jobs.fast_path for the
common Debezium shape, fastjsonschema for the rest); `Gate(contract, validation="reference")`
runs the interpretive jsonschema oracle the tests hold the compiled path to.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Literal

import fastavro
import fastavro.validation
from msgspec import UNSET
from pydantic import ValidationError

from contracts.contract import Contract, InputSpec
from contracts.models import Breach, Envelope
from contracts.outcomes import Reason
from contracts.pii import safe_text
from contracts.records import Position
from jobs.fast_path import FastPath, Unsupported, amount_in_bounds
from jobs.json_input import MAX_LINE_BYTES, Rejected, check_data, decode_utf8, parse_object
from jobs.kafka_records import envelope_from_kafka, header_text, pinned_schema, schema_of
from jobs.schema_check import CompiledSchema, ReferenceSchema, SchemaCheck

REQUIRED_ENVELOPE_FIELDS = ("topic", "key", "ts_ms", "schema", "payload")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
AMOUNT_FIELD = "amount"
Validation = Literal["compiled", "reference"]


@dataclass(slots=True)
class GateResult:
    """One record's verdict (treat as immutable); `tombstone` marks a Debezium tombstone's no_action."""

    outcome: Literal["pass", "no_action", "dlq"]
    position: Position
    envelope: Envelope | None = None
    reason: Reason | None = None
    error: str | None = None
    masked: Any = None
    tombstone: bool = False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class Gate:
    """Checks one record against the contract; built once per operator instance."""

    def __init__(self, contract: Contract, validation: Validation = "compiled",
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000), fast_path: bool = True) -> None:
        self.contract = contract
        self.gov = contract.governance
        self.pii = contract.pii
        self.validation = validation
        self._clock_ms = clock_ms
        self._ceiling = self.gov.sensitivity_rank(self.gov.sensitivity_ceiling)
        allowed = [s for s in self.gov.sensitivity_levels if self.gov.sensitivity_rank(s) <= self._ceiling]
        self._schemas: dict[str, dict[str, Any]] = {}
        self._checks: dict[str, SchemaCheck] = {}
        self._avro: dict[str, Any] = {}
        self._fast: list[FastPath] = []
        self._allowed = frozenset(allowed)
        self._key_hint = self.pii.hint_for(None)
        for spec in contract.inputs:
            schema = contract.load_schema(spec)
            self._schemas[spec.citation] = schema
            if spec.format == "avro":
                self._avro[spec.citation] = fastavro.parse_schema(schema)
                continue
            self._checks[spec.citation] = (CompiledSchema if validation == "compiled" else ReferenceSchema)(schema)
            if validation == "compiled" and fast_path:
                try:
                    self._fast.append(FastPath(spec.topic, spec.schema_version, schema, allowed, self.pii,
                                               frozenset(self.gov.pii_fields), AMOUNT_FIELD))
                except Unsupported:
                    pass  # this schema has no fast path: the general one decides every record
        # Kafka mode: a topic's fast path applies to the version the contract pins for it when unlabelled
        self._fast_by_topic = {f.topic: f for f in self._fast
                               if pinned_schema(contract, f.topic) == f.schema_version}

    # -- entry points --------------------------------------------------------------------
    def check(self, line: str | bytes, offset: int, partition: int = 0) -> GateResult:
        """Check one JSON Lines envelope at the reader's position (file mode: partition 0, line number)."""
        try:
            text = self._text(line)
            if self._fast:
                max_ts = self._max_ts_ms()
                for fast in self._fast:
                    passed = fast.try_envelope(text, max_ts)
                    if passed is not None:
                        return self._fast_result(passed[0], passed[1], partition, offset)
            obj = parse_object(text)
        except Rejected as r:
            return self._dlq(self._lenient_position(line, partition, offset), r, self._mask_raw(line))
        return self._check_envelope(obj, partition, offset)

    def _lenient_position(self, line: str | bytes, partition: int, offset: int) -> Position:
        """Where a record the gate could not take came from: its topic, key, ts and schema when it is JSON
        at all (parsed again, leniently: duplicate keys, lone surrogates and depth allowed), else none."""
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError, TypeError):
            obj = None
        if not isinstance(obj, dict):
            return Position(None, partition, offset)
        return self._position(obj, partition, offset)

    def check_kafka(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                    ts_ms: int, headers: dict[str, bytes] | None) -> GateResult:
        """Check a Kafka record: key and value bytes, the contract's schema from the `schema` header (else
        the one it pins for the topic), event time from the source (jobs.runtime.kafka_io)."""
        fast = self._fast_by_topic.get(topic)
        if fast is not None and value is not None and key is not None and len(value) <= MAX_LINE_BYTES:
            h = header_text(headers)
            sens = h.get("sensitivity") or None
            if schema_of(self.contract, topic, h) == fast.schema_version and (
                    sens is None or sens in self._allowed) and 0 <= ts_ms <= self._max_ts_ms():
                try:
                    text_key = key.decode("utf-8")
                except UnicodeDecodeError:
                    text_key = None
                if text_key is not None and not (self._key_hint is not None and self._key_hint(text_key)):
                    payload = fast.try_payload(value)
                    if payload is not None:
                        env = Envelope(topic, partition, offset, text_key, ts_ms, fast.schema_version, sens, payload)
                        return GateResult("pass", Position(topic, partition, offset, text_key, ts_ms,
                                                           fast.schema_version), envelope=env)
        try:
            obj = envelope_from_kafka(self.contract, topic, partition, offset, key, value, ts_ms, headers)
        except Rejected as r:
            text_key = None if key is None else key.decode("utf-8", errors="replace")
            return self._dlq(self._safe_position(Position(topic, partition, offset, text_key, ts_ms, None)), r,
                             self._mask_raw(value or b""))
        return self._check_envelope(obj, partition, offset)

    def check_object(self, obj: dict[str, Any], offset: int, partition: int = 0) -> GateResult:
        """Check an envelope that is already decoded (Kafka mode builds it from key, value and headers)."""
        try:
            check_data(obj)
        except Rejected as r:
            return self._dlq(self._position(obj, partition, offset), r, self.pii.mask_value(obj))
        return self._check_envelope(obj, partition, offset)

    def malformed(self, raw: str | bytes, pos: Position, error: str, reason: Reason = Reason.MALFORMED_JSON
                  ) -> GateResult:
        """A record whose value cannot be decoded at all (Kafka mode): DLQ with the masked raw text."""
        return self._dlq(self._safe_position(pos), Rejected(reason, error), self._mask_raw(raw))

    # -- steps -----------------------------------------------------------------------------
    @staticmethod
    def _text(line: str | bytes) -> str:
        if isinstance(line, bytes):
            return decode_utf8(line)
        if len(line) > MAX_LINE_BYTES:
            raise Rejected(Reason.INVALID_ENVELOPE, f"record of {len(line)} chars exceeds {MAX_LINE_BYTES}")
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                raise Rejected(Reason.INVALID_TEXT, "the line holds a lone UTF-16 surrogate, not Unicode text") \
                    from None
        return line

    def beyond_future_skew(self, ts_ms: int) -> bool:
        return ts_ms > self._max_ts_ms()

    def _max_ts_ms(self) -> int:
        skew = self.gov.max_future_skew_ms
        return min(INT64_MAX, self._clock_ms() + skew) if skew else INT64_MAX

    @staticmethod
    def _fast_result(e: Any, payload: dict[str, Any] | None, partition: int, offset: int) -> GateResult:
        sens = None if e.sensitivity is UNSET else e.sensitivity
        env = Envelope(e.topic, partition, offset, e.key, e.ts_ms, e.schema, sens, payload)
        pos = Position(e.topic, partition, offset, e.key, e.ts_ms, e.schema)
        if payload is None:
            return GateResult("no_action", pos, envelope=env, tombstone=True)
        return GateResult("pass", pos, envelope=env)

    def _check_envelope(self, obj: dict[str, Any], partition: int, offset: int) -> GateResult:
        pos = self._position(obj, partition, offset)
        try:
            env = self._envelope(obj, partition, offset)
            spec = self.contract.input_for(env.topic, env.schema_version)
            if spec is None:
                raise Rejected(Reason.NOT_ALLOWLISTED,
                               f"{env.citation} is not an input of contract {self.contract.name}")
            self._check_sensitivity(env)
            self._check_ts(env.ts_ms)
            if env.key is not None and (kind := self.pii.find(env.key)):
                raise Rejected(Reason.PII_NOT_TOKENIZED, f"the record key holds PII ({kind}; masked)")
            pos = Position(env.topic, partition, offset, env.key, env.ts_ms, env.schema_version)
            if env.payload is None:
                if spec.format == "debezium-json":
                    return GateResult("no_action", pos, envelope=env, tombstone=True)
                raise Rejected(Reason.SCHEMA_VIOLATION, f"{spec.citation} payload must not be null")
            if spec.format == "avro":
                payload = self._govern_avro(env, spec)
            else:
                payload = self._govern_debezium(env.payload, spec)
            return GateResult("pass", pos, envelope=Envelope(env.topic, partition, offset, env.key, env.ts_ms,
                                                             env.schema_version, env.sensitivity, payload))
        except Rejected as r:
            return self._dlq(pos, r, self.pii.mask_value(obj))
        except Exception as e:  # noqa: BLE001 - the gate must never crash the job
            return self._dlq(pos, Rejected(Reason.INVALID_ENVELOPE,
                                           f"unexpected {type(e).__name__} while checking the envelope"),
                             self.pii.mask_value(obj))

    def _position(self, obj: dict[str, Any], partition: int, offset: int) -> Position:
        """Where a rejected record came from, with only checked, masked values from it."""
        def text(name: str) -> str | None:
            v = obj.get(name)
            return v if isinstance(v, str) else None

        ts = obj.get("ts_ms")
        return self._safe_position(Position(text("topic"), partition, offset, text("key"),
                                            ts if _is_int(ts) else None, text("schema")))

    def _safe_position(self, pos: Position) -> Position:
        def mask(v: str | None) -> str | None:
            return None if v is None else self.pii.mask_text(safe_text(v[:1024]))

        ts = pos.ts_ms if pos.ts_ms is not None and INT64_MIN <= pos.ts_ms <= INT64_MAX else None
        return Position(mask(pos.topic), pos.partition, pos.offset, mask(pos.key), ts, mask(pos.schema))

    def _envelope(self, obj: dict[str, Any], partition: int, offset: int) -> Envelope:
        missing = [f for f in REQUIRED_ENVELOPE_FIELDS if f not in obj]
        if missing:
            raise Rejected(Reason.MISSING_FIELD, f"envelope lacks field(s): {', '.join(missing)}")
        for name in ("topic", "schema"):
            if not isinstance(obj[name], str):
                raise Rejected(Reason.INVALID_ENVELOPE, f"envelope field '{name}' must be str")
        if not _is_int(obj["ts_ms"]):
            raise Rejected(Reason.INVALID_ENVELOPE, "envelope field 'ts_ms' must be int")
        if obj["key"] is not None and not isinstance(obj["key"], str):
            raise Rejected(Reason.INVALID_ENVELOPE, "envelope field 'key' must be a string (compact JSON text)")
        if obj["payload"] is not None and not isinstance(obj["payload"], dict):
            raise Rejected(Reason.INVALID_ENVELOPE, "envelope field 'payload' must be an object or null")
        for name in ("partition", "offset"):  # checked like any field, but the reader's position stands
            v = obj.get(name)
            if v is not None and (not _is_int(v) or not 0 <= v <= INT64_MAX):
                raise Rejected(Reason.INVALID_ENVELOPE, f"envelope field '{name}' must be a non-negative integer")
        sens = obj.get("sensitivity")
        if sens is not None and sens not in self.gov.sensitivity_levels:
            raise Rejected(Reason.INVALID_ENVELOPE,
                           f"unknown sensitivity label; expected one of {', '.join(self.gov.sensitivity_levels)}")
        ws = obj.get("writer_schema")
        if ws is not None and not isinstance(ws, dict):
            raise Rejected(Reason.INVALID_ENVELOPE, "envelope field 'writer_schema' must be an object")
        return Envelope(obj["topic"], partition, offset, obj["key"], obj["ts_ms"], obj["schema"], sens,
                        obj["payload"], ws)

    def _check_sensitivity(self, env: Envelope) -> None:
        label = env.sensitivity or self.gov.default_sensitivity
        if self.gov.sensitivity_rank(label) > self._ceiling:
            raise Rejected(Reason.SENSITIVITY_ABOVE_CEILING,
                           f"sensitivity {label} is above the ceiling {self.gov.sensitivity_ceiling}")

    def _check_ts(self, ts: int) -> None:
        if not 0 <= ts <= INT64_MAX:
            raise Rejected(Reason.TS_OUT_OF_RANGE, "envelope field 'ts_ms' must be within 0 and 2^63-1")
        if ts > self._max_ts_ms():
            raise Rejected(Reason.TS_OUT_OF_RANGE, f"event time more than {self.gov.max_future_skew_ms} ms ahead "
                                                   "of the wall clock; it would move the watermark past later records")

    def _govern_avro(self, env: Envelope, spec: InputSpec) -> dict[str, Any]:
        assert env.payload is not None
        schema = self._schemas[spec.citation]
        known = {f["name"] for f in schema["fields"]}
        if env.writer_schema is not None:
            required = [f.get("name") for f in env.writer_schema.get("fields", [])
                        if isinstance(f, dict) and "default" not in f]
            unknown = sorted(str(n) for n in required if n not in known)
            if unknown:
                raise Rejected(Reason.UNKNOWN_REQUIRED_FIELD,
                               f"writer schema requires field(s) unknown to {spec.schema_ref}: {', '.join(unknown)}")
        record = {k: _decimals_as_text(v) for k, v in env.payload.items() if k in known}  # unknown ones stripped
        for f in schema["fields"]:
            if f["name"] not in record and "default" in f:
                record[f["name"]] = f["default"]
        try:
            fastavro.validation.validate(record, self._avro[spec.citation], raise_errors=True)
        except fastavro.validation.ValidationError as e:
            names = sorted({str(err.field) for err in e.errors})
            raise Rejected(Reason.SCHEMA_VIOLATION,
                           f"payload does not match {spec.schema_ref}: field(s) {', '.join(names)}") from None
        try:
            Breach.model_validate(record)
        except ValidationError as e:
            fields_ = sorted({".".join(str(p) for p in err["loc"]) for err in e.errors()})
            raise Rejected(Reason.SCHEMA_VIOLATION, f"payload breaks {spec.schema_ref}: {', '.join(fields_)}") from None
        self._check_no_pii(record, "")
        return record

    def _govern_debezium(self, payload: dict[str, Any], spec: InputSpec) -> dict[str, Any]:
        schema = self._schemas[spec.citation]
        if set(payload) == {"schema", "payload"} and isinstance(payload["payload"], dict):
            self._check_connect_schema(payload["schema"], schema, spec)
            payload = payload["payload"]
        failures = self._checks[spec.citation].failures(payload)
        if failures:
            raise Rejected(Reason.SCHEMA_VIOLATION, f"payload breaks {spec.schema_ref}: {'; '.join(failures)}")
        images = [img for img in ("before", "after") if isinstance(payload.get(img), dict)]
        for img in images:
            amount = payload[img].get(AMOUNT_FIELD)
            if amount is not None and not isinstance(amount, str) and not amount_in_bounds(amount):
                raise Rejected(Reason.NUMBER_OUT_OF_RANGE,
                               f"{img}.{AMOUNT_FIELD} has more than 15 integer or 6 fraction digits")
        pii = self.gov.pii_fields
        bad = sorted({f"{img}.{f}" for img in images for f in pii
                      if payload[img].get(f) is not None and not self.pii.is_token(payload[img][f])})
        if bad:
            raise Rejected(Reason.PII_NOT_TOKENIZED, f"PII field(s) not tokenized: {', '.join(bad)} (values masked)")
        row_props = schema["$defs"]["row"]["properties"]
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
        self._check_numbers(out, "")
        self._check_no_pii(out, "")
        return out

    def _check_numbers(self, value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._check_numbers(v, f"{path}.{k}" if path else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._check_numbers(v, f"{path}.{i}")
        elif _is_int(value) and not INT64_MIN <= value <= INT64_MAX:
            raise Rejected(Reason.NUMBER_OUT_OF_RANGE, f"{path} is an integer beyond 64 bits")

    def _check_no_pii(self, value: Any, path: str, name: str | None = None) -> None:
        """Every string that will pass, searched with the detectors of its field (contracts.pii)."""
        if isinstance(value, dict):
            for k, v in value.items():
                self._check_no_pii(v, f"{path}.{k}" if path else k, k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._check_no_pii(v, f"{path}.{i}", name)
        elif isinstance(value, str) and (kind := self.pii.find(value, self.pii.detectors_for(name))):
            raise Rejected(Reason.PII_NOT_TOKENIZED, f"{path} holds PII ({kind}; masked)")

    def _check_connect_schema(self, connect_schema: Any, schema: dict[str, Any], spec: InputSpec) -> None:
        """Fail closed on a Kafka Connect writer schema that requires a field the contract lacks."""
        if not isinstance(connect_schema, dict):
            raise Rejected(Reason.SCHEMA_VIOLATION, "Kafka Connect schema block must be an object")
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
            raise Rejected(Reason.UNKNOWN_REQUIRED_FIELD,
                           f"writer schema requires field(s) unknown to {spec.schema_ref}: {', '.join(sorted(set(unknown)))}")

    # -- results -----------------------------------------------------------------------------
    def _dlq(self, pos: Position, r: Rejected, masked: Any) -> GateResult:
        return GateResult("dlq", pos, reason=r.reason, error=self.pii.mask_text(r.error), masked=masked)

    def _mask_raw(self, raw: str | bytes) -> str:
        if isinstance(raw, bytes):
            raw = raw[: MAX_LINE_BYTES].decode("utf-8", errors="replace")
        return self.pii.mask_raw_text(safe_text(raw))


def _decimals_as_text(value: Any) -> Any:
    """JSON numbers with a fraction arrive as Decimal; the Avro record's string fields take their text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_decimals_as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _decimals_as_text(v) for k, v in value.items()}
    return value
