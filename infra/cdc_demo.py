"""The CDC demo: PostgreSQL rows become receipts through Debezium, Kafka, the job and the sink.

Starts PostgreSQL, Kafka and Kafka Connect (infra/*.sh), the sandbox tools, the Kafka-mode job
and the sink process; inserts the seed story's rows (a VIP account places 3 orders >= 1000.00
within 10 minutes); prints the breach, the ticket, the HOLD-<order_id> receipt and the VIP
notices; stops everything it started. Run through scripts/cdc_demo.sh.
"""
from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.infra import local  # noqa: E402  (the shared start/stop helpers of infra/*.sh)
from tests.kafka_helpers import consume_breaches, consume_json  # noqa: E402
from tests.procs import Proc, start_sandbox, wait_for  # noqa: E402


def main() -> None:
    run = uuid.uuid4().hex[:4]
    tmp = Path(tempfile.mkdtemp(prefix="cdc-demo-"))
    print(f"cdc demo: logs and state in {tmp}")
    local.ensure_fetched()
    bootstrap = local.start_kafka(fresh=True)["bootstrap"]
    dsn = local.start_postgres()["dsn"]
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("TRUNCATE orders")
    local.reset_connect()
    local.start_connect()
    procs: list[Proc] = []
    stop = threading.Event()
    try:
        sandbox, url = start_sandbox(tmp)
        procs.append(sandbox)
        procs.append(Proc.python("jobs.agent_job", "--bootstrap-servers", bootstrap, "--state", str(tmp / "job"),
                                 "--checkpoint-interval-ms", "1000", "--max-out-of-orderness-ms", "2000",
                                 "--topic-pattern", r"cdc\.public\.orders", log=tmp / "job.log"))
        procs.append(Proc.python("sinks.action_sink", "--bootstrap-servers", bootstrap, "--tools-url", url,
                                 "--state", str(tmp / "sink"), log=tmp / "sink.log"))
        vip = "acct-vip-7"
        with psycopg.connect(dsn, autocommit=True) as c:
            for oid, amount in (("12343", "1200.00"), ("12344", "2500.50"), ("12345", "1800.00")):
                c.execute("INSERT INTO orders (order_id, account_id, amount, currency, status, vip_flag, email)"
                          " VALUES (%s, %s, %s, 'EUR', 'created', true, %s)", (oid, vip, amount, f"tok_em_{oid}xx"))
                print(f"inserted order {oid} ({amount} EUR) for {vip}")
                time.sleep(1)

        def heartbeat() -> None:  # newer event time releases the watermark-bounded tail
            n = 0
            while not stop.is_set():
                with psycopg.connect(dsn, autocommit=True) as c:
                    c.execute("INSERT INTO orders (order_id, account_id, amount, currency, status, vip_flag)"
                              " VALUES (%s, 'acct-hb', 1.00, 'EUR', 'created', false)", (f"hb-{run}-{n}",))
                n += 1
                time.sleep(1)

        threading.Thread(target=heartbeat, daemon=True).start()
        wait_for(lambda: len(requests.get(url + "/ledger", timeout=5).json()) >= 5, 300,
                 "the ticket, the hold and the notices", procs)
        for b in consume_breaches(bootstrap):
            print(f"breach {b['breach_id']}: orders {', '.join(b['order_ids'])} total {b['total_amount']}")
        for r in consume_json(bootstrap, "agent.receipts"):
            print(f"receipt {r['tool']}:{r['ref']}")
    finally:
        stop.set()
        for p in reversed(procs):
            p.stop()
        local.stop_connect()
        local.stop_postgres()
        local.stop_kafka()
        print("cdc demo: stopped everything it started")


if __name__ == "__main__":
    main()
