"""Deterministic CDC order streams for the benchmark. Pure logic.

A workload is N Debezium change events (shaped as the Debezium 3 PostgreSQL connector writes
them with schemas disabled: source block, transaction, ts_us/ts_ns) of the orders table over A accounts, a
given fraction of them actionable (half VIP orders that ask for a notice, half
orders at or above the threshold, concentrated on a few accounts so breaches
happen), 0.1% invalid (a raw e-mail the gate must reject), the rest plain
creates, updates and deletes below the threshold. Event times advance by
`spacing_ms` per event and are shuffled within the watermark bound.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Iterator

T0 = 1767225600000
RISKY_ACCOUNTS = 50


@dataclass(frozen=True)
class Workload:
    name: str
    events: int
    actionable: float
    accounts: int = 10_000
    seed: int = 7
    bound_ms: int = 30_000
    spacing_ms: int = 2
    invalid: float = 0.001


@dataclass(frozen=True)
class CdcRecord:
    key: bytes
    value: bytes
    ts_ms: int
    actionable: bool


def _row(order_id: str, account: str, amount: str, vip: bool, email: str) -> dict[str, object]:
    return {"order_id": order_id, "account_id": account, "amount": amount, "currency": "EUR", "status": "created",
            "vip_flag": vip, "email": email, "phone": None, "ssn_last4": None}


def debezium_source(ts: int, lsn: int) -> dict[str, object]:
    """The source block the Debezium 3 PostgreSQL connector writes (its field set and order)."""
    return {"version": "3.1.2.Final", "connector": "postgresql", "name": "dbserver1", "ts_ms": ts,
            "snapshot": "false", "db": "shop", "sequence": f'["{lsn - 8}","{lsn}"]', "ts_us": ts * 1000,
            "ts_ns": ts * 1_000_000, "schema": "public", "table": "orders", "txId": 700 + lsn % 1000, "lsn": lsn,
            "xmin": None}


def records(w: Workload, start_ms: int = T0) -> Iterator[CdcRecord]:
    """The workload's records in production order (event times out of order within the bound)."""
    rnd = random.Random(w.seed)
    jitter = max(0, w.bound_ms // 2)
    for i in range(w.events):
        ts = start_ms + i * w.spacing_ms - rnd.randrange(jitter + 1)
        order_id = f"o{w.seed}-{i}"
        account = f"acct-{rnd.randrange(w.accounts)}"
        op, amount, vip, email = "c", f"{rnd.randrange(100, 99_999) / 100:.2f}", False, f"tok_mail_{i:08d}"
        roll = rnd.random()
        actionable = roll < w.actionable
        if actionable and roll < w.actionable / 2:
            vip = True
        elif actionable:
            account = f"acct-{rnd.randrange(RISKY_ACCOUNTS)}"
            amount = f"{rnd.randrange(1000, 5000)}.00"
        elif roll < w.actionable + w.invalid:
            email = "someone@example.com"  # raw PII: DLQ
        elif roll < w.actionable + 0.15:
            op = "u"
        elif roll < w.actionable + 0.20:
            op = "d"
        row = _row(order_id, account, amount, vip, email)
        payload = {"before": row if op in ("u", "d") else None, "after": None if op == "d" else row,
                   "source": debezium_source(ts, 1000 + i), "transaction": None, "op": op,
                   "ts_ms": ts + 3, "ts_us": (ts + 3) * 1000, "ts_ns": (ts + 3) * 1_000_000}
        yield CdcRecord(json.dumps({"id": order_id}, separators=(",", ":")).encode(),
                        json.dumps(payload, separators=(",", ":")).encode(), ts, actionable)


def file_lines(w: Workload, start_ms: int = T0) -> Iterator[str]:
    """The same records as file-mode envelopes (JSON Lines)."""
    for r in records(w, start_ms):
        yield json.dumps({"topic": "cdc.public.orders", "key": r.key.decode(), "ts_ms": r.ts_ms, "schema": "v2",
                          "payload": json.loads(r.value)}, separators=(",", ":"))


def closing_ticks(w: Workload, partitions: int, start_ms: int = T0) -> list[CdcRecord]:
    """One plain order per partition, later than every event by more than the bound: they let the
    watermark pass the workload's last events, which event time would otherwise hold back."""
    ts = start_ms + w.events * w.spacing_ms + w.bound_ms + 1000
    out = []
    for p in range(partitions):
        row = _row(f"tick-{w.seed}-{p}", "acct-tick", "1.00", False, f"tok_mail_tick{p:04d}")
        payload = {"op": "c", "before": None, "after": row,
                   "source": {"ts_ms": ts, "lsn": 1, "table": "orders", "db": "shop"}, "ts_ms": ts}
        out.append(CdcRecord(json.dumps({"id": row["order_id"]}, separators=(",", ":")).encode(),
                             json.dumps(payload, separators=(",", ":")).encode(), ts, False))
    return out
