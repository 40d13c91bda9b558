"""The standalone action sink for Kafka mode: `python -m sinks.action_sink`.

Consumes `agent.actions` (read_committed, manual commits), executes the plans
concurrently through the outbox and the HTTP tool service, and writes receipts,
responses, DLQ records and traces to their topics; serves `/metrics` and
`/health`. Wiring only; the loop is `sinks.sink_loop`, a plan `sinks.plan_runner`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

import uvloop

from contracts.contract import load_contract
from sinks import status_server, unsafe
from sinks.backlog import DegradePolicy
from sinks.group_commit import OutboxWriter
from sinks.health import Snapshot
from sinks.metrics import SinkMetrics
from sinks.outbox import open_outbox
from sinks.plan_runner import PlanRunner, RetryPolicy
from sinks.record_handler import RecordHandler
from sinks.sink_loop import TOPICS, SinkLoop
from sinks.tool_gate import ToolGates
from sinks.tools import HttpClient, ToolClient

# Chosen by `python -m bench.sink` (README, "The action sink"): at 50 +- 20 ms tool latency 128 calls in flight
# pass 1,000 actions/s with room, and at 200 ms they are what 300 actions/s needs (300 x 0.2 s = 60, doubled
# for jitter and the outbox's commits around each call).
DEFAULT_MAX_IN_FLIGHT = 128
DEFAULT_DEGRADE_ABOVE = 10_000


def _assignments(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        tool, sep, n = item.partition("=")
        if not sep or not n.isdigit() or int(n) < 1:
            raise argparse.ArgumentTypeError(f"expected TOOL=N with N >= 1, got {item!r}")
        out[tool] = int(n)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Action sink: agent.actions -> tools -> receipts")
    ap.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    ap.add_argument("--topic", default="agent.actions")
    ap.add_argument("--tools-url", default="http://127.0.0.1:8700")
    store = ap.add_mutually_exclusive_group()
    store.add_argument("--state", default="sink-state", help="directory of the SQLite outbox")
    store.add_argument("--outbox-dsn", help="postgresql://... to keep the outbox in PostgreSQL")
    ap.add_argument("--group-id", default="agent-action-sink")
    ap.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT,
                    help="plans running at once, so tool calls in flight at most")
    ap.add_argument("--max-pending", type=int, default=None,
                    help="records fetched and not finished at most (default 4 x --max-in-flight)")
    ap.add_argument("--tool-concurrency", action="append", default=[], metavar="TOOL=N",
                    help="calls in flight to one tool at most (e.g. SendNotice=16); repeatable")
    ap.add_argument("--degrade-above", type=int, default=DEFAULT_DEGRADE_ABOVE,
                    help="actions pending in the sink plus records lagging behind, above which notices are skipped")
    ap.add_argument("--tool-timeout-s", type=float, default=5.0)
    ap.add_argument("--max-attempts", type=int, default=5, help="calls per action on transient errors (429s not counted)")
    ap.add_argument("--circuit-failures", type=int, default=5, help="consecutive failures that open a tool's circuit")
    ap.add_argument("--circuit-open-s", type=float, default=2.0, help="seconds an open circuit waits before a probe")
    ap.add_argument("--flush-interval-ms", type=float, default=50.0, help="output flush + offset commit cadence")
    ap.add_argument("--metrics-host", default="127.0.0.1")
    ap.add_argument("--metrics-port", type=int, default=0,
                    help="port of /metrics and /health (0: a free port, printed on stdout; -1: none)")
    ap.add_argument("--health-stall-s", type=float, default=60.0,
                    help="/health answers 503 when records wait and none finished for this long")
    ap.add_argument("--actions-topic", default=None, help="also publish action status records here")
    ap.add_argument("--contract", default=None)
    ap.add_argument("--exit-when-idle-s", type=float, default=None, help="stop after this long without input")
    a = ap.parse_args(argv)
    try:
        a.tool_concurrency = _assignments(a.tool_concurrency)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    if a.max_in_flight < 1:
        ap.error("--max-in-flight must be at least 1")
    return a


async def run(a: argparse.Namespace) -> dict[str, Any]:
    from sinks.kafka_io import KafkaOutput, KafkaSource  # kafka only for the real process

    contract = load_contract(a.contract)
    outbox = open_outbox(a.outbox_dsn or a.state)
    client: ToolClient = HttpClient(a.tools_url, timeout_s=a.tool_timeout_s, connections=a.max_in_flight)
    if unsafe.enabled():  # test-only: idempotency off, so the chaos harness can show it detects duplicates
        print(f"WARNING: {unsafe.ENV}=1: outbox in memory, tool calls re-keyed: duplicates WILL happen",
              file=sys.stderr, flush=True)
        outbox.close()
        outbox, client = unsafe.forgetful_outbox(), unsafe.RekeyingClient(client)
    metrics = SinkMetrics()
    gates = ToolGates(a.tool_concurrency, a.circuit_failures, a.circuit_open_s, observer=metrics)
    runner = PlanRunner(OutboxWriter(outbox, metrics), client, RetryPolicy(max_attempts=a.max_attempts),
                        degrade=DegradePolicy(a.degrade_above), gates=gates, observer=metrics)
    handler = RecordHandler(runner, contract.name, frozenset(contract.output.tools))
    topics: dict[str, str] = dict(TOPICS)
    if a.actions_topic:
        topics["actions"] = a.actions_topic
    source = KafkaSource(a.bootstrap_servers, a.topic, a.group_id)
    output = KafkaOutput(a.bootstrap_servers)
    loop = SinkLoop(source, output, handler, a.max_in_flight, a.max_pending, topics,
                    flush_interval_s=a.flush_interval_ms / 1000, observer=metrics)
    started = time.monotonic()

    def snapshot() -> Snapshot:
        d = loop.dispatcher
        return Snapshot(time.monotonic(), started, loop.assigned, len(d), d.pending_actions,
                        runner.calls_in_flight, loop.last_lag, loop.stats.last_progress, loop.stats.last_commit,
                        gates.states())

    status = None
    if a.metrics_port >= 0:
        status, url = await status_server.start(metrics, snapshot, a.metrics_host, a.metrics_port, a.health_stall_s)
        print(json.dumps({"metrics": url + "/metrics", "health": url + "/health"}), flush=True)
    aio = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        aio.add_signal_handler(sig, loop.stop)
    try:
        stats = await loop.run(a.exit_when_idle_s)
    finally:
        if status is not None:
            await status.cleanup()
        output.close()
        source.close()
        await client.close()
        outbox.close()
    return {"records": stats.records, "commits": stats.commits, "outputs": stats.outputs}


def main(argv: list[str] | None = None) -> int:
    summary = uvloop.run(run(parse_args(argv)))  # uvloop: ~10% less CPU per action than asyncio's loop
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
