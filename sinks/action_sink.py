"""The standalone action sink for Kafka mode: `python -m sinks.action_sink`.

Consumes `agent.actions` (read_committed, manual commits), executes each plan
through the outbox and the HTTP tool service, and writes receipts, responses,
DLQ records and traces to their topics. Wiring only; the loop is
`sinks.sink_loop`, the per-record logic `sinks.record_handler`.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from contracts.contract import load_contract
from sinks import unsafe
from sinks.backlog import DegradePolicy
from sinks.executor import ActionExecutor, RetryPolicy
from sinks.outbox import open_outbox
from sinks.record_handler import RecordHandler
from sinks.sink_loop import TOPICS, SinkLoop
from sinks.tools import HttpClient


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Action sink: agent.actions -> tools -> receipts")
    ap.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    ap.add_argument("--topic", default="agent.actions")
    ap.add_argument("--tools-url", default="http://127.0.0.1:8700")
    store = ap.add_mutually_exclusive_group()
    store.add_argument("--state", default="sink-state", help="directory of the SQLite outbox")
    store.add_argument("--outbox-dsn", help="postgresql://... to keep the outbox in PostgreSQL")
    ap.add_argument("--group-id", default="agent-action-sink")
    ap.add_argument("--max-in-flight", type=int, default=100, help="records fetched ahead of handling")
    ap.add_argument("--degrade-above", type=int, default=None,
                    help="pending actions above which notices are skipped (default: --max-in-flight)")
    ap.add_argument("--tool-timeout-s", type=float, default=5.0)
    ap.add_argument("--max-attempts", type=int, default=5)
    ap.add_argument("--actions-topic", default=None, help="also publish action status records here")
    ap.add_argument("--contract", default=None)
    ap.add_argument("--exit-when-idle-s", type=float, default=None, help="stop after this long without input")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from sinks.kafka_io import KafkaOutput, KafkaSource  # kafka only for the real process

    a = parse_args(argv)
    contract = load_contract(a.contract)
    outbox = open_outbox(a.outbox_dsn or a.state)
    client: Any = HttpClient(a.tools_url, timeout_s=a.tool_timeout_s)
    if unsafe.enabled():  # test-only: idempotency off, so the chaos harness can show it detects duplicates
        print(f"WARNING: {unsafe.ENV}=1: outbox in memory, tool calls re-keyed: duplicates WILL happen",
              file=sys.stderr, flush=True)
        outbox.close()
        outbox, client = unsafe.forgetful_outbox(), unsafe.RekeyingClient(client)
    executor = ActionExecutor(outbox, client, RetryPolicy(max_attempts=a.max_attempts),
                              degrade=DegradePolicy(a.degrade_above if a.degrade_above is not None
                                                    else a.max_in_flight))
    handler = RecordHandler(executor, contract.name, frozenset(contract.output.tools))
    topics: dict[str, str] = dict(TOPICS)
    if a.actions_topic:
        topics["actions"] = a.actions_topic
    source = KafkaSource(a.bootstrap_servers, a.topic, a.group_id)
    output = KafkaOutput(a.bootstrap_servers)
    loop = SinkLoop(source, output, handler, a.max_in_flight, topics)
    signal.signal(signal.SIGTERM, lambda *_: loop.stop())
    try:
        stats = loop.run(a.exit_when_idle_s)
    finally:
        output.close()
        source.close()
        client.close()
        outbox.close()
    summary: dict[str, Any] = {"records": stats.records, "commits": stats.commits, "outputs": stats.outputs}
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
