"""The breach rule of SPEC section 3 for one account, fed in event-time order. Pure logic."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts.models import Breach, Envelope

RULE = "high_value_orders_3_in_10m"
WINDOW_MS = 600_000
MIN_ORDERS = 3
DEFAULT_THRESHOLD = Decimal("1000.00")
QUALIFYING_OPS = ("c", "r", "u")


@dataclass(frozen=True, order=True)
class QualifyingOrder:
    """An order image at or above the threshold; ordered as the rule processes them.

    When one order has several qualifying images at the same first event time, the one with the
    larger amount counts (the operator's tie-break), so totals never depend on arrival order.
    """

    ts_ms: int
    order_id: str
    account_id: str = field(compare=False)
    amount: Decimal = field(compare=False)


@dataclass
class AccountWindow:
    """Per-account state: qualifying orders kept since the last breach."""

    kept: list[QualifyingOrder] = field(default_factory=list)
    last_breach_ms: int | None = None


def to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def qualifying_order(env: Envelope, threshold: Decimal) -> QualifyingOrder | None:
    """The order this CDC envelope makes qualify, if its image reaches the threshold."""
    p = env.payload or {}
    after = p.get("after")
    if p.get("op") not in QUALIFYING_OPS or not isinstance(after, dict):
        return None
    amount = to_decimal(after.get("amount"))
    if amount is None or amount < threshold:
        return None
    return QualifyingOrder(env.ts_ms, str(after["order_id"]), str(after["account_id"]), amount)


def breach_id(account_id: str, ts_ms: int) -> str:
    return "brc-" + hashlib.sha256(f"{account_id}|{ts_ms}".encode()).hexdigest()[:32]


def money(d: Decimal) -> str:
    """Decimal text with at least two places, no float ever involved."""
    return str(d.quantize(Decimal("0.01")) if d.as_tuple().exponent > -2 else d)  # type: ignore[operator]


def on_order(state: AccountWindow, order: QualifyingOrder, threshold: Decimal,
             auto_hold: bool = True) -> Breach | None:
    """Feed one first-time qualifying order (in event-time order); return the breach it completes."""
    t = order.ts_ms
    state.kept = [o for o in state.kept if o.ts_ms >= t - WINDOW_MS]  # older ones can never count again
    state.kept.append(order)
    if state.last_breach_ms is not None and t < state.last_breach_ms + WINDOW_MS:
        return None
    window = [o for o in state.kept if t - WINDOW_MS <= o.ts_ms <= t]
    if len(window) < MIN_ORDERS:
        return None
    state.kept = []
    state.last_breach_ms = t
    return Breach(
        breach_id=breach_id(order.account_id, t),
        account_id=order.account_id,
        order_id=order.order_id,
        order_ids=[o.order_id for o in window],
        rule=RULE,
        threshold=money(threshold),
        window_start_ms=t - WINDOW_MS,
        window_end_ms=t,
        total_amount=money(sum((o.amount for o in window), Decimal(0))),
        auto_hold=auto_hold,
        ts_ms=t,
    )
