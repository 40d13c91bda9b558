"""Turns a plan's execution into output records: actions, receipts, response, DLQ, trace."""
from __future__ import annotations

from typing import Any

from contracts import records
from contracts.models import AgentResponse
from contracts.outcomes import Outcome, Reason
from contracts.records import Out, Position
from sinks.executor import PlanResult

_DLQ_REASON = {"failed": Reason.TOOL_FAILED, "compensated": Reason.COMPENSATED, "skipped": Reason.PLAN_ABORTED}


def plan_records(pos: Position, idempotency_key: str, response: AgentResponse, result: PlanResult,
                 envelope: dict[str, Any], contract_name: str, derived: bool = False) -> list[Out]:
    out: list[Out] = []
    for o in result.outcomes:
        if o.status != "replayed":
            out.append(records.action_record(o.action, o.status, pos, o.attempts, o.error))
        if o.status == "executed" and o.receipt is not None:
            out.append(records.receipt_record(o.receipt, idempotency_key))
        if o.compensation is not None and o.status == "compensated":
            out.append(records.receipt_record(o.compensation, "comp-" + idempotency_key))
        if o.status in _DLQ_REASON:
            out.append(records.dlq(pos, _DLQ_REASON[o.status], o.error or o.status, envelope, contract_name,
                                   idempotency_key=idempotency_key, action=o.action))
    tokens = [r.token for r in result.receipts]
    if result.ok:
        out.append(records.response_record(response.summary, response.actions, response.citations, tokens,
                                           idempotency_key))
    outcome = (Outcome.DUPLICATE if result.all_replayed else Outcome.PROCESSED) if result.ok else Outcome.DLQ
    reason = None if result.ok else Reason.TOOL_FAILED
    executed = [o.action.tool for o in result.outcomes if o.status in ("executed", "replayed")]
    out.append(records.trace(pos, outcome, idempotency_key, actions=executed, receipts=tokens,
                             reason=reason, derived=derived))
    return out
