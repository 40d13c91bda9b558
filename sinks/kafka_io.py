"""Kafka adapters for the sink loop (confluent-kafka, i.e. librdkafka): a read_committed consumer and a producer.

Offsets are committed by hand, after the outputs are flushed, never automatically,
and only for partitions still assigned to us. While the sink has no room for more
records its partitions are paused, and polling goes on: the consumer stays in its
group however long the tools make it wait.

Why librdkafka and not kafka-python (which the tests and tools still use to read
topics): at a thousand actions per second the sink sends about 2,500 output
records per second, and kafka-python spent 92 us of Python CPU on each against
8 us here (measured on this machine), a quarter of the sink's CPU per action.
Each adapter is used from one thread only (the sink loop's consumer and producer
threads).
"""
from __future__ import annotations

import json
import sys
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from sinks.record_handler import Message


def _warn(what: str, error: Any) -> None:
    print(json.dumps({"warning": what, "error": str(error)}), file=sys.stderr, flush=True)


class KafkaSource:
    def __init__(self, bootstrap_servers: str, topic: str, group_id: str, **config: Any) -> None:
        # a short session: a crashed sink's partitions move to its replacement in ~10 s, not 45
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers, "group.id": group_id, "enable.auto.commit": False,
            "isolation.level": "read_committed", "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 3000, "log_level": 3, **config}
        self.consumer = Consumer(settings)
        self.owned: set[tuple[str, int]] = set()
        self.paused = False
        self.consumer.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._revoked)

    def _assigned(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.owned |= {(tp.topic, tp.partition) for tp in partitions}
        self.paused = False  # a new assignment starts unpaused

    def _revoked(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.owned -= {(tp.topic, tp.partition) for tp in partitions}

    def assigned(self) -> bool:
        return bool(self.owned)

    def _tps(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.owned)]

    def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        """Up to `max_records` records; with no room (< 1), pause every partition and only keep the
        membership alive (a partition assigned meanwhile may still deliver a record: it is returned)."""
        if max_records < 1:
            if not self.paused and self.owned:
                self.consumer.pause(self._tps())
                self.paused = True
            max_records, timeout_ms = 1, 0
        elif self.paused:
            self.consumer.resume(self._tps())
            self.paused = False
        out = []
        for m in self.consumer.consume(num_messages=max_records, timeout=timeout_ms / 1000):
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                _warn("consumer error; retrying", err)
                continue
            out.append(Message(m.topic(), m.partition(), m.offset(), m.value()))
        return sorted(out, key=lambda m: (m.topic, m.partition, m.offset))

    def lag(self) -> int:
        """Records in the assigned partitions not fetched yet (from the watermarks the fetches brought)."""
        total = 0
        for tp in self.consumer.position(self._tps()) if self.owned else []:
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0 and tp.offset >= 0:
                total += max(0, high - tp.offset)
        return total

    def commit(self, points: dict[Any, int]) -> None:
        """Commit `(topic, partition) -> next offset to read` for the partitions we still own."""
        offsets = [TopicPartition(t, p, o) for (t, p), o in points.items() if (t, p) in self.owned]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            # The group moved on without us (a broker restart, a long stall): on rejoining, positions
            # restart from the last committed offsets, so these records come again and the outbox
            # turns them into replays. Exiting here would only need a supervisor to do the same.
            _warn("offset commit failed; the records will be redelivered", e)

    def close(self) -> None:
        self.consumer.close()


class KafkaOutput:
    def __init__(self, bootstrap_servers: str, **config: Any) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 5, "log_level": 3, **config})
        self._errors: list[str] = []

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def send(self, topic: str, key: str | None, value: dict[str, Any]) -> None:
        data = json.dumps(value, separators=(",", ":")).encode()
        while True:
            try:
                self.producer.produce(topic, key=key.encode() if key is not None else None, value=data,
                                      on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: let it drain
                self.producer.poll(0.05)
        self.producer.poll(0)

    def flush(self) -> None:
        """Every record sent so far is acknowledged, or this raises."""
        while self.producer.flush(5.0) > 0:
            _warn("output flush still waiting for the broker", "timeout")
        errors, self._errors = self._errors, []
        if errors:
            raise RuntimeError(f"output send failed: {errors[0]}")

    def close(self) -> None:
        self.producer.flush(10.0)
