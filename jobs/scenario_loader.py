"""Loads a JSONL scenario (the file-mode input) into the Kafka input topics.

Each envelope becomes a record of its topic: key = envelope key, value = the
payload (JSON, Avro for the breach topic, null for a tombstone), headers
`schema`, `sensitivity` and `ts_ms` (event time; the record timestamp stays
produce time so that retention never deletes old scenarios). A line that is not an envelope
is sent as raw bytes to `--malformed-topic` so the job DLQs it as file mode
does. `--partition N` sends everything to one partition, which reproduces
file-mode lateness exactly (lateness is per partition).

    python -m jobs.scenario_loader examples/orders_scenario.jsonl --bootstrap-servers HOST:PORT
"""
from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from contracts.avro import encode_breach
from contracts.models import Breach

BREACH_TOPIC = "risk.order_threshold_breach"


def to_record(line: str, malformed_topic: str) -> dict[str, Any]:
    """The Kafka record for one scenario line: topic, key, value, headers, timestamp_ms."""
    try:
        env = json.loads(line, parse_float=Decimal)
        if not isinstance(env, dict) or not isinstance(env.get("topic"), str):
            raise ValueError("not an envelope")
    except ValueError:
        return {"topic": malformed_topic, "key": None, "value": line.encode("utf-8"), "headers": []}
    payload = env.get("payload")
    if payload is None:
        value = None
    elif env["topic"] == BREACH_TOPIC and env.get("schema") == "v3":
        try:
            value = encode_breach(Breach.model_validate(payload))
        except Exception:  # noqa: BLE001 - an invalid breach travels as JSON and is DLQ'd by the job
            value = json.dumps(payload, default=str).encode()
    else:
        value = json.dumps(payload, default=str, separators=(",", ":")).encode()
    headers = [(h, str(env[h]).encode()) for h in ("schema", "sensitivity", "ts_ms") if env.get(h) is not None]
    key = env.get("key")
    # The record timestamp stays produce time: an old event time would let retention delete the data.
    return {"topic": env["topic"], "key": key.encode() if isinstance(key, str) else None, "value": value,
            "headers": headers}


def load(path: str | Path, bootstrap_servers: str, partition: int | None = None,
         malformed_topic: str = "cdc.public.orders") -> list[dict[str, Any]]:
    """Produce every line in order; return what was produced (with partition and offset)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5,
                             enable_idempotence=True, max_in_flight_requests_per_connection=1)
    sent = []
    try:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            rec = to_record(line, malformed_topic)
            md = producer.send(rec["topic"], key=rec["key"], value=rec["value"], headers=rec["headers"],
                               partition=partition).get(timeout=30)
            sent.append({**rec, "partition": md.partition, "offset": md.offset, "timestamp": md.timestamp})
        producer.flush()
    finally:
        producer.close()
    return sent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario")
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--partition", type=int)
    ap.add_argument("--malformed-topic", default="cdc.public.orders")
    a = ap.parse_args(argv)
    sent = load(a.scenario, a.bootstrap_servers, a.partition, a.malformed_topic)
    print(json.dumps({"produced": len(sent)}))


if __name__ == "__main__":
    main()
