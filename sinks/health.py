"""Is the standalone sink healthy? Pure judgment over a snapshot of the loop, for `GET /health`.

`ok` (HTTP 200): partitions assigned (or still joining) and work finishing, or no
work waiting. `stalled` (503): records are pending and none has finished for
`stall_after_s` (a tool outage behind an open circuit, a stuck call, a dead
database). `degraded` (200): some tool's circuit is open or half-open but work
still finishes. The body always carries the figures the judgment used.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    now: float
    started: float
    assigned: bool
    pending_records: int
    pending_actions: int
    calls_in_flight: int
    consumer_lag: int
    last_progress: float         # 0.0: nothing finished yet
    last_commit: float
    circuits: dict[str, str] = field(default_factory=dict)


def judge(s: Snapshot, stall_after_s: float = 60.0) -> tuple[int, dict[str, Any]]:
    since = s.now - (s.last_progress or s.started)
    if s.pending_records and since > stall_after_s:
        status = "stalled"
    elif any(state != "closed" for state in s.circuits.values()):
        status = "degraded"
    else:
        status = "ok"
    body = {"status": status, **{k: v for k, v in asdict(s).items() if k not in ("now", "started", "last_progress",
                                                                               "last_commit")},
            "seconds_since_progress": round(since, 3),
            "seconds_since_commit": round(s.now - s.last_commit, 3) if s.last_commit else None}
    return (503 if status == "stalled" else 200), body
