"""The DLQ tool's pure functions (selection, fixes, replayability, encoding) and its thin CLI."""
from __future__ import annotations

import io
import json
from decimal import Decimal
from types import SimpleNamespace

import fastavro
import pytest

from contracts import records
from contracts.avro import parsed_schema
from contracts.contract import load_contract
from contracts.idempotency import idempotency_key
from contracts.models import Action, Envelope
from contracts.outcomes import Reason
from jobs.gate import Gate
from sinks import dlq_tool as t
from tests.factories import T0, breach_env, cdc, line, order_row

CONTRACT = load_contract()
GATE = Gate(CONTRACT)
RAW_EMAIL = "jane.unit@example.com"
TOKEN = "tok_abcdefgh1"


def gate_dlq(raw: str, offset: int) -> dict:
    """The DLQ record the job writes for a line the gate rejects."""
    res = GATE.check(raw, offset)
    assert res.outcome == "dlq", res
    return records.dlq(res.position, res.reason, res.error, res.masked, CONTRACT.name)[1]


def governed_dlq(env_dict: dict, reason: Reason, offset: int, tool: str | None = None) -> dict:
    res = GATE.check(line(env_dict), offset)
    assert res.outcome == "pass", res
    env: Envelope = res.envelope
    key = idempotency_key(env.topic, env.key, env.ts_ms)
    action = None
    if tool == "SendNotice":
        action = Action(tool="SendNotice", idempotency_key=key,
                        args={"account_id": "a", "template": "vip-order-received"})
    elif tool == "PlacePaymentHold":
        action = Action(tool="PlacePaymentHold", idempotency_key=key, args={"order_id": "o3", "reason": "r"})
    elif tool == "CreateTicket":
        action = Action(tool="CreateTicket", idempotency_key=key, args={"summary": "s", "labels": ["risk"]})
    return records.dlq(records.position_of(env), reason, "over the limit", records.governed_envelope(env),
                       CONTRACT.name, idempotency_key=key, action=action)[1]


PII_ENV = cdc(T0 + 1000, "c", after=order_row("o-pii", "acct-pii", "1250.50", vip=True, email=RAW_EMAIL))
VIP_ENV = cdc(T0 + 2000, "c", after=order_row("o-vip", "acct-vip", "20.00", vip=True))
BREACH = breach_env(T0 + 3000, account="acct-r")
DELETE_ENV = {**cdc(T0 + 4000, "d", before=order_row("o-d", "acct-d", "30")), "schema": "v7"}


@pytest.fixture
def entries() -> list[t.Entry]:
    recs = [
        gate_dlq('{"topic":"cdc.public.orders","payload":{"email":"' + RAW_EMAIL + '"', 1),   # 1 malformed_json
        gate_dlq(line(PII_ENV), 2),                                                         # 2 pii_not_tokenized
        governed_dlq(BREACH, Reason.RATE_LIMITED, 3, "CreateTicket"),                       # 3 rate_limited
        governed_dlq(BREACH, Reason.RATE_LIMITED, 3, "PlacePaymentHold"),                   # 4 rate_limited
        governed_dlq(VIP_ENV, Reason.LATE, 4),                                              # 5 late
        gate_dlq(line({**VIP_ENV, "sensitivity": "Restricted"}), 5),                        # 6 sensitivity
        gate_dlq(line(cdc(T0, "c", after=order_row("o-amt", "acct-x", "lots"))), 6),        # 7 schema_violation
        gate_dlq(line(DELETE_ENV), 7),                                                      # 8 not_allowlisted
        gate_dlq("[1, 2]", 8),                                                              # 9 not_an_object
        governed_dlq(VIP_ENV, Reason.TOOL_FAILED, 9, "SendNotice"),                         # 10 tool_failed
    ]
    lines = [("dlq.jsonl:%d" % n, json.dumps(r)) for n, r in enumerate(recs, start=1)]
    lines.insert(3, ("dlq.jsonl:x", "   \n"))  # blank lines are skipped, not numbered
    return t.load_entries(lines)


def reasons(es):
    return [e.reason for e in es]


# -- reading and looking ------------------------------------------------------------------
def test_entries_are_numbered_from_one_in_order(entries):
    assert [e.index for e in entries] == list(range(1, 11))
    assert reasons(entries) == ["malformed_json", "pii_not_tokenized", "rate_limited", "rate_limited", "late",
                                "sensitivity_above_ceiling", "schema_violation", "not_allowlisted", "not_an_object",
                                "tool_failed"]


