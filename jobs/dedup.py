"""Dedup by idempotency key: the seam between the pure agent stage and durable state."""
from __future__ import annotations

from typing import Protocol


class DedupStore(Protocol):
    """What the agent stage needs of dedup state; Flink backs it with keyed MapState (TTL)."""

    def seen(self, idempotency_key: str) -> bool: ...

    def mark(self, idempotency_key: str, ts_ms: int) -> None: ...


class MemoryDedupStore:
    """A dict-backed store for tests and the single-process baseline."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}

    def seen(self, idempotency_key: str) -> bool:
        return idempotency_key in self.keys

    def mark(self, idempotency_key: str, ts_ms: int) -> None:
        self.keys.setdefault(idempotency_key, ts_ms)
