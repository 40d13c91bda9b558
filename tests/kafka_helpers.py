"""Reading topics back in tests (read_committed, from the beginning)."""
from __future__ import annotations

import io
import json
import time
from typing import Any

import fastavro
from kafka import KafkaConsumer, TopicPartition

from contracts.avro import parsed_schema


def consume(bootstrap: str, topic: str, idle_ms: int = 3000, deadline_s: float = 60) -> list[Any]:
    """Committed records from the beginning up to the end offsets seen at the start.

    Stops at those offsets (a busy topic never goes idle), after `idle_ms` without a record
    (an open transaction can hold the readable end below them), or at the deadline.
    """
    c = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
                      isolation_level="read_committed", enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in (c.partitions_for_topic(topic) or [])]
        if not parts:
            return []
        c.assign(parts)
        c.seek_to_beginning(*parts)
        end = c.end_offsets(parts)
        out: list[Any] = []
        start = last = time.monotonic()
        while any(c.position(tp) < end[tp] for tp in parts):
            batch = c.poll(timeout_ms=500)
            now = time.monotonic()
            if batch:
                last = now
                for tp, msgs in batch.items():
                    out.extend(m for m in msgs if m.offset < end[tp])
            if now - last > idle_ms / 1000 or now - start > deadline_s:
                break
        return sorted(out, key=lambda m: (m.partition, m.offset))
    finally:
        c.close()


def consume_json(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in consume(bootstrap, topic) if m.value is not None]


def consume_breaches(bootstrap: str) -> list[dict[str, Any]]:
    out = []
    for m in consume(bootstrap, "risk.order_threshold_breach"):
        out.append(fastavro.schemaless_reader(io.BytesIO(m.value), parsed_schema(), parsed_schema()))
    return out