def test_an_unreadable_dlq_line_is_an_entry_of_its_own():
    es = t.load_entries([("f:1", "not json"), ("f:2", b'{"reason":"late","envelope":{}}'), ("f:3", "[1]")])
    assert [(e.index, e.reason) for e in es] == [(1, "unreadable"), (2, "late"), (3, "unreadable")]
    assert "not a JSON object" in t.list_line(es[0])
    plan = t.replay_plan(es[:1], [], CONTRACT)
    assert plan.refused and "not a JSON object" in plan.refused[0][1][0]


def test_list_line_shows_index_reason_source_key_tool_and_short_error(entries):
    row = t.list_line(entries[2])
    key = entries[2].idempotency_key
    assert row.split()[:3] == ["3", "rate_limited", "risk.order_threshold_breach/0/3"]
    assert key[:21] + "…" in row and "[CreateTicket]" in row and "over the limit" in row
    row = t.list_line(entries[0], error_width=20)
    assert row.split()[:4] == ["1", "malformed_json", "-/0/1", "-"] and row.endswith("…")
    assert all(RAW_EMAIL not in t.list_line(e) for e in entries)


def test_count_by_reason(entries):
    c = t.count_by_reason(entries)
    assert c["rate_limited"] == 2 and c["late"] == 1 and sum(c.values()) == 10


def test_find(entries):
    assert t.find(entries, 5).reason == "late"
    with pytest.raises(LookupError, match="no DLQ record #11"):
        t.find(entries, 11)


def test_select_ors_within_a_kind_and_ands_across_kinds(entries):
    assert [e.index for e in t.select(entries, ["rate_limited", "late"])] == [3, 4, 5]
    assert [e.index for e in t.select(entries, indexes=[2, 9])] == [2, 9]
    assert [e.index for e in t.select(entries, ["rate_limited"], [4, 5])] == [4]
    assert t.select(entries) == entries


# -- fixes ---------------------------------------------------------------------------------
def test_parse_fix_values():
    assert t.parse_fix(f"payload.after.email={TOKEN}") == t.Fix(("payload", "after", "email"), TOKEN)
    assert t.parse_fix("payload.after.vip_flag=true").value is True
    assert t.parse_fix("payload.after.amount=1200.50").value == Decimal("1200.50")
    assert t.parse_fix("payload.after.phone=null").value is None
    assert t.parse_fix('key={"order_id":"1"}').value == {"order_id": "1"}
    assert t.parse_fix('key={"order_id":"1"}', as_text=True).value == '{"order_id":"1"}'
    assert t.parse_fix("a=b=c").value == "b=c"
    assert t.parse_unset("payload.after.phone") == t.Fix(("payload", "after", "phone"), unset=True)
    for bad in ("no-equals", "=x", "a..b=1", ".a=1"):
        with pytest.raises(ValueError):
            t.parse_fix(bad)


def test_apply_fixes_sets_and_unsets_without_touching_the_original():
    env = {"payload": {"after": {"email": "***", "phone": "***"}, "list": [1, {"x": 2}]}, "key": "k"}
    out = t.apply_fixes(env, [t.parse_fix(f"payload.after.email={TOKEN}"), t.parse_unset("payload.after.phone"),
                              t.parse_fix("payload.list.1.x=3"), t.parse_fix("payload.list.0=7"),
                              t.parse_fix("sensitivity=Internal")])
    assert out == {"payload": {"after": {"email": TOKEN}, "list": [7, {"x": 3}]}, "key": "k",
                   "sensitivity": "Internal"}
    assert env["payload"]["after"] == {"email": "***", "phone": "***"}


@pytest.mark.parametrize("fix,msg", [
    ("payload.after.email=tok_x", "payload.after is null"),
    ("payload.nothing.email=tok_x", "payload.nothing is absent"),
    ("key.sub=1", "key is a str"),
])
def test_apply_fixes_never_invents_containers(fix, msg):
    env = {"key": "k", "payload": {"after": None}}
    with pytest.raises(t.FixError, match=msg):
        t.apply_fixes(env, [t.parse_fix(fix)])


def test_masked_paths():
    assert t.masked_paths({"a": "***", "b": {"c": ["x", "mail *** here"]}, "d": 1}) == ["a", "b.c.1"]
    assert t.masked_paths("***") == ["(value)"]


