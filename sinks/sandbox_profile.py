"""How the sandbox APIs behave like real ones: latency (fixed + jitter) and a request rate limit per API.
Pure logic, so what a request suffers is testable without a server.

An API is the first path segment of an endpoint: `tickets` (ticketing), `payments`
(payment holds), `messages` (messaging). Real tools answer in 50-500 ms and cap
request rates; a sink that is fast against a zero-latency, unlimited sandbox tells
nothing about production.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

APIS = ("tickets", "payments", "messages")


def api_of(endpoint: str) -> str:
    return endpoint.strip("/").split("/", 1)[0]


@dataclass(frozen=True)
class Latency:
    """`fixed_ms` plus a uniform jitter in [-jitter_ms, +jitter_ms], never below zero."""

    fixed_ms: float = 0.0
    jitter_ms: float = 0.0

    def sample_s(self, rng: random.Random) -> float:
        if not self.fixed_ms and not self.jitter_ms:
            return 0.0
        return max(0.0, self.fixed_ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000.0

    @classmethod
    def parse(cls, text: str) -> Latency:
        """`MS` or `MS:JITTER_MS`."""
        fixed, _, jitter = text.partition(":")
        return cls(float(fixed), float(jitter or 0))


class TokenBucket:
    """`rate_per_s` requests per second on average, bursts of up to `burst`."""

    def __init__(self, rate_per_s: float, burst: float | None = None) -> None:
        if rate_per_s <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s / 10)
        self.tokens = self.burst
        self.at: float | None = None

    def admit(self, now: float) -> float:
        """0.0 and take a token when one is there, else the seconds until one will be (nothing taken)."""
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class Profile:
    latency: Latency = field(default_factory=Latency)            # every API unless overridden
    api_latency: dict[str, Latency] = field(default_factory=dict)
    rate_limits: dict[str, float] = field(default_factory=dict)  # API -> requests per second
    burst: float | None = None

    def latency_of(self, endpoint: str) -> Latency:
        return self.api_latency.get(api_of(endpoint), self.latency)

    def buckets(self) -> dict[str, TokenBucket]:
        return {api: TokenBucket(rate, self.burst) for api, rate in self.rate_limits.items()}


def parse_assignments(items: list[str], what: str) -> dict[str, str]:
    """`API=VALUE` command-line items; unknown APIs are refused so a typo cannot configure nothing."""
    out: dict[str, str] = {}
    for item in items:
        api, sep, value = item.partition("=")
        if not sep or api not in APIS:
            raise ValueError(f"{what} must look like API=VALUE with API one of {', '.join(APIS)}: {item!r}")
        out[api] = value
    return out
