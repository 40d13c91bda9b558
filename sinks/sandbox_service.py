"""The sandbox tools as a concurrent service: many requests in flight, each with the API's latency, under its
rate limit, with the IETF Idempotency-Key draft's answers. Shared by the HTTP server and the in-process client.

Order of checks for one request: a missing key is 400; over the API's rate is 429
(Retry-After); a key whose earlier request is still being processed is 409; then the
request waits its latency and runs (`SandboxTools.handle`: a completed key answers
with its stored response, the same key with another body is 422). The wait happens
before the work, so a request in progress has not committed anything yet, as with a
real tool whose processing ends in its commit; a client that gives up meanwhile does
not stop the work (aiohttp keeps running a handler whose client went away).
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Callable

from sinks.sandbox import KeyInProgress, MissingKey, RateLimited, SandboxTools
from sinks.sandbox_profile import Profile, api_of


class SandboxService:
    def __init__(self, tools: SandboxTools, profile: Profile | None = None, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tools = tools
        self.profile = profile or Profile()
        self.rng = rng or random.Random()
        self.clock = clock
        self.buckets = self.profile.buckets()
        self.in_progress: set[tuple[str, str]] = set()

    async def call(self, endpoint: str, body: dict[str, Any], idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        """(status, response) of one tool request; raises the sandbox's exceptions for 4xx answers."""
        if not idempotency_key:
            raise MissingKey("Idempotency-Key header is required")
        bucket = self.buckets.get(api_of(endpoint))
        if bucket is not None:
            wait = bucket.admit(self.clock())
            if wait > 0:
                raise RateLimited(wait)
        slot = (endpoint, idempotency_key)
        if slot in self.in_progress:
            raise KeyInProgress(f"a request with this key is still in progress on {endpoint}")
        self.in_progress.add(slot)
        try:
            delay = self.profile.latency_of(endpoint).sample_s(self.rng)
            if delay:
                await asyncio.sleep(delay)
            return self.tools.handle(endpoint, body, idempotency_key)
        finally:
            self.in_progress.discard(slot)