# -- replayability -----------------------------------------------------------------------------
def plan_for(entries, idx, *fixes, **kw):
    return t.replay_plan(t.select(entries, indexes=idx), list(fixes), CONTRACT, **kw)


def test_raw_text_of_a_malformed_line_is_refused(entries):
    plan = plan_for(entries, [1], t.parse_fix("topic=cdc.public.orders"))
    [(e, problems)] = plan.refused
    assert e.index == 1 and "raw text" in problems[0] and not plan.replays


def test_a_non_object_envelope_is_refused(entries):
    [(_, problems)] = plan_for(entries, [9]).refused  # the gate keeps a non-object line as text
    assert "raw text" in problems[0]
    [e] = t.load_entries([("f:1", json.dumps({"reason": "invalid_response", "envelope": [1, 2]}))])
    [(_, problems)] = t.replay_plan([e], [], CONTRACT).refused
    assert "a list, not an object" in problems[0]


def test_masked_pii_is_refused_until_fixed(entries):
    [(_, problems)] = plan_for(entries, [2]).refused
    assert problems[0].startswith("masked value(s) at payload.after.email")
    assert "--set payload.after.email=tok_" in problems[0]
    plan = plan_for(entries, [2], t.parse_fix(f"payload.after.email={TOKEN}"))
    [r] = plan.replays
    assert r.envelope["payload"]["after"]["email"] == TOKEN
    assert "partition" not in r.envelope and "offset" not in r.envelope  # a new record at a new position
    assert r.idempotency_key == idempotency_key(PII_ENV["topic"], PII_ENV["key"], PII_ENV["ts_ms"])
    # the fixed envelope passes the real gate
    assert GATE.check(t.to_line(r.envelope), 1).outcome == "pass"


def test_a_raw_value_as_fix_is_refused_and_never_echoed(entries):
    plan = plan_for(entries, [2], t.parse_fix("payload.after.email=someone@example.org"))
    [(_, problems)] = plan.refused
    text = " ".join(problems)
    assert "payload.after.email" in text and "someone@example.org" not in text


def test_governed_records_replay_as_is_one_envelope_per_key(entries):
    plan = plan_for(entries, [3, 4, 5, 10])
    assert [r.entry.index for r in plan.replays] == [3, 5]
    assert [(e.index, kept) for e, kept in plan.duplicates] == [(4, 3), (10, 5)]
    breach = plan.replays[0].envelope
    assert plan.replays[0].entry.envelope["offset"] == 3 and "offset" not in breach and "partition" not in breach
    assert breach["topic"] == BREACH["topic"] and breach["key"] == BREACH["key"] and breach["ts_ms"] == BREACH["ts_ms"]
    assert plan.replays[0].idempotency_key == plan.replays[0].entry.idempotency_key
    assert GATE.check(t.to_line(breach), 1).outcome == "pass"
    assert [r.entry.index for r in plan_for(entries, [3, 4], dedup=False).replays] == [3, 4]


def test_gate_rejections_need_a_fix_or_as_is(entries):
    [(_, problems)] = plan_for(entries, [7]).refused
    assert "schema_violation" in problems[0] and "--as-is" in problems[0]
    assert plan_for(entries, [7], as_is=True).replays  # e.g. after a contract change
    plan = plan_for(entries, [7], t.parse_fix("payload.after.amount=1200.00"))
    assert GATE.check(t.to_line(plan.replays[0].envelope), 1).outcome == "pass"


def test_sensitivity_and_allowlist_are_checked_against_the_contract(entries):
    [(_, problems)] = plan_for(entries, [6], as_is=True).refused
    assert problems == ["sensitivity Restricted is above the ceiling Confidential"]
    assert plan_for(entries, [6], t.parse_fix("sensitivity=Confidential")).replays
    [(_, problems)] = plan_for(entries, [8], as_is=True).refused
    assert problems == ["cdc.public.orders@v7 is not an input of contract streaming_agent@v1"]
    assert plan_for(entries, [8], t.parse_fix("schema=v2")).replays


def test_a_fix_that_changes_the_identity_of_a_governed_record_is_refused(entries):
    [(_, problems)] = plan_for(entries, [5], t.parse_fix(f"ts_ms={T0}")).refused
    assert "idempotency key" in problems[0]


