"""Turns a plan's execution into output records: actions, receipts, response, DLQ, trace.

Only what this execution settled produces action, receipt and DLQ records
(`fresh`, `new_receipt`); a replay produces its trace and response alone, so
each receipt is emitted once however often a plan is re-run.
"""
from __future__ import annotations

from typing import Any

from contracts import records
from contracts.models import AgentResponse
from contracts.outcomes import Outcome, Reason
from contracts.records import Out, Position
from sinks.executor import PlanResult
from sinks.tools import COMPENSATION_PREFIX

_DLQ_REASON = {"failed": Reason.TOOL_FAILED, "compensated": Reason.COMPENSATED, "skipped": Reason.PLAN_ABORTED,
               "degraded": Reason.DEGRADED}


def plan_records(pos: Position, idempotency_key: str, response: AgentResponse, result: PlanResult,
                 envelope: dict[str, Any], contract_name: str, derived: bool = False) -> list[Out]:
    out: list[Out] = []
    for o in result.outcomes:
        if o.fresh and o.status != "replayed":
            out.append(records.action_record(o.action, o.status, pos, o.attempts, o.error))
        if o.new_receipt and o.receipt is not None:
            out.append(records.receipt_record(o.receipt, idempotency_key))
        if o.fresh and o.status == "compensated" and o.compensation is not None:
            out.append(records.receipt_record(o.compensation, COMPENSATION_PREFIX + idempotency_key))
        if o.fresh and o.status in _DLQ_REASON:
            out.append(records.dlq(pos, _DLQ_REASON[o.status], o.error or o.status, envelope, contract_name,
                                   idempotency_key=idempotency_key, action=o.action))
        elif o.fresh and o.error and o.status in ("executed", "replayed"):  # done, and could not be undone
            out.append(records.dlq(pos, Reason.TOOL_FAILED, o.error, envelope, contract_name,
                                   idempotency_key=idempotency_key, action=o.action))
    tokens = [r.token for r in result.receipts]
    if result.ok and not result.degraded_only:
        out.append(records.response_record(response.summary, response.actions, response.citations, tokens,
                                           idempotency_key))
    outcome, reason = _trace_outcome(result)
    executed: list[str] = [o.action.tool for o in result.outcomes if o.status in ("executed", "replayed")]
    out.append(records.trace(pos, outcome, idempotency_key, actions=executed, receipts=tokens,
                             reason=reason, derived=derived))
    return out


def _trace_outcome(result: PlanResult) -> tuple[Outcome, Reason | None]:
    if not result.ok:
        return Outcome.DLQ, Reason.TOOL_FAILED
    if result.all_replayed:
        return Outcome.DUPLICATE, None
    if result.degraded_only:
        return Outcome.DLQ, Reason.DEGRADED
    return Outcome.PROCESSED, None
