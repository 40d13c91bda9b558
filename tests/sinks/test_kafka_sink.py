"""The standalone sink process against a real Kafka broker (the `kafka_bootstrap` fixture of
tests/conftest.py starts a fresh one for this module). Topics and keys are unique per run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.sinks.conftest import REPO
from tests.sinks.fakes import action_value
from tests.sinks.helpers import effects, hold, notice, ticket, wait_until

pytestmark = pytest.mark.kafka
OUTPUTS = ("agent.receipts", "agent.responses", "ops.agent_dlq", "agent.traces")


def _ensure_topics(servers: str, names: list[str]) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=servers)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, num_partitions=1, replication_factor=1) for n in names if n not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def _sink_cmd(servers: str, topic: str, group: str, sandbox, state: Path) -> list[str]:
    return [sys.executable, "-m", "sinks.action_sink", "--bootstrap-servers", servers, "--topic", topic,
            "--group-id", group, "--tools-url", sandbox.url, "--state", str(state), "--max-in-flight", "10",
            "--exit-when-idle-s", "5"]


def _run_sink(servers: str, topic: str, group: str, sandbox, state: Path) -> dict:
    proc = subprocess.run(_sink_cmd(servers, topic, group, sandbox, state),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _read(servers: str, keys: set[str]) -> dict[str, list[dict]]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(*OUTPUTS, bootstrap_servers=servers, auto_offset_reset="earliest",
                      isolation_level="read_committed", enable_auto_commit=False, consumer_timeout_ms=5000,
                      group_id=None)
    got: dict[str, list[dict]] = {t: [] for t in OUTPUTS}
    for m in c:
        rec = json.loads(m.value)
        if rec.get("idempotency_key") in keys or (rec.get("idempotency_key") or "").removeprefix("comp-") in keys:
            got[m.topic].append(rec)
    c.close()
    return got


def _produce(servers: str, topic: str, values: list[tuple[str, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=servers)
    for key, value in values:
        producer.send(topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()


def test_sink_process_executes_once_and_commits_after_outputs(kafka_bootstrap, sandbox, tmp_path):
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    run = uuid.uuid4().hex[:8]
    topic, group = f"agent.actions.test-{run}", f"sink-test-{run}"
    keys = [f"idem-{run}-{i}" for i in range(3)]
    _ensure_topics(kafka_bootstrap, [topic, *OUTPUTS])
    plans = [[ticket(keys[0], f"o-{run}"), hold(keys[0], f"o-{run}")], [notice(keys[1])], [notice(keys[2])]]
    _produce(kafka_bootstrap, topic, [(keys[i], action_value(keys[i], plan, i)) for i, plan in enumerate(plans)])

    stats = _run_sink(kafka_bootstrap, topic, group, sandbox, tmp_path / "state")
    assert stats["records"] == 3
    out = _read(kafka_bootstrap, set(keys))
    assert len(out["agent.traces"]) == 3 and {t["outcome"] for t in out["agent.traces"]} == {"processed"}
    assert len(out["agent.receipts"]) == 4 and len(out["agent.responses"]) == 3
    ledger = sandbox.ledger()
    assert sorted(effects(ledger)) == sorted([("ticket.create", keys[0]), ("hold.place", keys[0]),
                                              ("notice.send", keys[1]), ("notice.send", keys[2])])

    c = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    assert c.committed(TopicPartition(topic, 0)) == 3
    c.close()

    # the same group again: nothing left to handle; a new group replays the topic without new effects
    assert _run_sink(kafka_bootstrap, topic, group, sandbox, tmp_path / "state")["records"] == 0
    assert _run_sink(kafka_bootstrap, topic, group + "-replay", sandbox, tmp_path / "state")["records"] == 3
    assert sandbox.ledger() == ledger


def test_sink_process_killed_mid_batch_resumes_without_second_effects(kafka_bootstrap, sandbox, tmp_path):
    run = uuid.uuid4().hex[:8]
    topic, group = f"agent.actions.crash-{run}", f"sink-crash-{run}"
    keys = [f"idem-{run}-{i}" for i in range(12)]
    _ensure_topics(kafka_bootstrap, [topic, *OUTPUTS])
    _produce(kafka_bootstrap, topic, [(k, action_value(k, [ticket(k, f"o-{k}")], i)) for i, k in enumerate(keys)])
    sandbox.faults(latency_ms=200)  # slow enough to be killed mid-batch

    proc = subprocess.Popen(_sink_cmd(kafka_bootstrap, topic, group, sandbox, tmp_path / "state"), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(sandbox.ledger()) >= 3, "the sink to call the tool", timeout_s=120)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert len(sandbox.ledger()) < len(keys)  # killed before the batch was done and committed

    sandbox.faults(reset=True)
    stats = _run_sink(kafka_bootstrap, topic, group, sandbox, tmp_path / "state")
    assert stats["records"] == len(keys)  # the uncommitted batch came back whole
    assert sorted(effects(sandbox.settled())) == sorted(("ticket.create", k) for k in keys)
    out = _read(kafka_bootstrap, set(keys))
    assert {t["idempotency_key"] for t in out["agent.traces"]} == set(keys)
    assert {r["idempotency_key"] for r in out["agent.receipts"]} == set(keys)
