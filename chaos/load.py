"""The steady, seeded input stream of a chaos run, produced to `cdc.public.orders` (3 partitions, schema v2).

The mix is drawn from the seed: VIP orders (SendNotice), high-value orders
(breaches: CreateTicket + PlacePaymentHold), non-actionable orders and a few
invalid records (raw e-mail, non-numeric amount) that must be DLQ'd. Records
go round-robin over the partitions, so every partition always has fresh
records and the watermark keeps moving (the known stall when all partitions
go idle at once cannot happen). Event time trails the wall clock by a fixed
lag and grows with the sequence number, so it never exceeds the record
timestamp (the job caps it there) and is never late on its partition.
Accounts are many enough that no account nears the rate limit (120/min).

After `drain()` only non-actionable records are produced: they release the
tail of event time while the harness waits for the outputs to settle.
"""
from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer

from chaos.invariants import Expect, InputRecord
from tests.oracles import idem

TOPIC = "cdc.public.orders"
PARTITIONS = 3
EVENT_TIME_LAG_MS = 20_000
LATENESS_BOUND_MS = 10_000  # the job's --max-out-of-orderness-ms in a chaos run
# Redeliver only records this recent: a redelivery further behind its partition than the bound is `late`
# (a DLQ outcome by design), not the `duplicate` the harness wants to see. Half the bound leaves margin.
REDELIVERY_WINDOW_MS = LATENESS_BOUND_MS // 2


@dataclass
class Sent:
    envelope: dict[str, Any]
    expect: Expect
    partition: int
    offset: int = -1               # known once the broker acknowledged it
    redelivery: bool = False

    def input_record(self) -> InputRecord:
        e = self.envelope
        key = idem(e["topic"], e["key"], e["ts_ms"]) if self.expect != "dlq" else None
        return InputRecord((e["topic"], self.partition, self.offset), key, self.expect)


def make_record(i: int, ts: int, rng: random.Random, accounts: int, actionable: bool = True) -> tuple[dict[str, Any], Expect]:
    """Record number i of the stream: an envelope dict and its expected outcome class."""
    oid = f"o{i}"
    acct = f"acct-{rng.randrange(accounts)}"
    roll = rng.random() if actionable else 0.99
    row: dict[str, Any] = {"order_id": oid, "account_id": acct, "amount": "25.00", "currency": "EUR",
                           "status": "created", "vip_flag": False, "email": f"tok_email_{oid}xx",
                           "phone": None, "ssn_last4": None}
    expect: Expect = "no_action"
    if roll < 0.015:
        row["email"] = f"customer{i}@example.com"  # raw PII: pii_not_tokenized
        expect = "dlq"
    elif roll < 0.03:
        row["amount"] = "twelve"  # not a number: schema_violation
        expect = "dlq"
    elif roll < 0.33:
        row["vip_flag"] = True
        row["amount"] = "1500.00" if rng.random() < 0.12 else "80.00"
        expect = "actionable"
    elif roll < 0.42:
        row["amount"] = "2400.00"  # high value, not VIP: counts towards a breach, no action of its own
    env = {"topic": TOPIC, "key": json.dumps({"order_id": oid}, separators=(",", ":")), "ts_ms": ts, "schema": "v2",
           "payload": {"op": "c", "before": None, "after": row,
                       "source": {"ts_ms": ts, "lsn": 1000 + i, "table": "orders"}}}
    return env, expect


class Load(threading.Thread):
    """Produces record i at start + i/rate (catching up after a stall), and redeliveries on request."""

    def __init__(self, bootstrap: str, seed: int, rate_per_s: float = 10.0, accounts: int = 30) -> None:
        super().__init__(daemon=True, name="chaos-load")
        self.bootstrap, self.rate, self.accounts = bootstrap, rate_per_s, accounts
        self.rng = random.Random(seed)
        self.redeliver_rng = random.Random(seed + 1)
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        self._halt, self._drain = threading.Event(), threading.Event()
        self._redeliveries: list[int] = []
        self.started_ms = 0
        self.error: BaseException | None = None

    # -- control, from the harness thread --------------------------------------
    def redeliver(self, n: int) -> None:
        with self.lock:
            self._redeliveries.append(n)

    def drain(self) -> None:
        self._drain.set()

    def stop(self) -> None:
        self._halt.set()
        if self.ident is not None:
            self.join(timeout=120)

    def acknowledged(self) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.offset >= 0]

    def unacknowledged(self) -> int:
        with self.lock:
            return sum(1 for s in self.sent if s.offset < 0)

    # -- the producer thread ----------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the harness; a dead load would look like a quiet stream
            self.error = e

    def _run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                 retries=2**31 - 1, delivery_timeout_ms=600_000, max_block_ms=600_000,
                                 request_timeout_ms=10_000, reconnect_backoff_max_ms=2_000)
        start = time.monotonic()
        self.started_ms = int(time.time() * 1000)
        base = (self.started_ms // 1000) * 1000 - EVENT_TIME_LAG_MS
        step = int(1000 / self.rate)
        i = 0
        try:
            while not self._halt.is_set():
                due = start + i / self.rate
                wait = due - time.monotonic()
                if wait > 0:
                    self._halt.wait(wait)
                    continue
                env, expect = make_record(i, base + i * step, self.rng, self.accounts,
                                          actionable=not self._drain.is_set())
                self._send(producer, Sent(env, expect, i % PARTITIONS))
                self._send_redeliveries(producer, base + i * step)
                i += 1
            producer.flush(timeout=600)
        finally:
            producer.close(timeout=60)

    def _send_redeliveries(self, producer: KafkaProducer, now_ts: int) -> None:
        with self.lock:
            wanted, self._redeliveries = sum(self._redeliveries), []
            recent = [s for s in self.sent if not s.redelivery and s.expect != "dlq"
                      and s.envelope["ts_ms"] >= now_ts - REDELIVERY_WINDOW_MS]
        if not wanted:
            return
        actionable = [s for s in recent if s.expect == "actionable"]
        pool = actionable if len(actionable) >= wanted else recent
        for s in self.redeliver_rng.sample(pool, min(wanted, len(pool))):
            self._send(producer, Sent(s.envelope, s.expect, s.partition, redelivery=True))

    def _send(self, producer: KafkaProducer, s: Sent) -> None:
        e = s.envelope
        with self.lock:
            self.sent.append(s)
        fut = producer.send(e["topic"], key=e["key"].encode(), value=json.dumps(e["payload"]).encode(),
                            partition=s.partition, headers=[("schema", b"v2"), ("ts_ms", str(e["ts_ms"]).encode())])

        def done(meta: Any, s: Sent = s) -> None:
            with self.lock:
                s.offset = meta.offset

        fut.add_callback(done)
