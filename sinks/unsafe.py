"""TEST-ONLY, UNSAFE: a sink with its idempotency switched off, so the chaos harness can prove it catches
duplicates. Never set `AGENT_SINK_UNSAFE_NO_IDEMPOTENCY` in a deployment.

With it, `python -m sinks.action_sink` keeps its outbox in memory (a restart forgets every action it
did) and sends each tool call with a fresh `Idempotency-Key` (`<key>:unsafe-<random>`), so the tool
executes a redelivered action again instead of replaying it.
"""
from __future__ import annotations

import os
import uuid
from typing import Any

from sinks.outbox import SqliteOutbox
from sinks.tools import ToolClient

ENV = "AGENT_SINK_UNSAFE_NO_IDEMPOTENCY"


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def forgetful_outbox() -> SqliteOutbox:
    """An outbox that lives and dies with the process."""
    return SqliteOutbox(":memory:")


class RekeyingClient:
    """Wraps a tool client and makes every call look new to the tool."""

    def __init__(self, inner: ToolClient) -> None:
        self.inner = inner

    async def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return await self.inner.post(endpoint, body, f"{idempotency_key}:unsafe-{uuid.uuid4().hex[:12]}")

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close:
            await close()
