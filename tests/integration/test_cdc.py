"""Real CDC: rows written to PostgreSQL become receipts (Debezium in Kafka Connect, Kafka, the job,
the sink process, the sandbox tools over HTTP)."""
import json
import threading
import time
import uuid

import psycopg
import pytest
import requests

from tests.infra import local
from tests.kafka_helpers import consume_breaches, consume_json
from tests.procs import Proc, start_sandbox, wait_for

pytestmark = [pytest.mark.cdc, pytest.mark.kafka, pytest.mark.flink]
RUN = uuid.uuid4().hex[:6]
VIP = f"acct-vip-{RUN}"


@pytest.fixture(scope="module")
def pg(kafka_bootstrap):
    info = local.start_postgres()
    with psycopg.connect(info["dsn"], autocommit=True) as c:
        c.execute("TRUNCATE orders")
        # a pre-existing VIP row: Debezium snapshots it as op "r", which must not send a notice
        c.execute("INSERT INTO orders VALUES (%s, %s, 50.00, 'EUR', 'created', true, 'tok_em_pre00001', NULL, NULL)",
                  (f"pre-{RUN}", VIP))
    local.reset_connect()
    local.start_connect()
    yield info
    local.stop_connect()
    local.stop_postgres()


def insert(dsn: str, order_id: str, account: str, amount: str, vip: bool, email: str = "tok_em_00000001") -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO orders (order_id, account_id, amount, currency, status, vip_flag, email)"
                  " VALUES (%s, %s, %s, 'EUR', 'created', %s, %s)", (order_id, account, amount, vip, email))


class Heartbeat(threading.Thread):
    """Small non-VIP orders every second: newer event time on every partition releases the tail."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.stop_flag, self.n = dsn, threading.Event(), 0

    def run(self) -> None:
        while not self.stop_flag.wait(1.0):
            try:
                insert(self.dsn, f"hb-{RUN}-{self.n}-{id(self)}", f"acct-hb-{self.n % 7}", "1.00", False)
            except psycopg.Error:
                return  # the database is going away at teardown
            self.n += 1


def ledger(url: str) -> list[dict]:
    return requests.get(url + "/ledger", timeout=10).json()


@pytest.fixture(scope="module")
def cdc_run(pg, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cdc")
    dsn = pg["dsn"]
    sandbox, url = start_sandbox(tmp)
    job_args = ["--bootstrap-servers", kafka_bootstrap, "--checkpoint-interval-ms", "1000",
                "--max-out-of-orderness-ms", "2000", "--idle-timeout-ms", "3000",
                "--topic-pattern", r"cdc\.public\.orders"]
    job = Proc.python("jobs.agent_job", *job_args, "--state", str(tmp / "job"), "--group-id", "cdc-1",
                      log=tmp / "job.log")
    sink = Proc.python("sinks.action_sink", "--bootstrap-servers", kafka_bootstrap, "--tools-url", url,
                       "--state", str(tmp / "sink"), "--group-id", "cdc-sink", log=tmp / "sink.log")
    hb = Heartbeat(dsn)
    procs = [sandbox, job, sink]
    try:
        for i, amount in enumerate(["1200.00", "2500.50", "1800.00"]):  # 3 high-value VIP orders
            insert(dsn, f"o{i}-{RUN}", VIP, amount, True)
            time.sleep(0.5)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("UPDATE orders SET status='paid' WHERE order_id=%s", (f"o0-{RUN}",))  # VIP u: a notice
            c.execute("DELETE FROM orders WHERE order_id=%s", (f"pre-{RUN}",))  # delete + tombstone: nothing
        insert(dsn, f"pii-{RUN}", "acct-pii", "10.00", False, email="jane.doe@example.com")  # raw PII
        hb.start()
        wait_for(lambda: len([e for e in ledger(url) if e["effect"] != "x"]) >= 6, 240,
                 "ticket, hold and 4 notices in the tool ledger", procs)
        time.sleep(5)  # anything extra would show up now
        first = ledger(url)
        hb.stop_flag.set()
        yield {"tmp": tmp, "url": url, "dsn": dsn, "first_ledger": first, "job_args": job_args,
               "kafka": kafka_bootstrap, "procs": procs}
    finally:
        hb.stop_flag.set()
        for p in procs:
            p.stop()


def test_seed_story_from_database_rows(cdc_run):
    led = cdc_run["first_ledger"]
    effects = sorted(e["effect"] for e in led)
    assert effects == ["hold.place", "notice.send", "notice.send", "notice.send", "notice.send", "ticket.create"]
    assert [e["ref"] for e in led if e["effect"] == "hold.place"] == [f"HOLD-o2-{RUN}"]
    [b] = consume_breaches(cdc_run["kafka"])
    assert b["account_id"] == VIP and b["order_ids"] == [f"o0-{RUN}", f"o1-{RUN}", f"o2-{RUN}"]
    assert b["total_amount"] == "5500.50"
    ours = {a["idempotency_key"] for r in consume_json(cdc_run["kafka"], "agent.actions")
            if r["account_id"] == VIP for a in r["response"]["actions"]}
    receipts = [r for r in consume_json(cdc_run["kafka"], "agent.receipts") if r["idempotency_key"] in ours]
    assert sorted(r["ref"] for r in receipts) == sorted(e["ref"] for e in led)


def test_snapshot_delete_tombstone_and_raw_pii(cdc_run):
    traces = consume_json(cdc_run["kafka"], "agent.traces")
    pre = [t for t in traces if t["key"] == json.dumps({"order_id": f"pre-{RUN}"}, separators=(",", ":"))]
    # snapshot (r), delete (d) and tombstone: all no_action, none sent a notice
    assert sorted(t["outcome"] for t in pre) == ["no_action", "no_action", "no_action"]
    dlq = consume_json(cdc_run["kafka"], "ops.agent_dlq")
    [p] = [d for d in dlq if f"pii-{RUN}" in json.dumps(d)]
    assert p["reason"] == "pii_not_tokenized" and p["envelope"]["payload"]["after"]["email"] == "***"
    for topic in ("agent.traces", "ops.agent_dlq", "agent.actions", "agent.receipts", "agent.responses"):
        assert "jane.doe@example.com" not in json.dumps(consume_json(cdc_run["kafka"], topic))


def test_replay_from_the_beginning_makes_no_new_side_effect(cdc_run):
    """A second job with fresh state and a new group re-reads the whole topic: the same actions
    come again with the same idempotency keys, and the sink's outbox answers from its receipts."""
    tmp, kafka = cdc_run["tmp"], cdc_run["kafka"]
    responses_before = len(consume_json(kafka, "agent.responses"))
    job = Proc.python("jobs.agent_job", *cdc_run["job_args"], "--state", str(tmp / "job-replay"),
                      "--group-id", "cdc-replay", log=tmp / "job-replay.log")
    sink = Proc.python("sinks.action_sink", "--bootstrap-servers", kafka, "--tools-url", cdc_run["url"],
                       "--state", str(tmp / "sink"), "--group-id", "cdc-sink", log=tmp / "sink-replay.log")
    hb = Heartbeat(cdc_run["dsn"])
    hb.start()
    try:
        wait_for(lambda: len(consume_json(kafka, "agent.responses")) >= 2 * responses_before, 240,
                 "the replayed plans to reach the sink", [job, sink])
    finally:
        hb.stop_flag.set()
        job.stop()
        sink.stop()
    assert ledger(cdc_run["url"]) == cdc_run["first_ledger"]
