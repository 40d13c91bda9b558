"""Baseline 1: the single-process consumer loop a user writes first (`python -m bench.seed_loop`).

A kafka-python consumer, per-event Python handling in arrival order, an
in-memory dedup set, the same gate, rule, policy and HTTP tools as the
pipeline, traces and receipts produced to the same topics. No event-time
ordering, no durable state, no transactions: what it does not guarantee is the
point of the comparison, what it costs per event is the measurement.
"""
from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any

import requests
from kafka import KafkaConsumer, KafkaProducer

from contracts import records
from contracts.contract import load_contract
from contracts.idempotency import idempotency_key
from contracts.models import Envelope
from contracts.outcomes import Outcome
from jobs.breach_rule import AccountWindow, on_order
from jobs.gate import Gate
from jobs.policy import BREACH_TOPIC, RulePolicy
from jobs.routing import route
from sinks.tools import check_status, receipt_of, request_for


def call_tool(session: requests.Session, tools_url: str, action: Any) -> Any:
    """One blocking HTTP call per action, as a first loop makes it (the same endpoints, keys and answers)."""
    endpoint, body = request_for(action)
    r = session.post(tools_url.rstrip("/") + endpoint, json=body, timeout=5.0,
                     headers={"Idempotency-Key": action.idempotency_key})
    check_status(r.status_code, endpoint, r.text, r.headers.get("Retry-After"))
    return receipt_of(action.tool, r.json(), endpoint)


def event_time(value: bytes | None, fallback: int) -> int:
    try:
        return int(json.loads(value)["source"]["ts_ms"]) if value else fallback
    except (ValueError, KeyError, TypeError):
        return fallback


def run(bootstrap: str, tools_url: str, group: str, idle_exit_s: float, threshold: Decimal) -> int:
    contract = load_contract()
    gate, policy = Gate(contract), RulePolicy()
    consumer = KafkaConsumer("cdc.public.orders", bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=True,
                             consumer_timeout_ms=int(idle_exit_s * 1000), max_poll_records=500)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 18,
                             value_serializer=lambda v: json.dumps(v, separators=(",", ":"), default=str).encode())
    client = requests.Session()
    seen: set[str] = set()
    windows: dict[str, AccountWindow] = {}
    n = 0

    def emit(kind: str, rec: dict[str, Any]) -> None:
        producer.send({"traces": "agent.traces", "dlq": "ops.agent_dlq"}[kind], rec)

    def act(env: Envelope, key: str, pos: records.Position) -> None:
        response = policy.propose(env, key)
        refs = []
        for action in response.actions:
            receipt = call_tool(client, tools_url, action)
            producer.send("agent.receipts", {"tool": receipt.tool, "ok": receipt.ok, "ref": receipt.ref,
                                             "idempotency_key": key})
            refs.append(f"{receipt.tool}:{receipt.ref}")
        emit(*records.trace(pos, Outcome.PROCESSED, key, actions=[a.tool for a in response.actions],
                            receipts=refs, derived=env.topic == BREACH_TOPIC))

    for msg in consumer:
        n += 1
        headers = {k: v for k, v in (msg.headers or [])}
        res = gate.check_kafka(msg.topic, msg.partition, msg.offset, msg.key, msg.value,
                               event_time(msg.value, msg.timestamp), headers)
        if res.outcome == "dlq":
            emit(*records.dlq(res.position, res.reason, res.error or "", res.masked, contract.name))
            emit(*records.trace(res.position, Outcome.DLQ, reason=res.reason))
            continue
        env = res.envelope
        routed = route(env, threshold, policy) if res.outcome == "pass" else None
        pos = records.position_of(env)
        if routed is None:
            emit(*records.trace(pos, Outcome.NO_ACTION))
            continue
        if routed.idempotency_key in seen:
            emit(*records.trace(pos, Outcome.DUPLICATE, routed.idempotency_key))
            continue
        seen.add(routed.idempotency_key)
        if routed.qualifying is not None:
            breach = on_order(windows.setdefault(routed.account_id, AccountWindow()), routed.qualifying, threshold)
            if breach is not None:
                benv = Envelope(topic=BREACH_TOPIC, partition=0, offset=0, key=breach.account_id,
                                ts_ms=breach.ts_ms, schema_version="v3", payload=breach.model_dump(mode="json"))
                bkey = idempotency_key(BREACH_TOPIC, breach.account_id, breach.ts_ms)
                act(benv, bkey, records.position_of(benv, derived=True))
        if routed.to_agent:
            act(env, routed.idempotency_key, pos)
        else:
            emit(*records.trace(pos, Outcome.NO_ACTION, routed.idempotency_key))
    producer.flush()
    producer.close()
    consumer.close()
    client.close()
    return n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--tools-url", required=True)
    ap.add_argument("--group-id", default="seed-loop")
    ap.add_argument("--exit-when-idle-s", type=float, default=10.0)
    ap.add_argument("--threshold", type=Decimal, default=Decimal("1000.00"))
    a = ap.parse_args(argv)
    print(json.dumps({"handled": run(a.bootstrap_servers, a.tools_url, a.group_id, a.exit_when_idle_s,
                                     a.threshold)}), flush=True)


if __name__ == "__main__":
    main()
