"""Brute-force oracles written from SPEC sections 3 and 4, independent of the job's modules."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable

WINDOW = 600_000


def breaches_oracle(envelopes: Iterable[dict[str, Any]], threshold: Decimal = Decimal("1000.00")) -> list[dict[str, Any]]:
    """Breaches of a set of orders envelopes, from the rule's plain statement (no incremental state)."""
    first: dict[str, tuple[int, str, Decimal]] = {}  # order_id -> (first qualifying ts, account, amount)
    for e in envelopes:
        p = e.get("payload") or {}
        a = p.get("after")
        if p.get("op") not in ("c", "r", "u") or not a:
            continue
        amt = Decimal(str(a["amount"]))
        if amt < threshold:
            continue
        oid = a["order_id"]
        cand = (e["ts_ms"], a["account_id"], amt)
        if oid not in first or (cand[0], -cand[2]) < (first[oid][0], -first[oid][2]):  # ties: larger amount
            first[oid] = cand
    per_account: dict[str, list[tuple[int, str, Decimal]]] = {}
    for oid, (ts, acct, amt) in first.items():
        per_account.setdefault(acct, []).append((ts, oid, amt))
    out = []
    for acct, orders in sorted(per_account.items()):
        orders.sort()
        kept: list[tuple[int, str, Decimal]] = []
        last = None
        for ts, oid, amt in orders:
            kept.append((ts, oid, amt))
            if last is not None and ts < last + WINDOW:
                continue
            window = [o for o in kept if ts - WINDOW <= o[0] <= ts]
            if len(window) >= 3:
                out.append({"account_id": acct, "ts_ms": ts, "order_id": oid,
                            "order_ids": [o[1] for o in window],
                            "total_amount": sum((o[2] for o in window), Decimal(0))})
                kept = []
                last = ts
    return out


def rate_limit_oracle(plans: list[tuple[int, int]], limit: int, window: int = 60_000) -> list[bool]:
    """Admit plans (ts, n_actions) in event-time order so no 60 s window ever holds more than `limit`.

    Brute force: a plan is admitted iff, for every window length-60 s that contains its time,
    the admitted actions in it plus this plan fit; with time-ordered input only windows ending at
    ts matter, but we check every window start to be safe.
    """
    admitted: list[int] = []
    out = []
    for ts, n in plans:
        ok = True
        for start in range(ts - window + 1, ts + 1):
            in_window = sum(1 for t in admitted if start <= t < start + window)
            if in_window + n > limit:
                ok = False
                break
        if ok:
            admitted.extend([ts] * n)
        out.append(ok)
    return out


def idem(topic: str, key: str, ts: int) -> str:
    """The version-2 idempotency key of a record with a key, written out from its definition."""
    import hashlib
    data = b"idem2" + b"".join(b"\x01" + len(f).to_bytes(8, "big") + f
                               for f in (topic.encode(), key.encode(), str(ts).encode()))
    return "idem2-" + hashlib.sha256(data).hexdigest()


def actions_oracle(envelopes: list[dict[str, Any]], limit: int,
                   threshold: Decimal = Decimal("1000.00")) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(executed, rate_limited) sets of (tool, idempotency_key) from SPEC section 4, brute force.

    Plans per account in event-time order, ties by (topic, key); one plan per idempotency key.
    """
    plans: dict[str, dict[tuple[int, str, str], list[str]]] = {}
    for e in envelopes:
        p = e.get("payload") or {}
        a = p.get("after")
        if e["topic"] == "cdc.public.orders" and p.get("op") in ("c", "u") and a and a.get("vip_flag") is True:
            plans.setdefault(a["account_id"], {})[(e["ts_ms"], e["topic"], e["key"])] = ["SendNotice"]
    for b in breaches_oracle(envelopes, threshold):
        plans.setdefault(b["account_id"], {})[(b["ts_ms"], "risk.order_threshold_breach", b["account_id"])] = \
            ["CreateTicket", "PlacePaymentHold"]
    executed: set[tuple[str, str]] = set()
    limited: set[tuple[str, str]] = set()
    for acct, by_key in plans.items():
        ordered = sorted(by_key.items())
        decisions = rate_limit_oracle([(k[0], len(tools)) for k, tools in ordered], limit)
        for (k, tools), ok in zip(ordered, decisions):
            target = executed if ok else limited
            target.update((t, idem(k[1], k[2], k[0])) for t in tools)
    return executed, limited
