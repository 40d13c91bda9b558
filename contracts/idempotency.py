"""The idempotency key of an envelope, exactly as the seed computes it."""
from __future__ import annotations

import hashlib


def idempotency_key(topic: str, key: str | None, ts_ms: int) -> str:
    """`"idem-" + sha256(topic + key + str(ts_ms))`; a null key hashes as ''."""
    digest = hashlib.sha256((topic + (key or "") + str(ts_ms)).encode("utf-8")).hexdigest()
    return "idem-" + digest
