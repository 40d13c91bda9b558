"""The policy seam: governed, PII-free envelope in, proposed response out. Pure logic."""
from __future__ import annotations

from typing import Protocol

from contracts.models import Action, AgentResponse, Breach, Envelope, OrderRow

BREACH_TOPIC = "risk.order_threshold_breach"
ORDERS_TOPIC = "cdc.public.orders"
VIP_TEMPLATE = "vip-order-received"
TICKET_LABELS = ["risk", "orders"]


class PolicyRejected(Exception):
    """A policy refuses to give a proposal for an envelope (for example an LLM answer that broke the
    contract, with fallback `dlq`). The agent stage turns it into a DLQ record with reason
    invalid_response. The message names what was wrong, never a raw value."""


class Policy(Protocol):
    """A policy proposes; it never executes. The agent stage validates every proposal."""

    name: str

    def wants(self, env: Envelope) -> bool:
        """Cheap pre-check: False means the envelope can never lead to an action (outcome no_action)."""
        ...

    def propose(self, env: Envelope, idempotency_key: str) -> AgentResponse: ...


class RulePolicy:
    """The seed's rules: breach -> ticket (+ hold when auto_hold); VIP order c/u -> notice."""

    name = "rules"

    def wants(self, env: Envelope) -> bool:
        if env.topic == BREACH_TOPIC:
            return True
        p = env.payload or {}
        after = p.get("after")
        return (env.topic == ORDERS_TOPIC and p.get("op") in ("c", "u")
                and isinstance(after, dict) and after.get("vip_flag") is True)

    def propose(self, env: Envelope, idempotency_key: str) -> AgentResponse:
        if env.topic == BREACH_TOPIC:
            return self._breach(env, Breach.model_validate(env.payload), idempotency_key)
        if self.wants(env):
            return self._vip_order(env, OrderRow.model_validate(env.payload["after"]), idempotency_key)  # type: ignore[index]
        return AgentResponse(summary="No action: the event matches no rule.", actions=[],
                             citations=[env.citation])

    @staticmethod
    def _breach(env: Envelope, b: Breach, key: str) -> AgentResponse:
        actions = [Action(tool="CreateTicket", idempotency_key=key, args={
            "summary": f"Order {b.order_id} risk breach ({b.rule})",
            "labels": list(TICKET_LABELS),
            "description": (f"Account {b.account_id}: {len(b.order_ids)} orders at or above {b.threshold} "
                            f"within 10 minutes (orders {', '.join(b.order_ids)}; total {b.total_amount}); "
                            f"window {b.window_start_ms}..{b.window_end_ms}; breach {b.breach_id}."),
            "account_id": b.account_id,
            "order_id": b.order_id,
        })]
        if b.auto_hold:
            actions.append(Action(tool="PlacePaymentHold", idempotency_key=key,
                                  args={"order_id": b.order_id, "reason": b.rule}))
        held = " and place a payment hold on it" if b.auto_hold else ""
        return AgentResponse(
            summary=(f"Account {b.account_id} placed {len(b.order_ids)} orders of at least {b.threshold} "
                     f"within 10 minutes, totalling {b.total_amount}. Open a risk ticket for order "
                     f"{b.order_id}{held}."),
            actions=actions, citations=[env.citation])

    @staticmethod
    def _vip_order(env: Envelope, row: OrderRow, key: str) -> AgentResponse:
        return AgentResponse(
            summary=f"VIP account {row.account_id} has order {row.order_id} ({row.status}); send the VIP notice.",
            actions=[Action(tool="SendNotice", idempotency_key=key,
                            args={"account_id": row.account_id, "template": VIP_TEMPLATE})],
            citations=[env.citation])
