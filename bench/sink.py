"""The sink benchmark, one command: `python -m bench.sink [--quick]`.

Against one fresh Kafka broker and the sandbox tools over HTTP with real-tool
latency (`--latency-ms/--jitter-ms`), in this invocation:

1. HTTP clients: aiohttp, httpx and a requests thread pool, 64 calls in flight (bench.http_clients).
2. Sink throughput: a backlog of action records (`agent.actions`, 3 partitions: 70% one-notice plans,
   30% ticket + hold plans over 5,000 accounts) through `python -m sinks.action_sink`, committed receipts
   per second between 10% and 90% done, at 50 +- 20 ms for each --max-in-flight of the sweep (1 is the
   serial baseline) and at 200 +- 50 ms for the serial baseline and the default.
3. Action latency: action records produced at the target rate (1,000 actions/s at 50 ms, 300 at 200 ms),
   latency = Kafka time of the receipt - Kafka time of the action record, p50/p95/p99.
4. Unless --quick: file mode (bench.run's file run, 10% actionable) with the embedded sink at its default
   plans in flight and at 1; and end to end, the 10%-actionable Kafka workload of bench.run through the
   JVM-prefilter pipeline with the concurrent sink and with the serial sink, tools at 50 +- 20 ms.

The degrade policy is out of reach in every run (`--degrade-above 10^9`): each action is a real call.
Prints a table; merges the `sink*` keys into bench/results/latest.json, keeping every other key.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from bench import http_clients
from bench.measure import Probe, Sample, cpu_share, percentile, sustained_rate
from bench.results import md_table, merge_results
from bench.run import PREFILTER, RESULTS, CommittedCount, file_run, kafka_throughput, machine
from bench.workload import Workload
from contracts import records
from contracts.models import Action
from sinks.action_sink import DEFAULT_MAX_IN_FLIGHT
from sinks.embedded import DEFAULT_MAX_IN_FLIGHT as EMBEDDED_DEFAULT
from sinks.embedded import ENV_MAX_IN_FLIGHT
from tests.infra import local
from tests.procs import Proc, start_sandbox, wait_for

NO_DEGRADE = ("--degrade-above", str(10**9))
FAST, SLOW = (50, 20), (200, 50)  # tool latency ms, jitter ms
TARGETS = {FAST: 1000.0, SLOW: 300.0}  # actions/s (issue 20)
SECTIONS = ("clients", "throughput", "latency", "embedded", "end_to_end")


def plan_records(n: int, seed: int = 7) -> list[tuple[str, bytes, int]]:
    """(account, agent.actions value, actions) as the job writes them."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        account = f"acct-{rng.randrange(5000)}"
        key = f"idem-bench-{seed}-{i}"
        if rng.random() < 0.3:
            order = f"o-{seed}-{i}"
            actions = [Action(tool="CreateTicket", idempotency_key=key,
                              args={"summary": f"Order {order} risk breach (high_value_orders_3_in_10m)",
                                    "labels": ["risk", "orders"]}),
                       Action(tool="PlacePaymentHold", idempotency_key=key,
                              args={"order_id": order, "reason": "high_value_orders_3_in_10m"})]
            topic = "risk.order_threshold_breach"
        else:
            actions = [Action(tool="SendNotice", idempotency_key=key,
                              args={"account_id": account, "template": "vip-order-received"})]
            topic = "cdc.public.orders"
        pos = records.Position(topic, i % 3, i, account, 1767225600000 + i, "v2")
        env = {"topic": topic, "partition": pos.partition, "offset": i, "key": account, "ts_ms": pos.ts_ms,
               "schema": "v2", "payload": {}}
        _, value = records.action_request(pos, key, account, f"plan {i}", actions, [f"{topic}@v2"], env, False)
        out.append((account, json.dumps(value, separators=(",", ":")).encode(), len(actions)))
    return out


def _topic(bootstrap: str) -> str:
    name = f"agent.actions.bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    admin.close()
    return name


def _sandbox(tmp: Path, latency: tuple[int, int]) -> tuple[Proc, str]:
    return start_sandbox(tmp, None, "--latency-ms", str(latency[0]), "--jitter-ms", str(latency[1]), "--seed", "1")


def _sink(bootstrap: str, topic: str, url: str, tmp: Path, in_flight: int) -> Proc:
    return Proc.python("sinks.action_sink", "--bootstrap-servers", bootstrap, "--topic", topic,
                       "--group-id", f"bench-{topic}", "--tools-url", url, "--state", str(tmp / "sink-state"),
                       "--max-in-flight", str(in_flight), "--tool-timeout-s", "10", *NO_DEGRADE,
                       log=tmp / "sink.log")


