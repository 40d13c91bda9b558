"""Where a governed envelope goes next: breach detection, the agent stage, both or neither."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from contracts.models import Envelope
from jobs.breach_rule import QualifyingOrder, qualifying_order
from jobs.policy import Policy


@dataclass(frozen=True)
class Routed:
    """A governed envelope with its key facts, as it travels between operators."""

    env: Envelope
    idempotency_key: str
    account_id: str
    qualifying: QualifyingOrder | None
    to_agent: bool
    derived: bool = False


def account_of(env: Envelope) -> str | None:
    p = env.payload or {}
    for image in (p.get("after"), p.get("before")):
        if isinstance(image, dict) and image.get("account_id") is not None:
            return str(image["account_id"])
    acct = p.get("account_id")
    return str(acct) if acct is not None else None


def route(env: Envelope, threshold: Decimal, policy: Policy, derived: bool = False) -> Routed | None:
    """None when the envelope needs neither stage (its outcome is no_action)."""
    qualifying = qualifying_order(env, threshold)
    to_agent = policy.wants(env)
    account = account_of(env)
    if account is None or (qualifying is None and not to_agent):
        return None
    return Routed(env, env.idempotency_key(), account, qualifying, to_agent, derived)
