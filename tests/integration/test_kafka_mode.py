"""Kafka mode against a real broker: the demo scenario equals its file-mode result, with the JVM prefilter
(the default) and with every record through the Python gate."""
import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaProducer

from jobs.scenario_loader import load
from tests.factories import MINUTE, T0, cdc, order_row
from tests.jobrun import SCENARIO
from tests.kafka_helpers import consume_breaches, consume_json
from tests.infra import local
from tests.procs import Proc, start_sandbox, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.flink]
GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "golden" / "orders_scenario.expected.json").read_text())


def start_job(bootstrap: str, tmp: Path, group: str, *extra: str, log: str = "job.log") -> Proc:
    return Proc.python("jobs.agent_job", "--bootstrap-servers", bootstrap, "--state", str(tmp / "job-state"),
                       "--group-id", group, "--checkpoint-interval-ms", "1000", *extra, log=tmp / log)


def start_sink(bootstrap: str, tmp: Path, tools_url: str, group: str) -> Proc:
    return Proc.python("sinks.action_sink", "--bootstrap-servers", bootstrap, "--tools-url", tools_url,
                       "--state", str(tmp / "sink-state"), "--group-id", group, log=tmp / "sink.log")


TICK = "tick-"


def is_tick(rec: dict) -> bool:
    return TICK in (rec.get("key") or "")


class Ticker(threading.Thread):
    """Non-actionable orders on partition 1, each later in event time: they keep the watermark moving
    if every partition goes idle at once (a stall we saw once on the cluster). Left out of the checks."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.stop_flag, self.ts = bootstrap, threading.Event(), T0 + 10 * MINUTE

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            while not self.stop_flag.wait(5.0):
                self.ts += 1_000
                env = cdc(self.ts, "c", after=order_row(f"{TICK}{self.ts}", "acct-tick", "1.00"))
                producer.send(env["topic"], key=env["key"].encode(), value=json.dumps(env["payload"]).encode(),
                              headers=[("ts_ms", str(self.ts).encode())], partition=1)
                producer.flush()
        finally:
            producer.close()


@pytest.fixture(scope="module", params=["--jvm-prefilter", "--no-jvm-prefilter"], ids=["jvm-prefilter", "all-python"])
def demo_run(request, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kafka-demo")
    kafka_bootstrap = local.start_kafka(fresh=True)["bootstrap"]  # empty topics for each pipeline
    produced = load(SCENARIO, kafka_bootstrap, partition=0)
    sandbox, url = start_sandbox(tmp)
    job = start_job(kafka_bootstrap, tmp, "demo", request.param)
    sink = start_sink(kafka_bootstrap, tmp, url, "demo-sink")
    procs = [sandbox, job, sink]
    ticker = Ticker(kafka_bootstrap)
    ticker.start()
    try:
        expected_traces = len(GOLDEN["traces"])
        wait_for(lambda: len([t for t in consume_json(kafka_bootstrap, "agent.traces") if not is_tick(t)])
                 >= expected_traces, 300, f"{expected_traces} traces", procs)
        wait_for(lambda: len(consume_json(kafka_bootstrap, "agent.receipts")) >= len(GOLDEN["receipts"]), 60,
                 "receipts", procs)
        out = {t: [r for r in consume_json(kafka_bootstrap, t) if not is_tick(r)] for t in
               ("agent.traces", "ops.agent_dlq", "agent.actions", "agent.receipts", "agent.responses")}
        out["breaches"] = consume_breaches(kafka_bootstrap)
        yield produced, out, tmp, request.param
    finally:
        ticker.stop_flag.set()
        for p in procs:
            p.stop()


def test_demo_through_kafka_equals_file_mode(demo_run):
    _, out, _, _ = demo_run
    assert out["breaches"] == GOLDEN["breaches"]
    planned = sorted((a["tool"], json.dumps(a["args"], sort_keys=True), a["idempotency_key"])
                     for r in out["agent.actions"] for a in r["response"]["actions"])
    golden_actions = sorted((a["tool"], json.dumps(a["args"], sort_keys=True), a["idempotency_key"])
                            for a in GOLDEN["actions"])
    assert planned == golden_actions
    receipts = sorted((r["tool"], r["ref"], r["idempotency_key"], r["ok"]) for r in out["agent.receipts"])
    assert receipts == sorted((r["tool"], r["ref"], r["idempotency_key"], r["ok"]) for r in GOLDEN["receipts"])
    assert Counter(d["reason"] for d in out["ops.agent_dlq"]) == Counter(d["reason"] for d in GOLDEN["dlq"])
    outcomes = Counter((t["outcome"], t.get("reason"), t["idempotency_key"]) for t in out["agent.traces"])
    golden_outcomes = Counter((t["outcome"], t.get("reason"), t["idempotency_key"]) for t in GOLDEN["traces"])
    assert outcomes == golden_outcomes
    assert sorted(r["receipts"] for r in out["agent.responses"]) == sorted(r["receipts"] for r in GOLDEN["responses"])


def test_only_the_prefilter_pipeline_settles_records_on_the_jvm(demo_run):
    _, out, _, pipeline = demo_run
    via_jvm = [t for t in out["agent.traces"] if t.get("via") == "jvm-prefilter"]
    assert all(t["outcome"] == "no_action" for t in via_jvm)
    assert bool(via_jvm) == (pipeline == "--jvm-prefilter"), pipeline


def test_traces_carry_the_produced_partition_offset_and_event_time(demo_run):
    produced, out, _, _ = demo_run
    by_pos = {(t["topic"], t["partition"], t["offset"]): t for t in out["agent.traces"] if not t.get("derived")}
    lines = [line for line in SCENARIO.read_text().splitlines() if line.strip()]
    assert len(by_pos) == len(produced) == len(lines)
    for line, rec in zip(lines, produced):
        t = by_pos[(rec["topic"], rec["partition"], rec["offset"])]
        try:
            env = json.loads(line)
        except ValueError:
            continue  # the truncated line has no event time of its own
        assert t["ts_ms"] == env["ts_ms"], (rec, t)
        assert t["key"] == env["key"]
