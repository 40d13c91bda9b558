"""Envelope builders shared by the tests (plain dicts, as they arrive on a line)."""
from __future__ import annotations

import json
import random
from typing import Any

T0 = 1767225600000
MINUTE = 60_000


def order_row(order_id: str, account: str = "acct-1", amount: Any = "1200.00", vip: bool = False,
              status: str = "created", **extra: Any) -> dict[str, Any]:
    row = {"order_id": order_id, "account_id": account, "amount": amount, "currency": "EUR",
           "status": status, "vip_flag": vip, "email": f"tok_email_{order_id}", "phone": None, "ssn_last4": None}
    row.update(extra)
    return row


def cdc(ts: int, op: str = "c", after: dict[str, Any] | None = None, before: dict[str, Any] | None = None,
        **extra: Any) -> dict[str, Any]:
    image = after or before or {}
    env = {"topic": "cdc.public.orders", "key": json.dumps({"order_id": image.get("order_id")}, separators=(",", ":")),
           "ts_ms": ts, "schema": "v2",
           "payload": {"op": op, "before": before, "after": after,
                       "source": {"ts_ms": ts, "lsn": 1000 + ts % 100000, "table": "orders"}}}
    env.update(extra)
    return env


def breach_payload(account: str = "acct-1", order_ids: list[str] | None = None, ts: int = T0,
                   auto_hold: bool = True) -> dict[str, Any]:
    ids = order_ids or ["o1", "o2", "o3"]
    return {"breach_id": "brc-x", "account_id": account, "order_id": ids[-1], "order_ids": ids,
            "rule": "high_value_orders_3_in_10m", "threshold": "1000.00", "window_start_ms": ts - 600000,
            "window_end_ms": ts, "total_amount": "3600.00", "auto_hold": auto_hold, "ts_ms": ts}


def breach_env(ts: int = T0, **kw: Any) -> dict[str, Any]:
    p = breach_payload(ts=ts, **kw)
    return {"topic": "risk.order_threshold_breach", "key": p["account_id"], "ts_ms": ts, "schema": "v3", "payload": p}


def line(obj: Any) -> str:
    return obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))


def arrival_order(envs: list[dict[str, Any]], seed: int, bound_ms: int) -> list[dict[str, Any]]:
    """A shuffle in which no envelope is more than `bound_ms` behind the maximum before it."""
    rnd = random.Random(seed)
    keyed = [(e["ts_ms"] + rnd.randrange(bound_ms), rnd.random(), e) for e in envs]
    return [e for _, _, e in sorted(keyed, key=lambda k: (k[0], k[1]))]
