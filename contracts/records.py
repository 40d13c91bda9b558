"""Builders of the output records (traces, DLQ, actions, receipts, responses). Pure logic.

Every record is a plain JSON-ready dict tagged with the file/topic it belongs
to, so file mode and Kafka mode write the same shapes.
"""
from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, NamedTuple

from contracts.models import Action, Envelope, ToolReceipt
from contracts.outcomes import Outcome, Reason

OUTPUT_FILES = ("breaches", "actions", "receipts", "responses", "dlq", "traces", "shadow")


class Position(NamedTuple):
    """Where a record came from; what traces and DLQ records cite. (A named tuple: one per record.)"""

    topic: str | None
    partition: int
    offset: int
    key: str | None = None
    ts_ms: int | None = None
    schema: str | None = None


Out = tuple[str, dict[str, Any]]


def now_ms() -> int:
    return int(time.time() * 1000)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: str(v) if isinstance(v, Decimal) else repr(v)))


def position_of(env: Envelope, derived: bool = False) -> Position:
    return Position(env.topic, -1 if derived else env.partition, -1 if derived else env.offset,
                    env.key, env.ts_ms, env.schema_version)


def trace(pos: Position, outcome: Outcome, idempotency_key: str | None = None, *,
          actions: list[str] | None = None, receipts: list[str] | None = None,
          reason: Reason | None = None, derived: bool = False) -> Out:
    rec: dict[str, Any] = {
        "topic": pos.topic, "partition": pos.partition, "offset": pos.offset, "key": pos.key,
        "ts_ms": pos.ts_ms, "schema": pos.schema, "idempotency_key": idempotency_key,
        "outcome": str(outcome), "actions": actions or [], "receipts": receipts or [],
        "lag_ms": (now_ms() - pos.ts_ms) if pos.ts_ms is not None else None,
    }
    if reason is not None:
        rec["reason"] = str(reason)
    if derived:
        rec["derived"] = True
    return "traces", rec


def dlq(pos: Position, reason: Reason, error: str, envelope: Any, contract_name: str, *,
        idempotency_key: str | None = None, action: Action | None = None) -> Out:
    rec: dict[str, Any] = {
        "reason": str(reason), "error": error, "envelope": _plain(envelope),
        "source": {"topic": pos.topic, "partition": pos.partition, "offset": pos.offset},
        "contract": contract_name, "at_ms": now_ms(),
    }
    if idempotency_key:
        rec["idempotency_key"] = idempotency_key
    if action is not None:
        rec["action"] = action.model_dump(mode="json")
    return "dlq", rec


def action_record(action: Action, status: str, pos: Position, attempts: int = 0, error: str | None = None) -> Out:
    rec = {**action.model_dump(mode="json"), "status": status, "attempts": attempts,
           "source": {"topic": pos.topic, "partition": pos.partition, "offset": pos.offset}}
    if error:
        rec["error"] = error
    return "actions", rec


def receipt_record(receipt: ToolReceipt, idempotency_key: str) -> Out:
    return "receipts", {**receipt.model_dump(mode="json"), "idempotency_key": idempotency_key}


def response_record(summary: str, actions: list[Action], citations: list[str], receipts: list[str],
                    idempotency_key: str) -> Out:
    return "responses", {"summary": summary, "actions": [a.model_dump(mode="json") for a in actions],
                         "citations": citations, "receipts": receipts, "idempotency_key": idempotency_key}


def governed_envelope(env: Envelope) -> dict[str, Any]:
    """The governed (PII-free) envelope as JSON, for DLQ records of later stages."""
    return _plain(env.to_json_dict())


def action_request(pos: Position, idempotency_key: str, account_id: str, summary: str, actions: list[Action],
                   citations: list[str], envelope: dict[str, Any], derived: bool) -> Out:
    """What the job hands to the standalone sink on `agent.actions` (Kafka mode)."""
    return "actions", {
        "idempotency_key": idempotency_key, "account_id": account_id, "derived": derived,
        "source": {"topic": pos.topic, "partition": pos.partition, "offset": pos.offset,
                   "key": pos.key, "ts_ms": pos.ts_ms, "schema": pos.schema},
        "response": {"summary": summary, "actions": [a.model_dump(mode="json") for a in actions],
                     "citations": citations},
        "envelope": envelope,
    }
