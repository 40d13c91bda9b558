"""Per-account action limit over a sliding 60 s of event time. Pure logic.

Plans are admitted whole or not at all (no half-executed plans), and calls come
in event-time order, so a replay of the same input decides exactly the same.
"""
from __future__ import annotations

WINDOW_MS = 60_000


def admit(accepted_ts: list[int], ts_ms: int, n_actions: int, limit: int,
          window_ms: int = WINDOW_MS) -> tuple[bool, list[int]]:
    """Admit `n_actions` at `ts_ms` if the window (ts - window, ts] then holds at most `limit`.

    Returns the decision and the pruned list of accepted action times to store.
    """
    live = [t for t in accepted_ts if t > ts_ms - window_ms]
    if n_actions == 0 or len(live) + n_actions <= limit:
        return True, live + [ts_ms] * n_actions
    return False, live
