"""From raw bytes or text to a JSON object the gate can trust to be data. Pure logic, no Flink.

Every way a line can fail to be data becomes a `Rejected(reason, error)`, never an exception
further on: bytes that are not UTF-8, text that is not JSON, duplicate keys (a later
`"sensitivity"` must not silently override an earlier one), non-finite numbers, integers too long
to parse, nesting deeper than the limit, and strings that are not Unicode text (a lone UTF-16
surrogate, which only a `\\ud800` escape can produce: it cannot be encoded, so it would crash
whatever writes it later).
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from contracts.outcomes import Reason

MAX_LINE_BYTES = 1 << 20
MAX_DEPTH = 32
BOM = "\ufeff"


class Rejected(Exception):
    """Why a record is not an envelope the gate can pass: a DLQ reason and an error without raw values."""

    def __init__(self, reason: Reason, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


def decode_utf8(data: bytes) -> str:
    if len(data) > MAX_LINE_BYTES:
        raise Rejected(Reason.INVALID_ENVELOPE, f"record of {len(data)} bytes exceeds {MAX_LINE_BYTES}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Rejected(Reason.MALFORMED_JSON, f"not UTF-8 text at byte {e.start}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise Rejected(Reason.INVALID_ENVELOPE, f"duplicate key {json.dumps(dup)} in a JSON object")
    return d


def _reject_constant(name: str) -> Any:
    raise Rejected(Reason.MALFORMED_JSON, f"not valid JSON: non-finite number {name}")


def parse_object(text: str) -> dict[str, Any]:
    """The JSON object of `text` (floats as exact Decimal), checked to be data all the way down."""
    obj = parse_json(text)
    if not isinstance(obj, dict):
        raise Rejected(Reason.NOT_AN_OBJECT, f"envelope is a JSON {type(obj).__name__}, not an object")
    return obj


def parse_json(text: str) -> Any:
    """Any JSON value of `text` (floats as exact Decimal), checked to be data all the way down."""
    if len(text) > MAX_LINE_BYTES:
        raise Rejected(Reason.INVALID_ENVELOPE, f"record of {len(text)} chars exceeds {MAX_LINE_BYTES}")
    try:
        obj = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant,
                         object_pairs_hook=_no_duplicates)
    except Rejected:
        raise
    except RecursionError:
        raise Rejected(Reason.MALFORMED_JSON, "JSON nested too deeply") from None
    except json.JSONDecodeError as e:
        raise Rejected(Reason.MALFORMED_JSON, f"not valid JSON: {e.msg} at column {e.colno}") from None
    except ValueError:  # an integer longer than Python parses (sys.get_int_max_str_digits)
        raise Rejected(Reason.NUMBER_OUT_OF_RANGE, "an integer has too many digits") from None
    check_data(obj, may_hold_escapes="\\u" in text)
    return obj


def check_data(obj: Any, may_hold_escapes: bool = True) -> None:
    """Nesting within MAX_DEPTH, and every string and key Unicode text (no lone surrogate)."""
    stack = [(obj, 1)]
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            raise Rejected(Reason.INVALID_ENVELOPE, f"envelope nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, dict):
            for k, x in v.items():
                if may_hold_escapes:
                    _text(k)
                if isinstance(x, (dict, list)):
                    stack.append((x, d + 1))
                elif may_hold_escapes and isinstance(x, str):
                    _text(x)
        elif isinstance(v, list):
            for x in v:
                if isinstance(x, (dict, list)):
                    stack.append((x, d + 1))
                elif may_hold_escapes and isinstance(x, str):
                    _text(x)


def _text(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise Rejected(Reason.INVALID_TEXT, f"a string holds a lone UTF-16 surrogate (U+{ord(s[e.start]):04X}), "
                                            "not Unicode text") from None
