"""Reading topics back in tests (read_committed, from the beginning)."""
from __future__ import annotations

import io
import json
from typing import Any

import fastavro
from kafka import KafkaConsumer

from contracts.avro import parsed_schema


def consume(bootstrap: str, topic: str, timeout_ms: int = 3000) -> list[Any]:
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
                      isolation_level="read_committed", consumer_timeout_ms=timeout_ms)
    try:
        return list(c)
    finally:
        c.close()


def consume_json(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in consume(bootstrap, topic) if m.value is not None]


def consume_breaches(bootstrap: str) -> list[dict[str, Any]]:
    out = []
    for m in consume(bootstrap, "risk.order_threshold_breach"):
        out.append(fastavro.schemaless_reader(io.BytesIO(m.value), parsed_schema(), parsed_schema()))
    return out
