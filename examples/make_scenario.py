"""Writes examples/orders_scenario.jsonl, the seed's story as envelopes (run to regenerate)."""
from __future__ import annotations

import json
from pathlib import Path

T0 = 1767225600000  # 2026-01-01T00:00:00Z
MIN = 60_000
LSN = iter(range(23_000_000, 24_000_000, 1_000))


def row(order_id: str, account: str, amount: object, vip: bool, status: str = "created", **pii: str) -> dict:
    r = {"order_id": order_id, "account_id": account, "amount": amount, "currency": "EUR",
         "status": status, "vip_flag": vip, "email": f"tok_em_{order_id}xx", "phone": None, "ssn_last4": None}
    r.update(pii)
    return r


def cdc(ts: int, op: str, before: dict | None, after: dict | None, **extra: object) -> dict:
    oid = (after or before or {})["order_id"]
    env = {"topic": "cdc.public.orders", "key": json.dumps({"order_id": oid}, separators=(",", ":")),
           "ts_ms": ts, "schema": "v2", "sensitivity": "Internal",
           "payload": {"op": op, "before": before, "after": after, "ts_ms": ts + 40,
                       "source": {"ts_ms": ts, "lsn": next(LSN), "table": "orders", "db": "shop",
                                  "schema": "public", "connector": "postgresql"}}}
    env.update(extra)
    return env


def lines() -> list[str]:
    vip = "acct-vip-7"
    o1 = cdc(T0, "c", None, row("12343", vip, 1200.00, True))
    out = [
        o1,                                                               # VIP, high value (1/3)
        o1,                                                               # duplicate delivery of 12343
        cdc(T0 + 1 * MIN, "c", None, row("20001", "acct-200", 45.90, False)),  # small, non-VIP
        cdc(T0 + 7 * MIN, "c", None, row("12345", vip, "1800.00", True)),      # VIP, high value (3/3)
        cdc(T0 + 7 * MIN - 10_000, "c", None, row("12344", vip, 2500.50, True)),  # arrives 10 s out of order (2/3)
        cdc(T0 + 7 * MIN + 5_000, "c", None, row("20002", "acct-201", 99.00, False,
                                                 email="jane.doe@example.com")),  # raw PII: DLQ, masked
        cdc(T0 + 7 * MIN + 30_000, "u", row("20001", "acct-200", 45.90, False),
            row("20001", "acct-200", 45.90, False, status="shipped")),
        cdc(T0 + 8 * MIN, "d", row("20001", "acct-200", 45.90, False, status="shipped"), None),
        {"topic": "cdc.public.orders", "key": "{\"order_id\":\"20001\"}", "ts_ms": T0 + 8 * MIN,
         "schema": "v2", "payload": None},                                # Debezium tombstone
        '{"topic": "cdc.public.orders", "key": "{\\"order_id\\":\\"20009\\"}", "ts_ms": ',  # truncated line
        {"topic": "cdc.public.customers", "key": "{\"id\":7}", "ts_ms": T0 + 8 * MIN, "schema": "v1",
         "payload": {"op": "c", "after": {"id": 7}}},                     # not in the allowlist
        cdc(T0 + 8 * MIN + 1_000, "c", None, row("20005", "acct-205", 10.00, False),
            sensitivity="Restricted"),                                    # above the ceiling
        cdc(T0 + 8 * MIN + 2_000, "c", None, row("20004", "acct-204", "lots", False)),  # amount not a number
        cdc(T0 + 8 * MIN + 3_000, "c", None, row("30001", "acct-300", 5000, False)),  # high value, only one
        cdc(T0 + 1 * MIN, "c", None, row("20003", "acct-203", 12.00, False)),  # 7 min behind: late
    ]
    return [x if isinstance(x, str) else json.dumps(x, separators=(",", ":")) for x in out]


if __name__ == "__main__":
    path = Path(__file__).with_name("orders_scenario.jsonl")
    path.write_text("\n".join(lines()) + "\n")
    print(f"wrote {path}")
