"""The standalone sink process against a real Kafka broker and the sandbox over HTTP (the `kafka_bootstrap`
fixture of tests/conftest.py starts a fresh broker for this module). Topics and keys are unique per run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import requests

from sinks.outbox import open_outbox
from tests.sinks.conftest import REPO
from tests.sinks.fakes import action_value
from tests.sinks.helpers import effects, hold, notice, ticket, wait_until

pytestmark = pytest.mark.kafka
OUTPUTS = ("agent.receipts", "agent.responses", "ops.agent_dlq", "agent.traces")
EFFECT = {"CreateTicket": "ticket.create", "PlacePaymentHold": "hold.place", "SendNotice": "notice.send"}


def _ensure_topics(servers: str, names: list[str], partitions: int = 1) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=servers)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names if n not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def _sink_cmd(servers: str, topic: str, group: str, sandbox, state: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sinks.action_sink", "--bootstrap-servers", servers, "--topic", topic,
            "--group-id", group, "--tools-url", sandbox.url, "--state", str(state), "--exit-when-idle-s", "5",
            *extra]


def _run_sink(servers: str, topic: str, group: str, sandbox, state: Path, *extra: str) -> dict:
    proc = subprocess.run(_sink_cmd(servers, topic, group, sandbox, state, "--max-in-flight", "10", *extra),
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


def _produce(servers: str, topic: str, values: list[tuple[str, bytes]], partition_of=None) -> list[tuple[int, int]]:
    """Send the values; their (partition, offset)s."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=servers)
    futures = [producer.send(topic, key=key.encode(), value=value,
                             partition=partition_of(i) if partition_of else None)
               for i, (key, value) in enumerate(values)]
    producer.flush()
    producer.close()
    return [(md.partition, md.offset) for md in (f.get(timeout=30) for f in futures)]


