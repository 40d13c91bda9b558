"""End-to-end check of the local CDC stack (not collected by pytest).

    .venv/bin/python -m tests.infra.cdc_smoke [--keep]

Starts postgres, kafka and connect (infra/*.sh), inserts two orders, updates
one, deletes the other, reads cdc.public.orders from the beginning and checks
the Debezium shapes: key {"order_id": ...}; value with op/before/after/source
(source.ts_ms); amount as a decimal string; the delete followed by a
tombstone. Stops everything afterwards unless --keep.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from kafka import KafkaConsumer, TopicPartition

from tests.infra import local


def main(argv: list[str]) -> int:
    t0 = time.monotonic()
    info = local.up()
    print(f"stack up in {time.monotonic() - t0:.1f}s: kafka {info['kafka']['bootstrap']}, "
          f"postgres {info['postgres']['port']}, connect {info['connect']['url']}")
    try:
        run = uuid.uuid4().hex[:8]
        a, b = f"smoke-{run}-a", f"smoke-{run}-b"
        local.psql(f"""
            INSERT INTO orders (order_id, account_id, amount, currency, status, vip_flag, email)
            VALUES ('{a}', 'acct-smoke', 1200, 'EUR', 'created', true, 'tok_smoke_email_1'),
                   ('{b}', 'acct-smoke', 35.5, 'EUR', 'created', false, NULL);
            UPDATE orders SET status = 'paid' WHERE order_id = '{a}';
            DELETE FROM orders WHERE order_id = '{b}';
        """)
        consumer = KafkaConsumer(
            bootstrap_servers=info["kafka"]["bootstrap"], enable_auto_commit=False,
            isolation_level="read_committed", consumer_timeout_ms=30000,
        )
        tps = [TopicPartition("cdc.public.orders", p)
               for p in consumer.partitions_for_topic("cdc.public.orders")]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen = []
        for m in consumer:
            key = json.loads(m.key) if m.key is not None else None
            value = json.loads(m.value) if m.value is not None else None
            if not key or key.get("order_id") not in (a, b):
                continue
            print(f"p{m.partition}@{m.offset} key={m.key.decode()} value="
                  f"{m.value.decode() if m.value is not None else 'null'}")
            seen.append((key["order_id"], value))
            if key["order_id"] == b and value is None:
                break
        consumer.close()

        # order holds per key (one key, one partition), not across keys
        ops = {k: [v["op"] if v else None for kk, v in seen if kk == k] for k in (a, b)}
        assert ops == {a: ["c", "u"], b: ["c", "d", None]}, ops
        for _, v in seen:
            if v is not None:
                assert {"op", "before", "after", "source"} <= set(v), v
                assert isinstance(v["source"]["ts_ms"], int), v
        first = next(v for k, v in seen if k == a)
        assert first["after"]["amount"] == "1200.00", first
        print("OK: key/value shapes, decimal strings and delete tombstone as expected")
        return 0
    finally:
        if "--keep" not in argv:
            local.down()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
