"""Flink counters by name and label, created on first use (labels become metric groups)."""
from __future__ import annotations

from typing import Any


class Counters:
    def __init__(self, runtime_context: Any, group: str) -> None:
        self._group = runtime_context.get_metrics_group().add_group(group)
        self._counters: dict[tuple[str, str, str], Any] = {}

    def inc(self, name: str, label_key: str = "", label: str = "", n: int = 1) -> None:
        k = (name, label_key, label)
        c = self._counters.get(k)
        if c is None:
            g = self._group.add_group(label_key, label) if label_key else self._group
            c = self._counters[k] = g.counter(name)
        c.inc(n)