def test_missing_and_mistyped_envelope_fields():
    rec = {"reason": "missing_field", "error": "envelope lacks field(s): key", "envelope": {
        "topic": "cdc.public.orders", "ts_ms": T0, "schema": "v2", "payload": VIP_ENV["payload"]}}
    [e] = t.load_entries([("f:1", json.dumps(rec))])
    [(_, problems)] = t.replay_plan([e], [], CONTRACT).refused
    assert problems == ["envelope lacks field(s) key: add them with --set"]
    plan = t.replay_plan([e], [t.parse_fix('key={"order_id":"o-vip"}', as_text=True)], CONTRACT)
    assert plan.replays[0].envelope["key"] == '{"order_id":"o-vip"}'
    [(_, problems)] = t.replay_plan([e], [t.parse_fix('key={"order_id":"o-vip"}')], CONTRACT).refused
    assert problems == ["envelope field(s) of the wrong type: key"]


# -- writing ----------------------------------------------------------------------------------
def test_to_json_keeps_decimal_text_and_unicode():
    got = t.to_json({"a": Decimal("1200.00"), "b": [1, None, True], "c": "é"})
    assert got == '{"a":1200.00,"b":[1,null,true],"c":"é"}'
    with pytest.raises(ValueError):
        t.to_json(Decimal("NaN"))


def test_kafka_record_of_a_cdc_envelope_is_its_payload_json():
    env = t.replay_envelope({**VIP_ENV, "partition": 3, "offset": 9, "sensitivity": "Internal"})
    rec = t.kafka_record(env, CONTRACT)
    assert (rec.topic, rec.key, rec.ts_ms) == ("cdc.public.orders", VIP_ENV["key"].encode(), VIP_ENV["ts_ms"])
    assert json.loads(rec.value) == VIP_ENV["payload"]
    assert ("schema", b"v2") in rec.headers and ("sensitivity", b"Internal") in rec.headers
    tomb = t.kafka_record({**VIP_ENV, "payload": None}, CONTRACT)
    assert tomb.value is None


def test_kafka_record_of_a_breach_is_schemaless_avro():
    rec = t.kafka_record(BREACH, CONTRACT)
    assert rec.key == b"acct-r"
    decoded = fastavro.schemaless_reader(io.BytesIO(rec.value), parsed_schema(), parsed_schema())
    assert decoded == BREACH["payload"]


class FakeFuture:
    def __init__(self, ok=True):
        self.ok = ok
        self.exception = None if ok else RuntimeError("broker said no")

    def failed(self):
        return not self.ok


class FakeProducer:
    def __init__(self, ok=True):
        self.sent, self.flushed, self.ok = [], False, ok

    def send(self, topic, **kw):
        self.sent.append((topic, kw))
        return FakeFuture(self.ok)

    def flush(self):
        self.flushed = True


def test_send_kafka_sends_each_replay_with_key_value_event_time_header(entries):
    plan = plan_for(entries, [3, 4, 5])
    p = FakeProducer()
    assert t.send_kafka(plan, p, CONTRACT) == 2 and p.flushed
    assert [(topic, kw["key"], dict(kw["headers"])["ts_ms"]) for topic, kw in p.sent] == [
        ("risk.order_threshold_breach", b"acct-r", str(BREACH["ts_ms"]).encode()),
        ("cdc.public.orders", VIP_ENV["key"].encode(), str(VIP_ENV["ts_ms"]).encode())]
    assert all("timestamp_ms" not in kw for _, kw in p.sent), "record timestamps stay produce time"
    with pytest.raises(RuntimeError, match="1 replay send"):
        t.send_kafka(plan_for(entries, [5]), FakeProducer(ok=False), CONTRACT)


class FakeConsumer:
    """Two partitions of a DLQ topic; records come in two polls, out of partition order."""

    def __init__(self, **config):
        assert config["isolation_level"] == "read_committed" and config["group_id"] is None
        self.config = config
        rec = lambda p, o, v: SimpleNamespace(partition=p, offset=o, value=v)  # noqa: E731
        self.polls = [{"tp1": [rec(1, 0, b'{"reason":"late","envelope":{}}')]},
                      {"tp0": [rec(0, 0, b'{"reason":"rate_limited","envelope":{}}'), rec(0, 1, b"garbage")]}]
        self.pos = {}
        self.closed = False

    def partitions_for_topic(self, topic):
        return {0, 1}

    def assign(self, tps):
        self.tps = tps

    def seek_to_beginning(self, *tps):
        self.pos = {tp: 0 for tp in tps}

    def end_offsets(self, tps):
        return {tp: (2 if tp.partition == 0 else 1) for tp in tps}

    def poll(self, timeout_ms):
        batch = self.polls.pop(0) if self.polls else {}
        for rs in batch.values():
            for r in rs:
                tp = next(tp for tp in self.tps if tp.partition == r.partition)
                self.pos[tp] = r.offset + 1
        return batch

    def position(self, tp):
        return self.pos[tp]

    def close(self):
        self.closed = True


