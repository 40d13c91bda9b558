"""Masking of PII in anything that leaves the gate: DLQ copies, raw text, errors."""
from __future__ import annotations

import re
from typing import Any, Iterable

MASK = "***"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}")  # bounded: no quadratic scans
_MAX_DEPTH = 64


def mask_pii(value: Any, pii_fields: Iterable[str], token: re.Pattern[str], _depth: int = 0) -> Any:
    """Copy of `value` where every PII field that is not a token, and every e-mail-like string, is `***`.

    Tokens are kept: they are what the application wrote in place of the value.
    """
    fields = frozenset(pii_fields)
    if _depth > _MAX_DEPTH:
        return MASK
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in fields and v is not None and not (isinstance(v, str) and token.fullmatch(v)):
                out[k] = MASK
            else:
                out[k] = mask_pii(v, fields, token, _depth + 1)
        return out
    if isinstance(value, list):
        return [mask_pii(v, fields, token, _depth + 1) for v in value]
    if isinstance(value, str):
        return _EMAIL.sub(MASK, value)
    return value


def mask_raw_text(text: str, pii_fields: Iterable[str], limit: int = 4096) -> str:
    """Mask an unparsable line: `"email": "..."`-style pairs and e-mail-like strings; cut to `limit`."""
    out = text[: limit * 2]  # mask a bounded prefix; anything past `limit` is cut anyway
    for f in pii_fields:
        out = re.sub(r'("' + re.escape(f) + r'"\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}\]\s]+)', r'\1"' + MASK + '"', out)
    out = _EMAIL.sub(MASK, out)
    if len(out) > limit:
        out = out[:limit] + f"...[{len(text) - limit} more chars]"
    return out
