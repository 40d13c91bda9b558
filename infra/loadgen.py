"""Writes realistic order traffic into PostgreSQL (the CDC source) at a given rate.

    .venv/bin/python infra/loadgen.py --dsn "$PG_DSN" --rate 50 --duration 60 \
        [--accounts 1000] [--vip-fraction 0.05] [--high-value-fraction 0.01] \
        [--update-fraction 0.2] [--delete-fraction 0.05] [--raw-pii-fraction 0] [--seed 1]

PII columns hold tokens, as an application that tokenizes at source writes
them; `--raw-pii-fraction` writes raw e-mails on purpose to exercise the gate.
"""
from __future__ import annotations

import argparse
import random
import time
import uuid
from decimal import Decimal

import psycopg


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--rate", type=float, default=20.0, help="statements per second")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds")
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--vip-fraction", type=float, default=0.05)
    ap.add_argument("--high-value-fraction", type=float, default=0.01)
    ap.add_argument("--update-fraction", type=float, default=0.2)
    ap.add_argument("--delete-fraction", type=float, default=0.05)
    ap.add_argument("--raw-pii-fraction", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    run = uuid.uuid4().hex[:6]
    live: list[str] = []
    counts = {"insert": 0, "update": 0, "delete": 0}
    with psycopg.connect(a.dsn, autocommit=True) as conn:
        end = time.monotonic() + a.duration
        n = 0
        while time.monotonic() < end:
            roll = rng.random()
            if live and roll < a.delete_fraction:
                oid = live.pop(rng.randrange(len(live)))
                conn.execute("DELETE FROM orders WHERE order_id = %s", (oid,))
                counts["delete"] += 1
            elif live and roll < a.delete_fraction + a.update_fraction:
                oid = rng.choice(live)
                conn.execute("UPDATE orders SET status = %s WHERE order_id = %s",
                             (rng.choice(["paid", "shipped", "cancelled"]), oid))
                counts["update"] += 1
            else:
                acct = rng.randrange(a.accounts)
                vip = acct < a.accounts * a.vip_fraction
                high = rng.random() < a.high_value_fraction
                amount = Decimal(rng.randint(1000_00, 5000_00) if high else rng.randint(1_00, 999_99)) / 100
                oid = f"{run}-{n}"
                email = f"user{acct}@example.com" if rng.random() < a.raw_pii_fraction else f"tok_em_{acct:08d}"
                conn.execute(
                    "INSERT INTO orders (order_id, account_id, amount, currency, status, vip_flag, email, phone)"
                    " VALUES (%s, %s, %s, 'EUR', 'created', %s, %s, %s)",
                    (oid, f"acct-{acct}", amount, vip, email, f"tok_ph_{acct:08d}"))
                live.append(oid)
                counts["insert"] += 1
            n += 1
            time.sleep(max(0.0, 1.0 / a.rate))
    print(counts)


if __name__ == "__main__":
    main()