def _committed(servers: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    c = KafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    try:
        return {p: c.committed(TopicPartition(topic, p)) or 0 for p in range(partitions)}
    finally:
        c.close()


def _with_account(key: str, actions: list, offset: int, account: str) -> bytes:
    value = json.loads(action_value(key, actions, offset))
    value["account_id"] = account
    return json.dumps(value).encode()


def test_sink_process_executes_once_and_commits_after_outputs(kafka_bootstrap, sandbox, tmp_path):
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
    assert _committed(kafka_bootstrap, group, topic, 1) == {0: 3}

    # the same group again: nothing left to handle; a new group replays the topic without new effects
    assert _run_sink(kafka_bootstrap, topic, group, sandbox, tmp_path / "state")["records"] == 0
    assert _run_sink(kafka_bootstrap, topic, group + "-replay", sandbox, tmp_path / "state")["records"] == 3
    assert sandbox.ledger() == ledger


IN_FLIGHT = 64


@pytest.mark.parametrize("sandbox", [("--latency-ms", "400", "--jitter-ms", "150")], indirect=True)
def test_sigkill_with_64_calls_in_flight_then_exactly_one_effect_and_receipt_each(kafka_bootstrap, sandbox,
                                                                                  tmp_path):
    """300 plans (notices, ticket + hold breaches, several plans per account) over 2 partitions; the sink is
    SIGKILLed while 64 tool calls are in flight (the sandbox goes on with their work: effects without
    receipts). Right then, every record below the committed offsets already has its trace (commits only
    below the lowest unfinished record). After a restart every action has exactly one effect in the ledger,
    one receipted outbox row and one distinct receipt."""
    run = uuid.uuid4().hex[:8]
    topic, group = f"agent.actions.crash-{run}", f"sink-crash-{run}"
    _ensure_topics(kafka_bootstrap, [topic], partitions=2)
    _ensure_topics(kafka_bootstrap, list(OUTPUTS))
    values, expected = [], set()
    for i in range(300):
        key, account = f"idem-{run}-{i}", f"acct-{i % 120}"
        plan = [ticket(key, f"o-{run}-{i}"), hold(key, f"o-{run}-{i}")] if i % 3 == 0 else [notice(key, account)]
        values.append((account, _with_account(key, plan, i, account)))
        expected |= {(EFFECT[a.tool], key) for a in plan}
    positions = _produce(kafka_bootstrap, topic, values, partition_of=lambda i: i % 2)
    keys = {json.loads(v)["idempotency_key"] for _, v in values}
    state = tmp_path / "state"

    proc = subprocess.Popen(_sink_cmd(kafka_bootstrap, topic, group, sandbox, state,
                                      "--max-in-flight", str(IN_FLIGHT), "--flush-interval-ms", "20"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(sandbox.ledger()) >= 80 and sandbox.stats()["inflight"] == IN_FLIGHT,
                   "64 calls in flight with work already done", timeout_s=120)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    committed = _committed(kafka_bootstrap, group, topic, 2)
    traced = {(t["partition"], t["offset"]) for t in _read(kafka_bootstrap, keys)["agent.traces"]}
    offsets_by_part = defaultdict(list)
    for i, (part, off) in enumerate(positions):
        offsets_by_part[part].append((off, i))
    for part, offs in offsets_by_part.items():
        below = [i for off, i in offs if off < committed[part]]
        assert all((0, i) in traced for i in below), f"partition {part}: committed past an unfinished record"
    ledger_at_kill = sandbox.settled()  # the in-flight calls finish their work at the tool
    assert 80 <= len(ledger_at_kill) < len(expected)
    box = open_outbox(state)
    in_doubt = [r for r in box.rows() if r.state == "sent"]
    box.close()
    assert len(in_doubt) >= IN_FLIGHT // 2, "the kill should leave calls without receipts"
    assert sum(committed.values()) < len(values)

    stats = _run_sink(kafka_bootstrap, topic, group, sandbox, state, "--max-in-flight", str(IN_FLIGHT))
    assert stats["records"] >= len(values) - sum(committed.values())  # everything not committed came back
    assert Counter(effects(sandbox.settled())) == Counter({e: 1 for e in expected})
    box = open_outbox(state)
    rows = box.rows()
    box.close()
    assert len(rows) == len(expected) and {r.state for r in rows} == {"receipted"}
    out = _read(kafka_bootstrap, keys)
    distinct = {(r["tool"], r["idempotency_key"], r["ref"]) for r in out["agent.receipts"]}
    assert Counter((EFFECT[t], k) for t, k, _ in distinct) == Counter({e: 1 for e in expected})
    assert {(r.tool, r.idempotency_key, r.receipt.ref) for r in rows} == distinct
    assert {(t["partition"], t["offset"]) for t in out["agent.traces"]} == {(0, i) for i in range(300)}
    assert {t["outcome"] for t in out["agent.traces"]} == {"processed"}


def _scrape(url: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in requests.get(url, timeout=5).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@pytest.mark.parametrize("sandbox", [("--latency-ms", "20", "--rate-limit", "messages=40", "--burst", "5")],
                         indirect=True)
def test_metrics_and_health_show_429s_circuits_limits_and_stalls(kafka_bootstrap, sandbox, tmp_path):
    run = uuid.uuid4().hex[:8]
    topic, group = f"agent.actions.metrics-{run}", f"sink-metrics-{run}"
    _ensure_topics(kafka_bootstrap, [topic, *OUTPUTS])
    notices = [(f"n-{run}-{i}", [notice(f"n-{run}-{i}", f"acct-{i}")]) for i in range(60)]
    breaches = [(f"b-{run}-{i}", [ticket(f"b-{run}-{i}", f"o-{i}"), hold(f"b-{run}-{i}", f"o-{i}")]) for i in range(4)]
    sandbox.faults(fail_paths={"/payments/holds": 503})  # holds keep failing: their circuit opens
    _produce(kafka_bootstrap, topic, [(k, action_value(k, p, i)) for i, (k, p) in enumerate(notices + breaches)])
    proc = subprocess.Popen(_sink_cmd(kafka_bootstrap, topic, group, sandbox, tmp_path / "state",
                                      "--max-in-flight", "32", "--circuit-failures", "3", "--circuit-open-s", "0.5",
                                      "--max-attempts", "4", "--health-stall-s", "1.5", "--exit-when-idle-s", "60",
                                      "--tool-concurrency", "SendNotice=4"),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        seen_open = wait_until(lambda: _scrape(urls["metrics"]).get(
            'agent_sink_circuit_state{tool="PlacePaymentHold"}') == 2, "the holds' circuit to open")
        assert seen_open
        health = requests.get(urls["health"], timeout=5)
        assert health.status_code == 200 and health.json()["circuits"]["PlacePaymentHold"] in ("open", "half_open")
        assert health.json()["status"] == "degraded"

        def settled() -> dict[str, float] | None:
            m = _scrape(urls["metrics"])
            done = m.get('agent_sink_actions_total{status="executed",tool="SendNotice"}', 0) == 60 and \
                m.get('agent_sink_actions_total{status="failed",tool="PlacePaymentHold"}', 0) == 4
            return m if done else None
        m = wait_until(settled, "every action settled", timeout_s=60)
        assert m['agent_sink_throttled_total{tool="SendNotice"}'] > 0           # 429s, waited out
        assert 1 <= sandbox.stats()["max_inflight_by_api"]["messages"] <= 4    # the tool's own limit held
        assert m['agent_sink_actions_total{status="compensated",tool="CreateTicket"}'] == 4
        assert m['agent_sink_tool_call_seconds_count{tool="SendNotice"}'] >= 60
        assert m["agent_sink_outbox_batch_ops_count"] > 0 and m["agent_sink_outbox_batch_ops_sum"] > m[
            "agent_sink_outbox_batch_ops_count"]                               # group commits of several ops
        # A record leaves the pending set once its outputs are flushed, just after its actions settle.
        assert wait_until(lambda: (lambda x: x["agent_sink_consumer_lag_records"] == 0
                                   and x["agent_sink_pending_records"] == 0)(_scrape(urls["metrics"])),
                          "no record pending, no lag", timeout_s=10)
        # holds retried within their budget while the circuit allowed: far fewer calls than plans x attempts
        assert sandbox.requests_to("/payments/holds") <= 4 * 4

        sandbox.faults(reset=True, latency_ms=4000)  # every call now takes 4 s: work waits, nothing finishes
        _produce(kafka_bootstrap, topic, [(f"s-{run}", action_value(f"s-{run}", [notice(f"s-{run}")], 99))])
        def stall() -> dict | None:  # (a 503 Response is falsy)
            r = requests.get(urls["health"], timeout=5)
            return r.json() if r.status_code == 503 else None
        stalled = wait_until(stall, "health to report the stall", timeout_s=30)
        assert stalled["status"] == "stalled" and stalled["pending_records"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0