def test_kafka_lines_reads_every_partition_from_the_beginning_until_caught_up():
    got = t.kafka_lines("b:9092", "ops.agent_dlq", idle_ms=10_000, consumer_factory=FakeConsumer)
    assert [w for w, _ in got] == ["ops.agent_dlq:0@0", "ops.agent_dlq:0@1", "ops.agent_dlq:1@0"]
    es = t.load_entries(got)
    assert [e.reason for e in es] == ["rate_limited", "unreadable", "late"]


# -- the CLI ------------------------------------------------------------------------------------
@pytest.fixture
def dlq_file(tmp_path, entries):
    p = tmp_path / "dlq.jsonl"
    p.write_text("".join(json.dumps(e.record) + "\n" for e in entries))
    return p


def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    rc = t.main([str(a) for a in args], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_cli_list_count_show(dlq_file):
    rc, out, _ = cli("list", "--dlq", dlq_file)
    assert rc == 0 and len(out.splitlines()) == 10 and out.splitlines()[4].split()[:2] == ["5", "late"]
    rc, out, _ = cli("--dlq", dlq_file, "count")  # input options before or after the command
    rows = [r.split() for r in out.splitlines()]
    assert rc == 0 and rows[0] == ["rate_limited", "2"] and rows[-1] == ["total", "10"]
    rc, out, _ = cli("show", "2", "--dlq", dlq_file)
    assert rc == 0 and json.loads(out)["reason"] == "pii_not_tokenized" and RAW_EMAIL not in out
    rc, _, err = cli("show", "42", "--dlq", dlq_file)
    assert rc == 2 and "no DLQ record #42" in err


def test_cli_replay_to_a_file(dlq_file, tmp_path):
    target = tmp_path / "replay.jsonl"
    rc, _, err = cli("replay", "--dlq", dlq_file, "--index", "2", "--set", f"payload.after.email={TOKEN}",
                     "--to-file", target)
    assert rc == 0, err
    [env] = [json.loads(x, parse_float=Decimal) for x in target.read_text().splitlines()]
    assert env["payload"]["after"]["email"] == TOKEN and env["payload"]["after"]["amount"] == "1250.50"
    assert "replayed #2 (pii_not_tokenized)" in err and "1 replayed, 0 duplicate(s) skipped, 0 refused" in err


def test_cli_replay_reports_refusals_and_duplicates(dlq_file, tmp_path):
    target = tmp_path / "replay.jsonl"
    rc, _, err = cli("replay", "--dlq", dlq_file, "--reason", "rate_limited", "--reason", "pii_not_tokenized",
                     "--to-file", target)
    assert rc == 1
    assert "refused #2 (pii_not_tokenized): masked value(s)" in err and "skipped #4 (rate_limited)" in err
    assert len(target.read_text().splitlines()) == 1  # the replayable ones are still written
    rc, out, err = cli("replay", "--dlq", dlq_file, "--reason", "late", "--to-file", "-")
    assert rc == 0 and json.loads(out)["topic"] == "cdc.public.orders"
    rc, out, err = cli("replay", "--dlq", dlq_file, "--reason", "late", "--dry-run")
    assert rc == 0 and out == "" and "would replay #5" in err


def test_cli_replay_usage_errors(dlq_file):
    assert cli("replay", "--dlq", dlq_file, "--to-file", "x")[0] == 2                       # no selection
    assert cli("replay", "--dlq", dlq_file, "--reason", "nope", "--to-file", "x")[0] == 2   # nothing selected
    assert cli("replay", "--dlq", dlq_file, "--reason", "late")[0] == 2                      # nowhere to go
    assert cli("replay", "--dlq", dlq_file, "--all", "--set", "oops", "--to-file", "x")[0] == 2
    with pytest.raises(SystemExit):
        cli("list")  # neither --dlq nor --bootstrap-servers
    rc, _, err = cli("list", "--dlq", dlq_file.parent / "missing.jsonl")
    assert rc == 2 and "cannot read the DLQ" in err


# -- against a real broker (tests/conftest.py starts it) -------------------------------------------


@pytest.mark.kafka
def test_kafka_round_trip_reads_committed_dlq_records_and_replays_to_the_envelope_topics(kafka_bootstrap, tmp_path):
    """DLQ records in a topic (one committed transaction, one aborted) -> list -> replay -> envelope topics."""
    import subprocess
    import sys
    import uuid

    import yaml
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from contracts.contract import CONTRACTS_DIR
    from tests.sinks.conftest import REPO

    u = uuid.uuid4().hex[:10]
    dlq_topic, orders, breaches = f"dlqtest-{u}.dlq", f"dlqtest-{u}.orders", f"dlqtest-{u}.breach"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1)
                             for n, p in ((dlq_topic, 2), (orders, 1), (breaches, 1))])
    finally:
        admin.close()
    # a contract whose inputs are this test's topics, so the shared cdc/risk topics stay untouched
    c = yaml.safe_load((CONTRACTS_DIR / "streaming_agent_v1.yaml").read_text())
    c["inputs"] = [{**c["inputs"][0], "topic": breaches}, {**c["inputs"][1], "topic": orders}]
    c["output"]["tools_by_input"] = {f"{breaches}@v3": ["CreateTicket", "PlacePaymentHold"],
                                     f"{orders}@v2": ["SendNotice"]}
    contract_path = tmp_path / "c.yaml"
    contract_path.write_text(yaml.safe_dump(c))
    (tmp_path / "schemas").symlink_to(CONTRACTS_DIR / "schemas")
    contract = load_contract(contract_path)
    gate = Gate(contract)

    def dlq_record(env, reason, tool):
        res = gate.check(line(env), 1)
        assert res.outcome == "pass", res
        key = idempotency_key(res.envelope.topic, res.envelope.key, res.envelope.ts_ms)
        action = Action(tool=tool, idempotency_key=key, args={"account_id": "a", "template": "t"}
                        if tool == "SendNotice" else {"order_id": "o3", "reason": "r"})
        return records.dlq(records.position_of(res.envelope), reason, "over the limit",
                           records.governed_envelope(res.envelope), contract.name, idempotency_key=key,
                           action=action)[1]

    vip = {**VIP_ENV, "topic": orders}
    breach = {**BREACH, "topic": breaches}
    committed = [dlq_record(vip, Reason.RATE_LIMITED, "SendNotice"),
                 dlq_record(breach, Reason.RATE_LIMITED, "PlacePaymentHold")]
    aborted = dlq_record({**vip, "ts_ms": vip["ts_ms"] + 1}, Reason.RATE_LIMITED, "SendNotice")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"dlqtest-{u}",
                             value_serializer=lambda v: json.dumps(v).encode())
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for n, rec in enumerate(committed):
            producer.send(dlq_topic, value=rec, partition=n % 2)
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(dlq_topic, value=aborted, partition=0)
        producer.flush()
        producer.abort_transaction()
    finally:
        producer.close()

    def tool(*args):
        return subprocess.run([sys.executable, "-m", "sinks.dlq_tool", *args, "--bootstrap-servers", kafka_bootstrap,
                               "--topic", dlq_topic, "--idle-ms", "5000"], cwd=REPO, capture_output=True,
                              text=True, timeout=120)

    listed = tool("list")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2, listed.stdout  # the aborted record is not read
    replayed = tool("replay", "--reason", "rate_limited", "--contract", str(contract_path))
    assert replayed.returncode == 0, replayed.stderr
    assert "2 replayed" in replayed.stderr

    consumer = KafkaConsumer(orders, breaches, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=5_000)
    try:
        got = {r.topic: r for r in consumer}
    finally:
        consumer.close()
    assert set(got) == {orders, breaches}
    o = got[orders]
    assert o.key == vip["key"].encode() and ("ts_ms", str(vip["ts_ms"]).encode()) in o.headers
    assert json.loads(o.value)["after"]["order_id"] == "o-vip" and ("schema", b"v2") in o.headers
    b = got[breaches]
    assert b.key == b"acct-r" and ("ts_ms", str(BREACH["ts_ms"]).encode()) in b.headers
    assert fastavro.schemaless_reader(io.BytesIO(b.value), parsed_schema(), parsed_schema()) == BREACH["payload"]
