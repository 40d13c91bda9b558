"""In-memory stand-ins for Kafka, for testing the sink loop and the record handler without a broker."""
from __future__ import annotations

import json
from collections import deque
from typing import Any

from contracts.contract import load_contract
from contracts.models import Action
from sinks.executor import ActionExecutor
from sinks.record_handler import Message, RecordHandler

TOPIC = "agent.actions"


def action_value(key: str, actions: list[Action], offset: int, derived: bool = False) -> bytes:
    """An agent.actions value as the job writes it."""
    env = {"topic": "cdc.public.orders", "partition": 0, "offset": offset, "key": f'{{"order_id":"{key}"}}',
           "ts_ms": 1767225600000 + offset, "schema": "v2", "payload": {"op": "c"}}
    return json.dumps({"idempotency_key": key,
                       "source": {"topic": "cdc.public.orders", "partition": 0, "offset": offset},
                       "response": {"summary": f"plan for {key}", "actions": [a.model_dump(mode="json") for a in actions],
                                    "citations": ["cdc.public.orders@v2"]},
                       "envelope": env, "derived": derived}).encode()


def handler(executor: ActionExecutor) -> RecordHandler:
    contract = load_contract()
    return RecordHandler(executor.runner, contract.name, frozenset(contract.output.tools))


class FakeOutput:
    def __init__(self) -> None:
        self.unflushed: list[tuple[str, str | None, dict[str, Any]]] = []
        self.flushed: list[tuple[str, str | None, dict[str, Any]]] = []

    def send(self, topic: str, key: str | None, value: dict[str, Any]) -> None:
        self.unflushed.append((topic, key, value))

    def flush(self) -> None:
        self.flushed += self.unflushed
        self.unflushed = []

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [v for t, _, v in self.flushed if t == topic]


class FakeSource:
    """Serves `messages` in order; committing past a record whose trace is not flushed is a test failure."""

    def __init__(self, messages: list[Message], output: FakeOutput) -> None:
        self.queue = deque(messages)
        self.output = output
        self.committed: dict[tuple[str, int], int] = {}
        self.fetched: list[Message] = []
        self.polls: list[int] = []  # max_records of every poll (< 1: pause and only stay in the group)

    @classmethod
    def of(cls, values: list[bytes], output: FakeOutput, first_offset: int = 0) -> FakeSource:
        return cls([Message(TOPIC, 0, first_offset + i, v) for i, v in enumerate(values)], output)

    def assigned(self) -> bool:
        return True

    def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        self.polls.append(max_records)
        got = [self.queue.popleft() for _ in range(min(max_records, len(self.queue)))]
        self.fetched += got
        return got

    def lag(self) -> int:
        return len(self.queue)

    def commit(self, points: dict[tuple[str, int], int]) -> None:
        traced = {t["idempotency_key"] for t in self.output.on("agent.traces")}
        for (topic, part), offset in points.items():
            below = [m for m in self.fetched if (m.topic, m.partition) == (topic, part) and m.offset < offset]
            assert all(json.loads(m.value)["idempotency_key"] in traced for m in below), \
                "offsets committed past a record whose outputs were not flushed"
        for tp, offset in points.items():
            assert offset >= self.committed.get(tp, 0), "a commit went backwards"
            self.committed[tp] = offset
