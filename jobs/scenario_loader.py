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
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from contracts.contract import Contract, load_contract
from contracts.kafka_envelope import KafkaRecord, kafka_record


def to_record(line: str, malformed_topic: str, contract: Contract | None = None) -> KafkaRecord:
    """The Kafka record for one scenario line; a line that is no envelope goes as raw bytes."""
    try:
        env = json.loads(line, parse_float=Decimal)
        if not isinstance(env, dict) or not isinstance(env.get("topic"), str):
            raise ValueError("not an envelope")
    except ValueError:
        return KafkaRecord(malformed_topic, None, line.encode("utf-8"), [])
    return kafka_record(env, contract or load_contract())


def load(path: str | Path, bootstrap_servers: str, partition: int | None = None,
         malformed_topic: str = "cdc.public.orders") -> list[dict[str, Any]]:
    """Produce every line in order; return what was produced (with partition and offset)."""
    contract = load_contract()
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5,
                             enable_idempotence=True, max_in_flight_requests_per_connection=1)
    sent = []
    try:
        for line in Path(path).read_text(encoding="utf-8").split("\n"):  # not splitlines(): U+2028 is text
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            rec = to_record(line, malformed_topic, contract)
            md = producer.send(rec.topic, key=rec.key, value=rec.value, headers=rec.headers,
                               partition=partition).get(timeout=30)
            sent.append({**asdict(rec), "partition": md.partition, "offset": md.offset, "timestamp": md.timestamp})
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
