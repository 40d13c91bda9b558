"""A circuit breaker per tool: stop calling a tool that keeps failing, probe it now and then. Pure logic.

Closed: calls go through; `failures_to_open` consecutive failures open it. Open:
no call for `open_s` seconds. Then half-open: one probe call at a time; its
success closes the circuit, its failure opens it again. A failure is what says
the tool is unwell (5xx, timeouts, dropped connections); any definite answer
(2xx, 4xx, 409 in progress) is a success; a 429 is neither and only frees the probe.
Waiting for a circuit spends none of an action's attempts, so a tool outage
delays actions instead of failing them.
"""
from __future__ import annotations

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, failures_to_open: int = 5, open_s: float = 2.0) -> None:
        if failures_to_open < 1 or open_s < 0:
            raise ValueError("failures_to_open must be >= 1 and open_s >= 0")
        self.failures_to_open = failures_to_open
        self.open_s = open_s
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False

    def wait_s(self, now: float) -> float:
        """Seconds until the open circuit may be probed (0 when a call may be tried now or soon)."""
        return max(0.0, self.opened_at + self.open_s - now) if self.state == OPEN else 0.0

    def try_enter(self, now: float) -> bool:
        """May a call start now? In half-open, True for one caller until its call ends."""
        if self.state == OPEN and self.wait_s(now) == 0.0:
            self.state = HALF_OPEN
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.state, self.failures, self.probing = CLOSED, 0, False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.failures_to_open):
            self.state, self.opened_at = OPEN, now
        self.probing = False

    def neutral(self) -> None:
        """The call ended without telling whether the tool is well (a 429)."""
        self.probing = False