def throughput(bootstrap: str, work: Path, latency: tuple[int, int], in_flight: int, n_plans: int,
               max_s: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"sink-{in_flight}-", dir=work))
    topic = _topic(bootstrap)
    plans = plan_records(n_plans)
    total = sum(a for _, _, a in plans)
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 18)
    for i, (account, value, _) in enumerate(plans):
        p.send(topic, key=account.encode(), value=value)
    p.flush()
    p.close()
    receipts = CommittedCount(bootstrap, "agent.receipts")
    base = receipts()
    sandbox, url = _sandbox(tmp, latency)
    sink = _sink(bootstrap, topic, url, tmp, in_flight)
    procs = {"sandbox": sandbox, "sink": sink}
    try:
        probe = Probe({pr.p.pid: role for role, pr in procs.items()})
        samples: list[Sample] = []
        started = time.monotonic()
        while time.monotonic() - started < max_s:
            samples.append(probe.sample(receipts() - base))
            if samples[-1].done >= total:
                break
            for role, pr in procs.items():
                assert pr.alive(), f"{role} exited:\n{pr.tail()}"
            time.sleep(0.5)
    finally:
        for pr in (sink, sandbox):
            pr.stop()
        receipts.close()
    rate, cpu, window = sustained_rate(samples, total)
    return {"latency_ms": latency[0], "jitter_ms": latency[1], "max_in_flight": in_flight, "actions": total,
            "done": samples[-1].done, "actions_per_s": round(rate, 1), "cpu_s_per_1k_actions": round(cpu, 3),
            "window_s": round(window, 1), "cores_used": cpu_share(samples, total),
            "peak_rss_mb": {r: round(b / 2**20) for r, b in sorted(probe.peak.items())}}


