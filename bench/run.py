"""The benchmark, one command: `python -m bench.run [--smoke]`.

Runs the same deterministic workloads through three systems on this machine, in
this invocation: the pipeline with its JVM prefilter, the same pipeline with
every stage a Python operator (`--no-jvm-prefilter`), and the seed-style
consumer loop (bench.seed_loop). Kafka mode runs each system against a fresh
broker with the workload already in the topic (sustained catch-up throughput);
file mode runs the job on a file; a paced run measures latency to receipt.
Prints a table, writes bench/results/latest.json and bench/results/latest.png.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.measure import Probe, Sample, cpu_share, percentile, sustained_rate
from bench.results import merge_results
from bench.workload import Workload, closing_ticks, file_lines, records
from contracts.idempotency import idempotency_key
from jobs.policy import BREACH_TOPIC
from tests.infra import local
from tests.procs import Proc, start_sandbox, wait_for

RESULTS = Path(__file__).resolve().parent / "results"
ORDERS = "cdc.public.orders"
PREFILTER, ALL_PYTHON, SEED = "pipeline, JVM prefilter", "pipeline, all-Python operators", "seed-style loop"
ALL_PYTHON_THREAD = "pipeline, all-Python operators, thread mode"  # python.execution-mode: thread (default: process)
SYSTEMS = (PREFILTER, ALL_PYTHON, ALL_PYTHON_THREAD, SEED)


class CommittedCount:
    """Records committed to a topic so far (read_committed end offsets; transaction markers make it
    over-count by one per partition per commit, negligible against the volumes measured)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
        self.tps = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or {0})]

    def __call__(self) -> int:
        return sum(self.consumer.end_offsets(self.tps).values())

    def close(self) -> None:
        self.consumer.close()


