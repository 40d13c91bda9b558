"""Kafka adapters for the sink loop (kafka-python): a read_committed consumer and a producer.

Offsets are committed by hand, after the outputs are flushed, never automatically,
and only for partitions still assigned to us. While the sink has no room for more
records its partitions are paused, and polling goes on: the consumer stays in its
group however long the tools make it wait.
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
        """Up to `max_records` records; with no room (< 1), pause every partition and only keep the
        membership alive (a partition assigned meanwhile may still deliver a record: it is returned)."""
        if max_records < 1:
            self.consumer.pause(*self.consumer.assignment())
            max_records, timeout_ms = 1, 0
        elif self.consumer.paused():
            self.consumer.resume(*self.consumer.paused())
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

    def commit(self, points: dict[Any, int]) -> None:
        """Commit `(topic, partition) -> next offset to read` for the partitions we still own."""
        owned = self.consumer.assignment()
        offsets = {tp: OffsetAndMetadata(o, None, -1) for (topic, part), o in points.items()
                   if (tp := TopicPartition(topic, part)) in owned}
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
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
