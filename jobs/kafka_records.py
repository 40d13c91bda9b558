"""Kafka records <-> envelopes and output records, for Kafka mode. Pure logic, no Flink.

A Kafka record becomes the same envelope a file line holds: topic, partition,
offset, key (text), ts_ms (Debezium `source.ts_ms`, capped by the record
timestamp), schema (header `schema`, else the version the contract pins for
the topic), sensitivity (header), payload (JSON value, Avro for the breach
topic, None for a tombstone).
"""
from __future__ import annotations

import io
import json
from typing import Any

import fastavro

from contracts.avro import encode_breach, parsed_schema
from contracts.contract import Contract
from contracts.models import Breach
from contracts.outcomes import Reason
from jobs.json_input import Rejected, decode_utf8, parse_json

ORIGIN_HEADER = "origin"
ORIGIN = "streaming-agent"
MAX_VALUE_BYTES = 1 << 20

OUTPUT_TOPICS = {
    "breaches": "risk.order_threshold_breach",
    "dlq": "ops.agent_dlq",
    "traces": "agent.traces",
    "shadow": "agent.shadow",
    "actions": "agent.actions",
    "receipts": "agent.receipts",
    "responses": "agent.responses",
}


def header_text(headers: dict[str, bytes] | None) -> dict[str, str]:
    """Headers as text; a header that is not UTF-8 is kept with replacement characters (it is only ever
    compared with the contract's labels and versions, never passed on)."""
    return {k: v.decode("utf-8", errors="replace") for k, v in (headers or {}).items() if v is not None}


def pinned_schema(contract: Contract, topic: str) -> str | None:
    versions = [i.schema_version for i in contract.inputs if i.topic == topic]
    return versions[-1] if versions else None


def schema_of(contract: Contract, topic: str, headers: dict[str, str]) -> str:
    """The schema version of a record: its `schema` header, else the one the contract pins for the topic."""
    return headers.get("schema") or pinned_schema(contract, topic) or "unknown"


def envelope_from_kafka(contract: Contract, topic: str, partition: int, offset: int, key: bytes | None,
                        value: bytes | None, ts_ms: int, headers: dict[str, bytes] | None) -> dict[str, Any]:
    """The envelope of a Kafka record, for the gate's general path; Rejected when the key or value cannot
    be decoded (not UTF-8, not JSON or not Avro of the pinned schema, duplicate keys, ...)."""
    h = header_text(headers)
    if key is not None:
        try:
            text_key: str | None = key.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Rejected(Reason.INVALID_TEXT, f"record key is not UTF-8 text at byte {e.start}") from None
    else:
        text_key = None
    env: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset, "key": text_key,
                           "ts_ms": ts_ms, "schema": schema_of(contract, topic, h)}
    if h.get("sensitivity"):
        env["sensitivity"] = h["sensitivity"]
    if value is None:
        env["payload"] = None
        return env
    if len(value) > MAX_VALUE_BYTES:
        raise Rejected(Reason.INVALID_ENVELOPE, f"record value of {len(value)} bytes exceeds {MAX_VALUE_BYTES}")
    spec = contract.input_for(topic, env["schema"])
    if spec is not None and spec.format == "avro":
        try:
            env["payload"] = fastavro.schemaless_reader(io.BytesIO(value), parsed_schema(), parsed_schema())
        except Exception as e:  # noqa: BLE001 - any decoding failure is a DLQ record
            raise Rejected(Reason.MALFORMED_JSON, f"value is not Avro of {spec.schema_ref}: {type(e).__name__}") \
                from None
        return env
    env["payload"] = parse_json(decode_utf8(value))
    return env


def output_record(kind: str, record: dict[str, Any]) -> tuple[str, str | None, bytes, int | None]:
    """(topic, key, value bytes, record timestamp ms) of an output record in Kafka mode."""
    topic = OUTPUT_TOPICS[kind]
    if kind == "breaches":
        b = Breach.model_validate(record)
        return topic, b.account_id, encode_breach(b), b.ts_ms
    key = record.get("idempotency_key") or (record.get("source") or {}).get("topic")
    if kind == "actions":
        key = record.get("account_id") or key
    ts = record.get("ts_ms") if isinstance(record.get("ts_ms"), int) else None
    return topic, key, json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode(), ts
