"""Exactly-once through a crash: SIGKILL the job mid-stream, restart from its last retained
checkpoint, and the committed agent.actions topic holds every expected action exactly once."""
import json
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.factories import T0, cdc, order_row
from tests.kafka_helpers import consume_json
from tests.oracles import actions_oracle
from tests.procs import Proc, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.flink]
PARTITIONS = 3


def stream(first: int, count: int) -> list[dict]:
    """VIP orders of 12 accounts, every 4th one high-value: notices and some breaches."""
    envs = []
    for i in range(first, first + count):
        acct = f"acct-{i % 12}"
        amount = "1500.00" if i % 4 == 0 else "20.00"
        envs.append(cdc(T0 + i * 5_000, "c", after=order_row(f"x{i}", acct, amount, vip=True)))
    return envs


def produce(bootstrap: str, envs: list[dict], tick_ts: int) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for e in envs:
        p.send(e["topic"], key=e["key"].encode(), value=json.dumps(e["payload"]).encode(),
               headers=[("schema", b"v2")])
    for part in range(PARTITIONS):  # a newer, non-actionable record per partition releases the tail
        tick = cdc(tick_ts, "c", after=order_row(f"tick-{tick_ts}-{part}", "acct-tick", "1.00"))
        p.send("cdc.public.orders", key=tick["key"].encode(), value=json.dumps(tick["payload"]).encode(),
               partition=part)
    p.flush()
    p.close()


def latest_checkpoint(state: Path) -> str | None:
    chks = [d for d in (state / "checkpoints").glob("*/chk-*") if (d / "_metadata").exists()]
    return str(max(chks, key=lambda d: int(d.name.split("-")[1]))) if chks else None


def test_actions_exactly_once_across_a_crash(kafka_bootstrap, tmp_path):
    first, second = stream(0, 240), stream(240, 240)
    expected, limited = actions_oracle(first + second, limit=120)
    assert not limited and len(expected) > 300
    state = tmp_path / "job-state"
    args = ["--bootstrap-servers", kafka_bootstrap, "--state", str(state), "--group-id", "eo",
            "--checkpoint-interval-ms", "1000", "--topic-pattern", r"cdc\.public\.orders"]

    produce(kafka_bootstrap, first, T0 + 240 * 5_000 + 60_000)
    job = Proc.python("jobs.agent_job", *args, log=tmp_path / "job1.log")
    try:
        wait_for(lambda: consume_json(kafka_bootstrap, "agent.actions"), 240, "first committed actions", [job])
        wait_for(lambda: latest_checkpoint(state), 60, "a completed checkpoint", [job], every_s=0.5)
    finally:
        job.kill()  # SIGKILL of the job's whole process group: JVM, Python workers, driver
    committed_before = len(consume_json(kafka_bootstrap, "agent.actions"))
    chk = latest_checkpoint(state)
    assert chk, "the job retained no checkpoint"

    produce(kafka_bootstrap, second, T0 + 480 * 5_000 + 60_000)
    job = Proc.python("jobs.agent_job", *args, "--from-checkpoint", chk, log=tmp_path / "job2.log")
    try:
        def all_actions():
            recs = consume_json(kafka_bootstrap, "agent.actions")
            got = [(a["tool"], a["idempotency_key"]) for r in recs for a in r["response"]["actions"]]
            return got if len(set(got)) >= len(expected) else None

        got = wait_for(all_actions, 300, f"{len(expected)} actions after the restart", [job])
    finally:
        job.stop()
    dupes = [k for k, n in Counter(got).items() if n > 1]
    assert not dupes, f"{len(dupes)} actions committed twice, e.g. {dupes[:3]}"
    assert set(got) == expected
    assert 0 < committed_before < len(expected), "the crash should happen mid-stream"
