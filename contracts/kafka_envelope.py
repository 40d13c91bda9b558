"""An envelope as the Kafka record it stands for: what the scenario loader and DLQ replays produce.

key = the envelope key; value = the payload (schemaless Avro for an Avro input of the contract,
compact JSON otherwise, null for a tombstone); headers `schema`, `sensitivity`, `ts_ms`. The
record timestamp is left to the producer (produce time): stamping an old event time would let
time-based retention delete the record. The job reads event time from the header instead.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import fastavro

from contracts.contract import Contract


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    ts_ms: int | None = None  # the envelope's event time (also in the `ts_ms` header)


def to_json(value: Any) -> str:
    """Compact JSON; Decimals are written as the number text they were read from."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite number")
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + to_json(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def kafka_record(envelope: dict[str, Any], contract: Contract) -> KafkaRecord:
    """The record for one envelope. An Avro payload that does not fit its schema travels as JSON,
    so that the job rejects it with a reason instead of the producer failing."""
    spec = contract.input_for(envelope["topic"], str(envelope.get("schema")))
    payload = envelope.get("payload")
    value: bytes | None = None
    if payload is not None and spec is not None and spec.format == "avro":
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, fastavro.parse_schema(contract.load_schema(spec)),
                                       json.loads(to_json(payload)))
            value = buf.getvalue()
        except Exception:  # noqa: BLE001 - any mismatch: send JSON, the gate says why
            value = None
    if payload is not None and value is None:
        value = to_json(payload).encode("utf-8")
    headers = [(h, str(envelope[h]).encode()) for h in ("schema", "sensitivity", "ts_ms")
               if envelope.get(h) is not None]
    key = envelope.get("key")
    ts = envelope.get("ts_ms")
    return KafkaRecord(envelope["topic"], key.encode("utf-8") if isinstance(key, str) else None, value, headers,
                       ts if isinstance(ts, int) and not isinstance(ts, bool) else None)
