"""Holds items until the watermark passes them, then releases them in event-time order.

Both keyed stages use it so that their decisions depend on the set of inputs,
not on arrival order. The Flink shell keeps the dict in keyed state.
"""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")
Buffer = dict[int, list[T]]


def add(buffer: Buffer[T], ts_ms: int, item: T) -> None:
    buffer.setdefault(ts_ms, []).append(item)


def earliest(buffer: Buffer[T]) -> int | None:
    return min(buffer) if buffer else None


def pop_ready(buffer: Buffer[T], watermark: int, tie_break: Callable[[T], object]) -> list[T]:
    """Remove and return the items at or below the watermark, by (ts, tie_break)."""
    ready_ts = sorted(ts for ts in buffer if ts <= watermark)
    out: list[T] = []
    for ts in ready_ts:
        out.extend(sorted(buffer.pop(ts), key=tie_break))
    return out
