"""Checks a proposed response against the output contract before any tool sees it. Pure logic."""
from __future__ import annotations

from typing import Any

from contracts.contract import Contract
from contracts.models import TOOL_ARGS, AgentResponse, Envelope


def identifiers(env: Envelope) -> tuple[set[str], set[str]]:
    """The order ids and account ids that occur in the envelope (the only ones a proposal may use)."""
    orders: set[str] = set()
    accounts: set[str] = set()
    p = env.payload or {}
    for img in (p.get("before"), p.get("after")):
        if isinstance(img, dict):
            orders.add(str(img.get("order_id")))
            accounts.add(str(img.get("account_id")))
    if "order_ids" in p:
        orders.update(str(o) for o in p.get("order_ids") or [])
        orders.add(str(p.get("order_id")))
        accounts.add(str(p.get("account_id")))
    return orders, accounts


def validate_response(resp: Any, env: Envelope, idempotency_key: str, contract: Contract) -> list[str]:
    """Every reason the response may not reach a tool; empty when it may."""
    try:
        r = resp if isinstance(resp, AgentResponse) else AgentResponse.model_validate(resp)
    except Exception as e:  # noqa: BLE001 - any shape error is a contract violation
        return [f"response does not match the output shape: {type(e).__name__}"]
    errors: list[str] = []
    words = len(r.summary.split())
    if words > contract.output.summary_max_words:
        errors.append(f"summary has {words} words, more than {contract.output.summary_max_words}")
    if r.citations != [env.citation]:
        errors.append(f"citations must be exactly ['{env.citation}']")
    if r.receipts:
        errors.append("a proposal must not carry receipts; only tools issue them")
    orders, accounts = identifiers(env)
    allowed = contract.tools_for(env.citation)
    for i, a in enumerate(r.actions):
        if a.tool not in contract.output.tools or a.tool not in TOOL_ARGS:
            errors.append(f"action {i}: tool {a.tool} is not in the contract")
            continue
        if a.tool not in allowed:
            # The per-input allowlist: an order event can never place a hold, whatever its text says.
            errors.append(f"action {i}: tool {a.tool} is not allowed for input {env.citation}")
            continue
        if a.idempotency_key != idempotency_key:
            errors.append(f"action {i}: idempotency_key is not the envelope's")
        oid = a.args.get("order_id")
        if oid is not None and str(oid) not in orders:
            errors.append(f"action {i}: order_id does not occur in the event")
        aid = a.args.get("account_id")
        if aid is not None and str(aid) not in accounts:
            errors.append(f"action {i}: account_id does not occur in the event")
    tools = [a.tool for a in r.actions]
    if len(set(tools)) != len(tools):
        errors.append("a tool appears twice in one plan; (tool, idempotency_key) must be unique")
    return errors
