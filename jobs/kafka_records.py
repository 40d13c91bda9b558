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
from decimal import Decimal
from typing import Any

import fastavro

from contracts.avro import encode_breach, parsed_schema
from contracts.contract import Contract
from contracts.models import Breach

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


def _text(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", errors="replace")


def pinned_schema(contract: Contract, topic: str) -> str | None:
    versions = [i.schema_version for i in contract.inputs if i.topic == topic]
    return versions[-1] if versions else None


def envelope_from_kafka(contract: Contract, topic: str, partition: int, offset: int, key: bytes | None,
                        value: bytes | None, ts_ms: int, headers: dict[str, bytes] | None
                        ) -> tuple[dict[str, Any] | None, str | None]:
    """(envelope object, None) or (None, why the value cannot be decoded)."""
    h = {k: _text(v) for k, v in (headers or {}).items()}
    env: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset, "key": _text(key),
                           "ts_ms": ts_ms, "schema": h.get("schema") or pinned_schema(contract, topic) or "unknown"}
    if h.get("sensitivity"):
        env["sensitivity"] = h["sensitivity"]
    if value is None:
        env["payload"] = None
        return env, None
    if len(value) > MAX_VALUE_BYTES:
        return None, f"record value of {len(value)} bytes exceeds {MAX_VALUE_BYTES}"
    spec = contract.input_for(topic, env["schema"])
    if spec is not None and spec.format == "avro":
        try:
            env["payload"] = fastavro.schemaless_reader(io.BytesIO(value), parsed_schema(), parsed_schema())
        except Exception as e:  # noqa: BLE001 - any decoding failure is a DLQ record
            return None, f"value is not Avro of {spec.schema_ref}: {type(e).__name__}"
        return env, None
    try:
        payload = json.loads(value.decode("utf-8"), parse_float=Decimal)
    except UnicodeDecodeError:
        return None, "value is not UTF-8 text"
    except (ValueError, RecursionError) as e:
        return None, f"value is not valid JSON: {type(e).__name__}"
    env["payload"] = payload
    return env, None


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
