"""Poison records on the real input topic: each is DLQ'd and traced, and the job keeps running.

(The job alone runs here: it traces what it settles itself, and hands the actions of the rest to
agent.actions, where the sink, not started, would execute and trace them.)

The records that stopped file mode (lone surrogates, 64-bit overflows, huge amounts, a year-3000
claim, PII in ids and the key, duplicate keys, bytes that are not UTF-8) are produced to
cdc.public.orders, then valid VIP orders behind them. With the JVM prefilter and without it: every
record has its trace with the expected reason, the VIP orders get their actions, the job never
restarts, and no raw PII value is in any output topic.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.factories import T0, cdc, order_row
from tests.infra import local
from tests.kafka_helpers import consume
from tests.procs import Proc, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.flink]
YEAR_3000 = 32503680000000
PII = ["jane.doe@example.com", "jane.roe@example.com", "+33 6 12 34 56 78"]


def value(env: dict) -> bytes:
    return json.dumps(env["payload"], separators=(",", ":")).encode()


def vip(oid: str, acct: str, ts: int) -> dict:
    return cdc(ts, "c", after=order_row(oid, acct, "250.00", vip=True))


def poison() -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]], str, str | None]]:
    """(key, value, headers, expected outcome, expected reason) in produce order."""
    ok = vip("o-ok", "acct-ok", T0)
    big = [cdc(T0 + 10 + i, "c", after=order_row(f"o-big{i}", "acct-big", "0")) for i in range(3)]
    dup = value(vip("o-dup", "acct-dup", T0 + 20)).replace(b'"op":"c"', b'"op":"c","op":"d"')
    cr = value(vip("o-cr", "acct-cr", T0 + 30)).replace(b',"source":', b',\r"source":')
    return [
        (b'{"id":"\xff\xfe"}', value(ok), [], "dlq", "invalid_text"),
        (b'{"id":"o-s"}', value(vip("o-s", "acct-s", T0 + 1)).replace(b'"acct-s"', b'"acct-\\ud800"'), [],
         "dlq", "invalid_text"),
        (b'{"id":"o-ts"}', value(vip("o-ts", "acct-ts", T0 + 2)).replace(b'"ts_ms":1767225600002', b'"ts_ms":'
                                                                           + str(2**63).encode(), 1),
         [("ts_ms", str(T0 + 2).encode())], "dlq", "number_out_of_range"),
        *[(big[i]["key"].encode(), value(big[i]).replace(b'"amount":"0"', b'"amount":1e26'), [], "dlq",
           "number_out_of_range") for i in range(3)],
        (b'{"id":"o-pa"}', value(vip("o-pa", "jane.doe@example.com", T0 + 40)), [], "dlq", "pii_not_tokenized"),
        (b'{"id":"jane.roe@example.com"}', value(vip("o-pk", "acct-pk", T0 + 41)), [], "dlq", "pii_not_tokenized"),
        (b'{"id":"o-y3k"}', value(vip("o-y3k", "acct-y3k", T0 + 42)), [("ts_ms", str(YEAR_3000).encode())],
         "dlq", "ts_out_of_range"),
        (b'{"id":"o-dup"}', dup, [], "dlq", "invalid_envelope"),
        (b'{"id":"o-x"}', b"{not json, +33 6 12 34 56 78", [], "dlq", "malformed_json"),
        (b'{"id":"o-cr"}', cr, [], "processed", None),
        *[(vip(f"o-after{i}", f"acct-after{i}", T0 + 100 + i)["key"].encode(),
           value(vip(f"o-after{i}", f"acct-after{i}", T0 + 100 + i)), [], "processed", None) for i in range(3)],
    ]


@pytest.fixture(scope="module", params=["--jvm-prefilter", "--no-jvm-prefilter"], ids=["jvm-prefilter", "all-python"])
def poisoned(request, infra_prerequisites, tmp_path_factory):
    local.ensure_fetched("kafka", "flink")
    bootstrap = local.start_kafka(fresh=True)["bootstrap"]
    tmp = tmp_path_factory.mktemp("kafka-hostile")
    records = poison()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    offsets = []
    for key, val, headers, _, _ in records:
        offsets.append(producer.send("cdc.public.orders", key=key, value=val, headers=headers,
                                     partition=0).get(timeout=30).offset)
    ticks = [cdc(T0 + 120_000 + i, "c", after=order_row(f"tick-{part}", "acct-tick", "1.00"))
             for i, part in enumerate(producer.partitions_for("cdc.public.orders"))]
    for part, tick in zip(sorted(producer.partitions_for("cdc.public.orders")), ticks):
        # a later record on every partition lets the watermark pass what the test waits for
        producer.send("cdc.public.orders", key=tick["key"].encode(), value=value(tick), partition=part).get(timeout=30)
    producer.close()
    job = Proc.python("jobs.agent_job", "--bootstrap-servers", bootstrap, "--state", str(tmp / "state"),
                      "--group-id", "hostile", "--checkpoint-interval-ms", "1000",
                      "--topic-pattern", r"cdc\.public\.orders", request.param, log=tmp / "job.log")
    try:
        settled_here = [o for o, r in zip(offsets, records) if r[3] != "processed"]  # processed: the sink traces

        def traced():
            traces = {t["offset"]: t for t in map(json.loads, (m.value for m in consume(bootstrap, "agent.traces")))
                      if t["partition"] == 0 and "tick-" not in (t["key"] or "")}
            return traces if all(o in traces for o in settled_here) else None

        traces = wait_for(traced, 300, "a trace for every record the job settles itself", [job])
        yield bootstrap, records, offsets, traces, tmp, job
    finally:
        job.stop()
        local.stop_kafka()


def test_every_poison_record_is_dlqd_and_traced_with_its_reason(poisoned):
    _, records, offsets, traces, _, _ = poisoned
    for (_, _, _, outcome, reason), offset in zip(records, offsets):
        if outcome == "processed":  # the job hands it to the sink (not run here), which traces it
            assert offset not in traces or traces[offset]["outcome"] == outcome
            continue
        t = traces[offset]
        assert (t["outcome"], t.get("reason")) == (outcome, reason), (offset, t)


def test_the_job_keeps_running_and_acts_on_what_follows(poisoned):
    bootstrap, _, _, _, tmp, job = poisoned

    def accounts():
        got = sorted(a["args"]["account_id"] for m in consume(bootstrap, "agent.actions")
                     for a in json.loads(m.value)["response"]["actions"])
        return got if len(got) >= 4 else None

    assert wait_for(accounts, 120, "the actions of the orders after the poison", [job]) == [
        "acct-after0", "acct-after1", "acct-after2", "acct-cr"]
    assert job.alive()
    log = Path(tmp / "job.log").read_text(errors="replace")
    assert "RESTARTING" not in log, "the job restarted"


def test_no_raw_pii_in_any_output_topic(poisoned):
    bootstrap = poisoned[0]
    for topic in ("agent.traces", "ops.agent_dlq", "agent.actions", "risk.order_threshold_breach"):
        for m in consume(bootstrap, topic):
            data = (m.value or b"") + (m.key or b"")
            for v in PII:
                assert v.encode() not in data, (topic, v)
