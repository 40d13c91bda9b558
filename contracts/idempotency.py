"""The idempotency key of an envelope: what identifies it through dedup, the outbox and the tools.

Version 2 (`idem2-`) hashes the fields length-prefixed, so no two different (topic, key, ts_ms)
triples share a key. The seed's formula, `"idem-" + sha256(topic + key + str(ts_ms))`, kept as
`legacy_idempotency_key`, concatenates them with no separator: key "ord-1" at 767225600000 and key
"ord-" at 1767225600000 hash the same text. A record without a key (null or empty) has no identity
of its own, so its governed payload joins the hash: two different orders without a key at the same
millisecond stay two, and a redelivery of the same one stays one.
"""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

PREFIX = "idem2-"
LEGACY_PREFIX = "idem-"


def _field(data: bytes | None) -> bytes:
    return b"\x00" if data is None else b"\x01" + len(data).to_bytes(8, "big") + data


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, decimals as their text: the same bytes for the same governed payload."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=lambda v: str(v) if isinstance(v, Decimal) else repr(v)).encode("utf-8")


def identity(topic: str, key: str | None, ts_ms: int, payload: Any = None) -> bytes:
    """What version 2 hashes: "idem2", then each field as a presence byte, an 8-byte length and its
    UTF-8 bytes: topic, key (null differs from empty), str(ts_ms), and the canonical JSON of the
    governed payload when the key is null or empty. A prefix-free encoding: two different inputs
    never give the same bytes."""
    parts = [b"idem2", _field(topic.encode("utf-8")), _field(None if key is None else key.encode("utf-8")),
             _field(str(ts_ms).encode("ascii"))]
    if not key:
        parts.append(_field(canonical_json(payload)))
    return b"".join(parts)


def idempotency_key(topic: str, key: str | None, ts_ms: int, payload: Any = None) -> str:
    """`idem2-` + sha256(identity(...)) in hex."""
    return PREFIX + hashlib.sha256(identity(topic, key, ts_ms, payload)).hexdigest()


def legacy_idempotency_key(topic: str, key: str | None, ts_ms: int) -> str:
    """The seed's formula (`idem-`), which outbox rows written before version 2 carry."""
    return LEGACY_PREFIX + hashlib.sha256((topic + (key or "") + str(ts_ms)).encode("utf-8")).hexdigest()
