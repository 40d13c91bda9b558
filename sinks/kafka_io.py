"""Kafka adapters for the sink loop (kafka-python): a read_committed consumer and a producer.

Offsets are committed by hand, after the outputs are flushed, never automatically.
"""
from __future__ import annotations

import json
import sys
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata, TopicPartition

from sinks.record_handler import Message


class KafkaSource:
    def __init__(self, bootstrap_servers: str, topic: str, group_id: str, **config: Any) -> None:
        # a short session: a crashed sink's partitions move to its replacement in ~10 s, not 45
        settings: dict[str, Any] = {"session_timeout_ms": 10000, "heartbeat_interval_ms": 3000, **config}
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="earliest", **settings)

    def assigned(self) -> bool:
        return bool(self.consumer.assignment())

    def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        if max_records < 1:
            return []
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        msgs = [Message(r.topic, r.partition, r.offset, r.value) for rs in batches.values() for r in rs]
        return sorted(msgs, key=lambda m: (m.topic, m.partition, m.offset))

    def lag(self) -> int:
        """Records in the assigned partitions not fetched yet (0 where the broker has not told us)."""
        total = 0
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None:
                total += max(0, high - self.consumer.position(tp))
        return total

    def commit(self, messages: list[Message]) -> None:
        nxt: dict[TopicPartition, int] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            nxt[tp] = max(nxt.get(tp, 0), m.offset + 1)
        try:
            self.consumer.commit({tp: OffsetAndMetadata(o, None, -1) for tp, o in nxt.items()})
        except CommitFailedError as e:
            # The group moved on without us (a broker restart, a long stall): on rejoining, positions
            # restart from the last committed offsets, so these records come again and the outbox
            # turns them into replays. Exiting here would only need a supervisor to do the same.
            print(json.dumps({"warning": "offset commit failed; the records will be redelivered",
                              "error": type(e).__name__}), file=sys.stderr, flush=True)

    def close(self) -> None:
        self.consumer.close(autocommit=False)


class KafkaOutput:
    def __init__(self, bootstrap_servers: str, **config: Any) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
            key_serializer=lambda k: k.encode() if k is not None else None,
            value_serializer=lambda v: json.dumps(v, separators=(",", ":")).encode(), **config)
        self._pending: list[Any] = []

    def send(self, topic: str, key: str | None, value: dict[str, Any]) -> None:
        self._pending.append(self.producer.send(topic, key=key, value=value))

    def flush(self) -> None:
        self.producer.flush()
        pending, self._pending = self._pending, []
        for fut in pending:
            if fut.failed():
                raise RuntimeError(f"output send failed: {fut.exception}")

    def close(self) -> None:
        self.producer.close()