def produce(bootstrap: str, w: Workload) -> int:
    """The workload, then a closing tick per partition; the number of records sent."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=50, batch_size=1 << 19)
    n = 0
    for r in records(w):
        p.send(ORDERS, key=r.key, value=r.value)
        n += 1
    partitions = len(p.partitions_for(ORDERS))
    for part, r in enumerate(closing_ticks(w, partitions)):
        p.send(ORDERS, key=r.key, value=r.value, partition=part)
        n += 1
    p.flush()
    p.close()
    return n


JOB_OPTIONS: list[str] = ["--checkpoint-interval-ms", "1000"]  # set from the command line in main()


def start_system(system: str, bootstrap: str, tmp: Path, url: str, bound_ms: int,
                 sink_args: tuple[str, ...] = ()) -> dict[str, Proc]:
    if system == SEED:
        return {"seed loop": Proc.python("bench.seed_loop", "--bootstrap-servers", bootstrap, "--tools-url", url,
                                         "--exit-when-idle-s", "600", log=tmp / "seed.log")}
    extra = {ALL_PYTHON: ["--no-jvm-prefilter"], PREFILTER: ["--jvm-prefilter"],
             ALL_PYTHON_THREAD: ["--no-jvm-prefilter", "--python-execution-mode", "thread"]}[system]
    job = Proc.python("jobs.agent_job", "--bootstrap-servers", bootstrap, "--state", str(tmp / "job-state"),
                      "--group-id", "bench", "--topic-pattern", r"cdc\..*", "--max-out-of-orderness-ms", str(bound_ms),
                      *JOB_OPTIONS, *extra, log=tmp / "job.log")
    sink = Proc.python("sinks.action_sink", "--bootstrap-servers", bootstrap, "--tools-url", url,
                       "--state", str(tmp / "sink-state"), "--group-id", "bench-sink", *sink_args,
                       log=tmp / "sink.log")
    return {"job": job, "sink": sink}


def stop_all(procs: dict[str, Proc]) -> None:
    for p in procs.values():
        p.stop()


def trace_outcomes(bootstrap: str) -> dict[tuple[int, int], str]:
    """(partition, offset) -> outcome of every input trace (derived breach traces left out)."""
    c = KafkaConsumer("agent.traces", bootstrap_servers=bootstrap, isolation_level="read_committed",
                      auto_offset_reset="earliest", consumer_timeout_ms=3000)
    out = {}
    for m in c:
        t = json.loads(m.value)
        if not t.get("derived"):
            out[(t["partition"], t["offset"])] = t["outcome"]
    c.close()
    return out


def kafka_throughput(system: str, w: Workload, work: Path, max_s: float, keep_outcomes: bool,
                     sandbox_args: tuple[str, ...] = (), sink_args: tuple[str, ...] = (),
                     keep_samples: bool = False) -> dict[str, Any]:
    """`sandbox_args` give the tools a latency profile, `sink_args` configure the sink, `keep_samples` returns
    (seconds, outputs committed) over the run (bench.sink)."""
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    bootstrap = local.start_kafka(fresh=True)["bootstrap"]
    procs: dict[str, Proc] = {}
    try:
        n = produce(bootstrap, w)
        sandbox, url = start_sandbox(tmp, None, *sandbox_args)
        procs = {"sandbox": sandbox, **start_system(system, bootstrap, tmp, url, w.bound_ms, sink_args)}
        probe = Probe({p.p.pid: role for role, p in procs.items()})
        count = CommittedCount(bootstrap, "agent.traces")
        samples: list[Sample] = []
        started = time.monotonic()
        while time.monotonic() - started < max_s:
            samples.append(probe.sample(count()))
            if samples[-1].done >= n:
                break
            for role, p in procs.items():
                assert p.alive(), f"{role} exited:\n{p.tail()}"
            time.sleep(0.5)
        count.close()
        rate, cpu, window = sustained_rate(samples, n)
        outcomes: dict[tuple[int, int], str] = {}
        if keep_outcomes:  # the count includes transaction markers and breach traces: wait for every input's
            outcomes = wait_for(lambda: (lambda o: o if len(o) >= n else None)(trace_outcomes(bootstrap)),
                                120, f"a trace for each of the {n} inputs", list(procs.values()), every_s=1.0)
    finally:
        stop_all(procs)
        local.stop_kafka()
    return {"mode": "kafka", "system": system, "workload": w.name, "events": n, "done": samples[-1].done,
            "events_per_s": round(rate, 1), "cpu_s_per_1k_events": round(cpu, 3), "window_s": round(window, 1),
            "peak_rss_mb": {r: round(b / 2**20) for r, b in sorted(probe.peak.items())},
            "cores_used": cpu_share(samples, n), **({"outcomes": outcomes} if keep_outcomes else {}),
            **({"samples": [(round(x.t - started, 2), x.done) for x in samples]} if keep_samples else {})}


def file_run(w: Workload, work: Path, execution_mode: str = "thread") -> dict[str, Any]:
    """File mode: wall time and CPU of the whole job for the workload, minus a one-event run (start-up).
    `execution_mode`: PyFlink's python.execution-mode (file mode's default is thread)."""
    def one(events: Workload) -> tuple[float, float, dict[str, int], int]:
        tmp = Path(tempfile.mkdtemp(prefix="file-", dir=work))
        src = tmp / "events.jsonl"
        src.write_text("\n".join(file_lines(events)) + "\n")
        t0 = time.monotonic()
        job = Proc.python("jobs.agent_job", "--events", str(src), "--out", str(tmp / "out"),
                          "--python-execution-mode", execution_mode, log=tmp / "job.log")
        probe = Probe({job.p.pid: "file-mode job"})
        last = probe.sample(0)
        while job.alive():
            last = probe.sample(0)
            time.sleep(0.5)
        assert job.p.returncode == 0, job.tail()
        traces = sum(1 for _ in open(tmp / "out" / "traces.jsonl"))
        return time.monotonic() - t0, last.cpu_s, probe.peak, traces

    base_s, base_cpu, _, _ = one(Workload("startup", 1, 0.0))
    wall, cpu, peak, traces = one(w)
    assert traces >= w.events, f"file mode traced {traces} of {w.events} events"
    work_s = max(wall - base_s, 1e-3)
    system = "pipeline, file mode (embedded sink)" + ("" if execution_mode == "thread" else ", process mode")
    return {"mode": "file", "system": system, "workload": w.name, "events": w.events,
            "done": traces, "events_per_s": round(w.events / work_s, 1),
            "cpu_s_per_1k_events": round(max(cpu - base_cpu, 0) / (w.events / 1000), 3),
            "window_s": round(work_s, 1), "startup_s": round(base_s, 1),
            "peak_rss_mb": {r: round(b / 2**20) for r, b in sorted(peak.items())}}


def latency_run(system: str, rate: float, duration_s: float, bound_ms: int, work: Path) -> dict[str, Any]:
    """Paced input with event time = send time; latency = receipt record time - input record time, and
    `beyond_bound` = receipt time - (event time + bound), the part the watermark bound does not explain."""
    tmp = Path(tempfile.mkdtemp(prefix="lat-", dir=work))
    bootstrap = local.start_kafka(fresh=True)["bootstrap"]
    procs: dict[str, Proc] = {}
    try:
        sandbox, url = start_sandbox(tmp)
        procs = {"sandbox": sandbox, **start_system(system, bootstrap, tmp, url, bound_ms)}
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
        count = CommittedCount(bootstrap, "agent.traces")
        # warm up: wait until the system traces something, so start-up is not counted as latency
        warm = Workload("warmup", 1_000_000, 0.0, seed=99)
        it = records(warm, start_ms=int(time.time() * 1000) - 5 * bound_ms)
        wait_for(lambda: [producer.send(ORDERS, key=(r := next(it)).key, value=r.value) for _ in range(20)]
                 and count() > 0, 300, "the system to start", list(procs.values()), every_s=1.0)
        sent: dict[str, tuple[int, int]] = {}  # idempotency key of the expected receipt -> (send ms, event ms)
        paced = records(Workload("paced", 10**9, 0.01, seed=5, spacing_ms=0, bound_ms=0), start_ms=0)
        tail_s = bound_ms / 1000 + 5  # keep the stream going so the watermark passes the last measured event
        t0 = time.time()
        for i in range(int(rate * (duration_s + tail_s))):
            time.sleep(max(0.0, t0 + i / rate - time.time()))
            now = int(time.time() * 1000)
            r = next(paced)
            payload = json.loads(r.value)
            payload["source"]["ts_ms"] = payload["ts_ms"] = now
            row = payload["after"] or payload["before"]
            if r.actionable and i < rate * duration_s:
                key = (idempotency_key(ORDERS, r.key.decode(), now) if row["vip_flag"]
                       else idempotency_key(BREACH_TOPIC, row["account_id"], now))  # the breach it may complete
                sent[key] = (now, now)
            producer.send(ORDERS, key=r.key, value=json.dumps(payload).encode(), timestamp_ms=now)
        producer.flush()
        time.sleep(5)
        c = KafkaConsumer("agent.receipts", bootstrap_servers=bootstrap, isolation_level="read_committed",
                          auto_offset_reset="earliest", consumer_timeout_ms=5000)
        lat, beyond = [], []
        for m in c:
            key = json.loads(m.value).get("idempotency_key")
            if key in sent:
                send_ms, ev_ms = sent.pop(key)
                lat.append(m.timestamp - send_ms)
                beyond.append(m.timestamp - (ev_ms + bound_ms))
        c.close()
        count.close()
        producer.close()
    finally:
        stop_all(procs)
        local.stop_kafka()
    return {"system": system, "rate_per_s": rate, "duration_s": duration_s, "bound_ms": bound_ms,
            "receipts": len(lat), "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
            "p95_beyond_bound_ms": percentile(beyond, 95) if system != SEED else None}  # the loop has no watermark


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def summarize(runs: list[dict[str, Any]], latency: list[dict[str, Any]], workload: str) -> dict[str, Any]:
    by = {(r["system"], r["workload"]): r for r in runs if r["mode"] == "kafka"}
    best = by.get((PREFILTER, workload), {}).get("events_per_s", 0.0)
    ratio = lambda other: round(best / by[(other, workload)]["events_per_s"], 2) \
        if by.get((other, workload), {}).get("events_per_s") else None  # noqa: E731
    lat = next((x for x in latency if x["system"] == PREFILTER), {})
    return {"events_per_s": best, "p95_latency_ms": lat.get("p95_ms"),
            "p95_beyond_bound_ms": lat.get("p95_beyond_bound_ms"),
            "ratio_vs_seed_loop": ratio(SEED), "ratio_vs_python_operators": ratio(ALL_PYTHON),
            "headline_workload": workload}


def table(result: dict[str, Any]) -> str:
    lines = ["| mode | system | workload | events/s | CPU s / 1k events | cores used | peak RSS MiB |",
             "|---|---|---|---:|---:|---|---|"]
    for r in result["runs"]:
        rss = ", ".join(f"{k} {v}" for k, v in r["peak_rss_mb"].items())
        cores = ", ".join(f"{k} {v}" for k, v in r.get("cores_used", {}).items()) or "-"
        lines.append(f"| {r['mode']} | {r['system']} | {r['workload']} | {r['events_per_s']:,.0f} | "
                     f"{r['cpu_s_per_1k_events']} | {cores} | {rss} |")
    lines += ["", "| latency run | rate/s | receipts | p50 ms | p95 ms | p99 ms | p95 beyond bound ms |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for x in result["latency"]:
        lines.append(f"| {x['system']} | {x['rate_per_s']:.0f} | {x['receipts']} | {x['p50_ms']} | {x['p95_ms']} | "
                     f"{x['p99_ms']} | {x['p95_beyond_bound_ms']} |")
    s = result["summary"]
    lines += ["", f"At {s['headline_workload']}: {s['events_per_s']:,.0f} events/s; "
                  f"{s['ratio_vs_seed_loop']}x the seed-style loop, {s['ratio_vs_python_operators']}x the "
                  f"all-Python pipeline; p95 latency to receipt {s['p95_latency_ms']} ms "
                  f"({s['p95_beyond_bound_ms']} ms beyond the watermark bound)."]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = [f"{r['system']}\n{r['mode']} {r['workload']}" for r in runs]
    a.barh(labels, [max(r["events_per_s"], 1) for r in runs], color="tab:blue")
    a.set_xscale("log")
    a.set_xlabel("events/s (log scale)")
    a.set_title("Throughput, ingest to receipts")
    a.tick_params(axis="y", labelsize=7)
    lat = result["latency"]
    xs = range(len(lat))
    for k, (q, c) in enumerate((("p50_ms", "tab:green"), ("p95_ms", "tab:orange"), ("p99_ms", "tab:red"))):
        b.bar([x + k * 0.25 for x in xs], [x[q] for x in lat], width=0.25, label=q.split("_")[0], color=c)
    b.set_xticks([x + 0.25 for x in xs], [x["system"] for x in lat], fontsize=7)
    b.set_ylabel("ms from Kafka record time to receipt")
    b.set_title(f"Latency at {lat[0]['rate_per_s']:.0f} events/s" if lat else "Latency")
    b.legend()
    fig.suptitle(f"{result['date']} - {result['machine']['cores']} cores, {result['machine']['memory_gib']} GiB")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny workloads, seconds per system (the test suite's run)")
    ap.add_argument("--events", type=int, default=300_000, help="events per Kafka workload")
    ap.add_argument("--file-events", type=int, default=100_000)
    ap.add_argument("--max-s", type=float, default=120.0, help="time limit per throughput run")
    ap.add_argument("--latency-rate", type=float, default=1000.0)
    ap.add_argument("--latency-s", type=float, default=60.0)
    ap.add_argument("--bound-ms", type=int, default=30_000)
    ap.add_argument("--checkpoint-interval-ms", type=int, default=1000,
                    help="the pipelines' checkpoints, which are also when their exactly-once outputs commit")
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    JOB_OPTIONS[:] = ["--checkpoint-interval-ms", str(a.checkpoint_interval_ms), "--parallelism", str(a.parallelism)]
    if a.smoke:
        a.events, a.file_events, a.max_s, a.latency_rate, a.latency_s, a.bound_ms = 3000, 300, 120.0, 100.0, 6.0, 2000
    workloads = [Workload("1% actionable", a.events, 0.01, bound_ms=a.bound_ms),
                 Workload("10% actionable", a.events, 0.10, bound_ms=a.bound_ms)]
    if a.smoke:
        workloads = workloads[:1]
    local.ensure_fetched("kafka", "flink")
    runs, latency = [], []
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        for w in workloads:
            for system in SYSTEMS:
                runs.append(kafka_throughput(system, w, Path(work), a.max_s, keep_outcomes=a.smoke))
                print(f"bench: {system} / {w.name}: {runs[-1]['events_per_s']:,.0f} events/s", flush=True)
        for w in workloads:
            fw = Workload(w.name, a.file_events, w.actionable, bound_ms=a.bound_ms)
            for mode in ("thread", "process") if w is workloads[0] else ("thread",):
                runs.append(file_run(fw, Path(work), mode))
                print(f"bench: file mode ({mode}) / {w.name}: {runs[-1]['events_per_s']:,.0f} events/s", flush=True)
        for system in (PREFILTER, SEED):
            latency.append(latency_run(system, a.latency_rate, a.latency_s, a.bound_ms, Path(work)))
            print(f"bench: latency {system}: p95 {latency[-1]['p95_ms']} ms", flush=True)
    result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "smoke": a.smoke, "job_options": JOB_OPTIONS, "runs": runs, "latency": latency,
              "summary": summarize(runs, latency, workloads[0].name)}
    result.update({k: result["summary"][k] for k in ("events_per_s", "p95_latency_ms", "ratio_vs_seed_loop",
                                                      "ratio_vs_python_operators")})
    a.out.mkdir(parents=True, exist_ok=True)
    stored = {**result, "runs": [{k: v for k, v in r.items() if k != "outcomes"} for r in runs]}
    name = "smoke" if a.smoke else "latest"
    merge_results(a.out / f"{name}.json", stored, replace=True)
    plot(result, a.out / f"{name}.png")
    print(table(result))
    return result


if __name__ == "__main__":
    main()
