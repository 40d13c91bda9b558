"""Fault injection for the sandbox's HTTP layer. Pure logic, so what a request suffers is predictable.

Counters (`*_next`) are consumed by tool requests in order of arrival; `fail_paths`
and `latency_ms` apply to every matching request until changed. Unknown keys are
rejected so that a typo in a test fails loudly instead of injecting nothing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class FaultPlan:
    """What happens to one request."""

    delay_before_ms: int = 0   # sleep before the work (a slow server; past the client timeout = timeout)
    delay_after_ms: int = 0    # sleep after the work committed (a slow answer to done work)
    fail_status: int = 0       # answer with this status, no work
    drop_before: bool = False  # close the connection, no work
    drop_after: bool = False   # do the work, then close without answering (a lost response)


@dataclass
class Faults:
    latency_ms: int = 0                                       # every request, before the work
    fail_next: int = 0                                        # the next N requests answer fail_status
    fail_status: int = 500
    drop_next: int = 0                                        # the next N requests are dropped before work
    drop_after_next: int = 0                                  # the next N requests are dropped after work
    slow_next: int = 0                                        # the next N requests take slow_ms more
    slow_ms: int = 0
    slow_after_work: bool = False                             # slow_next sleeps after the work, not before
    fail_paths: dict[str, int] = field(default_factory=dict)  # "/path" or "/prefix*" -> status, always

    def update(self, data: dict[str, Any]) -> None:
        """Apply a `POST /_faults` body; `{"reset": true}` clears everything first."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name for f in fields(self)}
        unknown = set(data) - known - {"reset"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        if data.get("reset"):
            for f in fields(self):
                setattr(self, f.name, getattr(Faults(), f.name))
        for k, v in data.items():
            if k == "fail_paths":
                if not isinstance(v, dict):
                    raise ValueError("fail_paths must map paths to statuses")
                self.fail_paths = {str(p): int(s) for p, s in v.items()}
            elif k != "reset":
                kind = type(getattr(Faults(), k))
                if not isinstance(v, (int, float, bool)):
                    raise ValueError(f"{k} must be a number or a boolean")
                setattr(self, k, kind(v))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _forced(self, path: str) -> int:
        for pattern, status in self.fail_paths.items():
            if path == pattern or (pattern.endswith("*") and path.startswith(pattern[:-1])):
                return int(status)
        return 0

    def take(self, path: str) -> FaultPlan:
        """Decide (and consume counters for) one tool request to `path`."""
        forced = self._forced(path)
        if forced:
            return FaultPlan(delay_before_ms=self.latency_ms, fail_status=forced)
        if self.fail_next > 0:
            self.fail_next -= 1
            return FaultPlan(delay_before_ms=self.latency_ms, fail_status=self.fail_status)
        if self.drop_next > 0:
            self.drop_next -= 1
            return FaultPlan(delay_before_ms=self.latency_ms, drop_before=True)
        before, after = self.latency_ms, 0
        if self.slow_next > 0:
            self.slow_next -= 1
            if self.slow_after_work:
                after = self.slow_ms
            else:
                before += self.slow_ms
        drop_after = self.drop_after_next > 0
        if drop_after:
            self.drop_after_next -= 1
        return FaultPlan(delay_before_ms=before, delay_after_ms=after, drop_after=drop_after)