def latency_run(bootstrap: str, work: Path, latency: tuple[int, int], in_flight: int, actions_per_s: float,
                duration_s: float) -> dict[str, Any]:
    """Action records paced at `actions_per_s`; per action, receipt record time - action record time."""
    tmp = Path(tempfile.mkdtemp(prefix=f"lat-{latency[0]}-", dir=work))
    topic = _topic(bootstrap)
    sandbox, url = _sandbox(tmp, latency)
    sink = _sink(bootstrap, topic, url, tmp, in_flight)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    try:
        warm = plan_records(20, seed=99)
        for account, value, _ in warm:  # the sink has joined its group and warmed up when these are receipted
            producer.send(topic, key=account.encode(), value=value)
        producer.flush()
        count = CommittedCount(bootstrap, "agent.receipts")
        base = count()
        wait_for(lambda: count() - base >= sum(a for _, _, a in warm), 120, "the sink to warm up", [sink, sandbox],
                 every_s=0.5)
        plans = plan_records(int(actions_per_s / 1.3 * duration_s), seed=11 + latency[0])  # keys of this run only
        sent: dict[str, int] = {}
        t0 = time.time()
        per_s = len(plans) / duration_s
        for i, (account, value, _) in enumerate(plans):
            time.sleep(max(0.0, t0 + i / per_s - time.time()))
            now = int(time.time() * 1000)
            producer.send(topic, key=account.encode(), value=value, timestamp_ms=now)
            sent[json.loads(value)["idempotency_key"]] = now
        producer.flush()
        expected = sum(a for _, _, a in plans)
        wait_for(lambda: count() - base >= expected + sum(a for _, _, a in warm), 120, "every receipt",
                 [sink, sandbox], every_s=0.5)
        count.close()
        c = KafkaConsumer("agent.receipts", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                          consumer_timeout_ms=3000)
        lat = [m.timestamp - sent[k] for m in c if (k := json.loads(m.value).get("idempotency_key")) in sent]
        c.close()
    finally:
        producer.close()
        for pr in (sink, sandbox):
            pr.stop()
    return {"latency_ms": latency[0], "jitter_ms": latency[1], "max_in_flight": in_flight,
            "actions_per_s_offered": actions_per_s, "receipts": len(lat), "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99)}


def embedded(work: Path, events: int, in_flight: int) -> dict[str, Any]:
    """File mode (the embedded sink, in-process tools without latency) at `in_flight` plans in flight."""
    old = os.environ.get(ENV_MAX_IN_FLIGHT)
    os.environ[ENV_MAX_IN_FLIGHT] = str(in_flight)
    try:
        r = file_run(Workload("10% actionable", events, 0.10), work)
    finally:
        if old is None:
            os.environ.pop(ENV_MAX_IN_FLIGHT, None)
        else:
            os.environ[ENV_MAX_IN_FLIGHT] = old
    return {**r, "max_in_flight": in_flight}


def end_to_end(work: Path, events: int, max_s: float, in_flight: int) -> dict[str, Any]:
    """bench.run's Kafka throughput run with tools at 50 +- 20 ms. Its `events_per_s` counts committed traces
    between 10% and 90% done, and 90% of them are the job's own (no_action from the prefilter), so it barely
    sees the sink: `events_per_s_all_traced` is the rate until every input has its trace, sink's included."""
    w = Workload("10% actionable", events, 0.10)
    r = kafka_throughput(PREFILTER, w, work, max_s, False,
                         sandbox_args=("--latency-ms", str(FAST[0]), "--jitter-ms", str(FAST[1])),
                         sink_args=("--max-in-flight", str(in_flight), *NO_DEGRADE), keep_samples=True)
    samples = r.pop("samples")
    first = next(((t, d) for t, d in samples if d > 0), None)
    last = next(((t, d) for t, d in samples if d >= r["events"]), None)
    all_traced = round((last[1] - first[1]) / (last[0] - first[0]), 1) if first and last and last[0] > first[0] \
        else None
    return {**r, "max_in_flight": in_flight, "tool_latency_ms": FAST[0], "tool_jitter_ms": FAST[1],
            "events_per_s_all_traced": all_traced, "traced_fraction": round(samples[-1][1] / r["events"], 3)}


def table(result: dict[str, Any]) -> str:
    lines = md_table(["client (64 in flight, 50 +- 20 ms)", "calls/s", "client CPU us/call"],
                     [[c["client"], f"{c['calls_per_s']:,.0f}", c["cpu_us_per_call"]] for c in result.get("clients", [])])
    lines += [""] + md_table(
        ["tool latency", "max in flight", "actions/s", "CPU s / 1k actions", "cores (steady)"],
        [[f"{r['latency_ms']} +- {r['jitter_ms']} ms", r["max_in_flight"], f"{r['actions_per_s']:,.0f}",
          r["cpu_s_per_1k_actions"], ", ".join(f"{k} {v}" for k, v in r["cores_used"].items())]
         for r in result.get("throughput", [])])
    lines += [""] + md_table(
        ["tool latency", "offered actions/s", "receipts", "p50 ms", "p95 ms", "p99 ms"],
        [[f"{x['latency_ms']} +- {x['jitter_ms']} ms", f"{x['actions_per_s_offered']:,.0f}", x["receipts"],
          x["p50_ms"], x["p95_ms"], x["p99_ms"]] for x in result.get("latency", [])])
    for e in result.get("embedded", []):
        lines.append(f"\nfile mode, 10% actionable, embedded sink {e['max_in_flight']} in flight: "
                     f"{e['events_per_s']:,.0f} events/s ({e['cpu_s_per_1k_events']} CPU s / 1k events)")
    for e in result.get("end_to_end", []):
        lines.append(f"\nend to end, 10% actionable, sink --max-in-flight {e['max_in_flight']}: "
                     f"{e['events_per_s']:,.0f} events/s (10-90% of traces), {e['events_per_s_all_traced'] or '-'} "
                     f"until every input traced ({e['traced_fraction']:.0%} traced in the run); "
                     f"{e['cpu_s_per_1k_events']} CPU s / 1k events; cores "
                     + ", ".join(f"{k} {v}" for k, v in e["cores_used"].items()))
    s = result["summary"]
    lines += ["", "targets: " + "; ".join(f"{k} {v['figure']} vs {v['target']}: {'met' if v['met'] else 'MISSED'}"
                                          for k, v in s["targets"].items())]
    return "\n".join(lines)


def summarize(result: dict[str, Any], default: int) -> dict[str, Any]:
    def at(latency: tuple[int, int], n: int) -> float:
        return next((r["actions_per_s"] for r in result.get("throughput", [])
                     if (r["latency_ms"], r["jitter_ms"], r["max_in_flight"]) == (*latency, n)), 0.0)

    fast, slow = at(FAST, default), at(SLOW, default)
    p95 = {x["latency_ms"]: x["p95_ms"] for x in result.get("latency", [])}
    targets = {"sink actions/s at 50 ms": {"figure": fast, "target": TARGETS[FAST], "met": fast >= TARGETS[FAST]},
               "sink actions/s at 200 ms": {"figure": slow, "target": TARGETS[SLOW], "met": slow >= TARGETS[SLOW]}}
    e2e = {e["max_in_flight"]: e["events_per_s"] for e in result.get("end_to_end", [])}
    if default in e2e:
        targets["end-to-end events/s, 10% actionable"] = {"figure": e2e[default], "target": 10_000.0,
                                                          "met": e2e[default] >= 10_000}
    return {"default_max_in_flight": default, "sink_actions_per_s": fast, "sink_actions_per_s_200ms": slow,
            "ratio_vs_serial_50ms": round(fast / at(FAST, 1), 1) if at(FAST, 1) else None,
            "ratio_vs_serial_200ms": round(slow / at(SLOW, 1), 1) if at(SLOW, 1) else None,
            "p95_action_latency_ms": {"50ms": p95.get(FAST[0]), "200ms": p95.get(SLOW[0])},
            "end_to_end_events_per_s": e2e, "targets": targets}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller backlogs, no end-to-end runs")
    ap.add_argument("--plans", type=int, default=20_000, help="action records per throughput run")
    ap.add_argument("--sweep", default="1,16,64,128,256", help="--max-in-flight values at 50 ms")
    ap.add_argument("--max-s", type=float, default=60.0, help="time limit per throughput run")
    ap.add_argument("--latency-s", type=float, default=20.0)
    ap.add_argument("--e2e-events", type=int, default=200_000)
    ap.add_argument("--file-events", type=int, default=20_000, help="events of the file-mode (embedded) runs")
    ap.add_argument("--e2e-max-s", type=float, default=150.0)
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help="a subset reruns those sections and keeps the others' figures from the results file")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    sections = [x for x in a.sections.split(",") if x]
    if set(sections) - set(SECTIONS):
        ap.error(f"--sections: choose from {', '.join(SECTIONS)}")
    if a.quick:
        a.plans, a.max_s, a.latency_s = 4000, 30.0, 8.0
    default = DEFAULT_MAX_IN_FLIGHT
    sweep = sorted({int(x) for x in a.sweep.split(",")} | {1, default})
    local.ensure_fetched("kafka", "flink")
    name = "sink-quick" if a.quick else "latest"
    previous = json.loads((a.out / f"{name}.json").read_text()).get("sink", {}) if (a.out / f"{name}.json").exists() \
        else {}
    result: dict[str, Any] = {k: v for k, v in previous.items() if k in SECTIONS or k == "dates"}
    dates = result.setdefault("dates", {})
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    result.update({"machine": machine(), "quick": a.quick})
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as work_dir:
        work = Path(work_dir)
        if {"clients", "throughput", "latency"} & set(sections):
            bootstrap = local.start_kafka(fresh=True)["bootstrap"]
            try:
                if "clients" in sections:
                    sandbox, url = _sandbox(work, FAST)
                    try:
                        result["clients"] = http_clients.compare(url, 2000 if a.quick else 4000, 64)
                    finally:
                        sandbox.stop()
                    print("bench.sink: clients " + ", ".join(f"{c['client']} {c['calls_per_s']:.0f}/s"
                                                             for c in result["clients"]), flush=True)
                if "throughput" in sections:
                    result["throughput"] = []
                    for latency, n in [(FAST, n) for n in sweep] + [(SLOW, 1), (SLOW, default)]:
                        result["throughput"].append(throughput(bootstrap, work, latency, n, a.plans, a.max_s))
                        print(f"bench.sink: {latency[0]} ms, {n} in flight: "
                              f"{result['throughput'][-1]['actions_per_s']:,.0f} actions/s", flush=True)
                if "latency" in sections:
                    result["latency"] = [latency_run(bootstrap, work, lat, default, TARGETS[lat], a.latency_s)
                                         for lat in (FAST, SLOW)]
                    print("bench.sink: p95 " + ", ".join(f"{x['latency_ms']} ms: {x['p95_ms']} ms"
                                                         for x in result["latency"]), flush=True)
            finally:
                local.stop_kafka()
        if "embedded" in sections and not a.quick:
            result["embedded"] = [embedded(work, a.file_events, n) for n in (EMBEDDED_DEFAULT, 1)]
            print("bench.sink: file mode " + ", ".join(f"{e['max_in_flight']} in flight {e['events_per_s']:,.0f} "
                                                       "events/s" for e in result["embedded"]), flush=True)
        if "end_to_end" in sections and not a.quick:
            result["end_to_end"] = [end_to_end(work, a.e2e_events, a.e2e_max_s, n) for n in (default, 1)]
    dates.update({k: now for k in sections if k in result})
    result["summary"] = summarize(result, default)
    s = result["summary"]
    merge_results(a.out / f"{name}.json", {
        "sink_actions_per_s": s["sink_actions_per_s"], "sink_actions_per_s_200ms": s["sink_actions_per_s_200ms"],
        "sink_p95_action_latency_ms_50ms": s["p95_action_latency_ms"]["50ms"],
        "sink_p95_action_latency_ms_200ms": s["p95_action_latency_ms"]["200ms"],
        "sink": result})
    print(table(result))
    return result


if __name__ == "__main__":
    main()
