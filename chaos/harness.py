"""One chaos run: a fresh broker, the Kafka-mode job (MiniCluster), the sink process and the sandbox tools
under a steady seeded load, with faults injected on schedule, then the invariants checked.

Why the run owns its broker: stopping and restarting Kafka is one of the faults,
and a fresh broker per run means each run's topics hold exactly its own records.
The processes run as in production (separate OS processes talking over Kafka and
HTTP); everything is stopped by pid (`tests.procs.Proc` process groups, the
infra scripts' pid files), never by name.

The sink runs with a retry budget that outlasts the injected tool outages
(`--max-attempts 40`) and with the backlog degrade policy out of reach
(`--degrade-above 1000000`): both are exact, tested behaviours of their own, and
here they would turn an expected notice into a deliberate `tool_failed` or
`degraded` outcome that the oracle does not model.
"""
from __future__ import annotations

import json
from decimal import Decimal
import os
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests
from kafka import KafkaConsumer, TopicPartition

from chaos import faults as fk
from chaos.faults import Fault
from chaos.invariants import Verdict, check
from chaos.load import LATENESS_BOUND_MS, Load, Sent
from tests.infra import local
from tests.kafka_helpers import consume, consume_json
from tests.oracles import actions_oracle
from tests.procs import Proc, start_sandbox

TOOL_TIMEOUT_S = 2.0
SANDBOX_FAULT_RESET = {"reset": True}


@dataclass
class RunConfig:
    seed: int
    workdir: Path
    faults: list[Fault]
    duration_s: float = 150.0          # load phase; faults happen inside it
    rate_per_s: float = 10.0
    broken_sink: bool = False          # the test-only sink without idempotency (negative control)
    settle_timeout_s: float = 300.0
    checkpoint_interval_ms: int = 1000


@dataclass
class Injected:
    kind: str
    scheduled_s: float
    params: dict[str, Any]
    start: float = 0.0                 # monotonic
    end: float = 0.0                   # when the fault was lifted (process restarted, broker back, ...)
    sent_before: int = 0               # inputs produced before the fault started
    triggered: bool = True
    note: str = ""
    recovery_s: float | None = None

    def as_dict(self, t0: float) -> dict[str, Any]:
        return {"kind": self.kind, "at_s": round(self.start - t0, 1), "scheduled_s": self.scheduled_s,
                "params": self.params, "triggered": self.triggered, "note": self.note,
                "lasted_s": round(self.end - self.start, 2),
                "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 2)}


class Monitor(threading.Thread):
    """Reads agent.traces and agent.receipts (read_committed) as they commit, stamping arrival times."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True, name="chaos-monitor")
        self.bootstrap = bootstrap
        self.traces: list[tuple[float, dict[str, Any]]] = []
        self.receipts: list[tuple[float, dict[str, Any]]] = []
        self.next_offset: dict[str, int] = {}
        self.lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self._consume()
            except Exception:  # the broker is being restarted: connect again
                self._halt.wait(1.0)

    def _consume(self) -> None:
        c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                          isolation_level="read_committed", auto_offset_reset="earliest")
        try:
            lists = {"agent.traces": self.traces, "agent.receipts": self.receipts}
            tps = [TopicPartition(t, 0) for t in lists]  # both topics have one partition
            c.assign(tps)
            for tp in tps:  # after a reconnect, go on where we were (offsets have gaps: transaction markers)
                c.seek(tp, self.next_offset.get(tp.topic, 0))
            while not self._halt.is_set():
                for tp, msgs in c.poll(timeout_ms=200).items():
                    now = time.monotonic()
                    with self.lock:
                        for m in msgs:
                            if m.offset >= self.next_offset.get(tp.topic, 0):
                                lists[tp.topic].append((now, json.loads(m.value)))
                                self.next_offset[tp.topic] = m.offset + 1
        finally:
            c.close()

    def stop(self) -> None:
        self._halt.set()
        if self.ident is not None:
            self.join(timeout=30)

    def snapshot(self) -> tuple[list[tuple[float, dict[str, Any]]], list[tuple[float, dict[str, Any]]]]:
        with self.lock:
            return list(self.traces), list(self.receipts)


def latest_checkpoint(state: Path) -> str | None:
    """The newest completed checkpoint of any attempt (newest _metadata), for a restart after SIGKILL."""
    metas = list((state / "checkpoints").glob("*/chk-*/_metadata"))
    return str(max(metas, key=lambda p: p.stat().st_mtime).parent) if metas else None


class Pipeline:
    """The three processes of the Kafka-mode pipeline, started, killed and restarted by the harness."""

    def __init__(self, cfg: RunConfig, bootstrap: str) -> None:
        self.cfg, self.bootstrap, self.dir = cfg, bootstrap, cfg.workdir
        self.job_state, self.sink_state, self.db = self.dir / "job-state", self.dir / "sink-state", self.dir / "tools.sqlite"
        self.starts: dict[str, int] = {"job": 0, "sink": 0, "sandbox": 0}
        self.sandbox: Proc | None = None
        self.job: Proc | None = None
        self.sink: Proc | None = None
        self.url = ""

    def _log(self, name: str) -> Path:
        self.starts[name] += 1
        return self.dir / f"{name}-{self.starts[name]}.log"

    def start_sandbox(self) -> None:
        if not self.url:
            self.sandbox, self.url = start_sandbox(self.dir, self.db)
            self.starts["sandbox"] += 1
            return
        port = self.url.rsplit(":", 1)[1]
        self.sandbox = Proc.python("sinks.sandbox", "--port", port, "--db", str(self.db), log=self._log("sandbox"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"sandbox did not come back on {self.url}:\n{self.sandbox.tail()}")

    def start_job(self) -> None:
        chk = latest_checkpoint(self.job_state)
        args = ["--bootstrap-servers", self.bootstrap, "--state", str(self.job_state), "--group-id", "chaos",
                "--checkpoint-interval-ms", str(self.cfg.checkpoint_interval_ms),
                "--topic-pattern", r"cdc\.public\.orders", "--max-out-of-orderness-ms", str(LATENESS_BOUND_MS)]
        if chk:
            args += ["--from-checkpoint", chk]
        self.job = Proc.python("jobs.agent_job", *args, log=self._log("job"))

    def start_sink(self) -> None:
        env_flag = {"AGENT_SINK_UNSAFE_NO_IDEMPOTENCY": "1"} if self.cfg.broken_sink else {}
        args = ["sinks.action_sink", "--bootstrap-servers", self.bootstrap, "--tools-url", self.url,
                "--state", str(self.sink_state), "--group-id", "chaos-sink", "--max-attempts", "40",
                "--tool-timeout-s", str(TOOL_TIMEOUT_S), "--degrade-above", "1000000"]
        old = {k: os.environ.get(k) for k in env_flag}
        os.environ.update(env_flag)  # Proc inherits the environment
        try:
            self.sink = Proc.python(*args, log=self._log("sink"))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def faults(self, body: dict[str, Any]) -> None:
        requests.post(self.url + "/_faults", json=body, timeout=5).raise_for_status()

    def inflight(self) -> int:
        return int(requests.get(self.url + "/_stats", timeout=2).json()["inflight"])

    def procs(self) -> dict[str, Proc | None]:
        return {"sandbox": self.sandbox, "job": self.job, "sink": self.sink}

    def stop_all(self) -> None:
        for p in (self.sink, self.job, self.sandbox):
            if p is not None:
                p.stop()

    def ledger(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(str(self.db))
        try:
            return [{"effect": r[0], "ref": r[1], "idempotency_key": r[2]}
                    for r in db.execute("SELECT effect, ref, idempotency_key FROM ledger ORDER BY seq")]
        finally:
            db.close()


class Run:
    """`observer(run)` is called once the processes and the load are up (the soak samples from there)."""

    def __init__(self, cfg: RunConfig, observer: Callable[["Run"], None] | None = None) -> None:
        self.cfg = cfg
        self.observer = observer
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        self.injected: list[Injected] = []
        self.unplanned: list[dict[str, Any]] = []
        self._oracle_cache: tuple[int, set[tuple[str, str]], set[tuple[str, str]]] | None = None
        self.t0 = 0.0

    # -- the run ---------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        started = time.monotonic()
        bootstrap = local.start_kafka(fresh=True)["bootstrap"]
        self.pipe = Pipeline(self.cfg, bootstrap)
        self.load = Load(bootstrap, self.cfg.seed, self.cfg.rate_per_s)
        self.monitor = Monitor(bootstrap)
        pipe = self.pipe
        try:
            pipe.start_sandbox()
            pipe.start_job()
            pipe.start_sink()
            self.monitor.start()
            self.load.start()
            self.t0 = time.monotonic()
            if self.observer:
                self.observer(self)
            for fault in sorted(self.cfg.faults, key=lambda f: f.at_s):
                self._sleep_until(self.t0 + fault.at_s)
                self._inject(fault)
            self._sleep_until(self.t0 + self.cfg.duration_s)
            self.load.drain()
            settled = self._settle()
        finally:
            for stop in (self.load.stop, pipe.stop_all, self.monitor.stop):
                try:
                    stop()
                except Exception as e:  # keep stopping the others: never leave processes behind
                    print(f"chaos: {stop.__qualname__} failed: {e!r}", file=sys.stderr, flush=True)
        result = self._verdict(bootstrap, settled)
        result["wall_s"] = round(time.monotonic() - started, 1)
        return result

    def _sleep_until(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._watchdog()
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _watchdog(self) -> None:
        """Restart a process that died on its own (not by an injected fault), and say so in the report."""
        if self.load.error is not None:
            raise RuntimeError(f"the load producer failed: {self.load.error!r}")
        for name, proc in self.pipe.procs().items():
            if proc is not None and not proc.alive():
                self.unplanned.append({"process": name, "at_s": round(time.monotonic() - self.t0, 1),
                                       "exit": proc.p.returncode, "log": proc.log.name,
                                       "tail": proc.tail(600)})
                proc.kill()
                getattr(self.pipe, f"start_{name}")()

    # -- faults ----------------------------------------------------------------
    def _inject(self, fault: Fault) -> None:
        rec = Injected(fault.kind, fault.at_s, dict(fault.params), start=time.monotonic(),
                       sent_before=len(self.load.sent))
        pipe, p = self.pipe, fault.params
        if fault.kind == fk.JOB_KILL:
            self._wait(lambda: latest_checkpoint(pipe.job_state), 120)
            assert pipe.job is not None
            rec.start = time.monotonic()
            pipe.job.kill()
            rec.note = f"restored from {Path(latest_checkpoint(pipe.job_state) or 'none').name}"
            pipe.start_job()
        elif fault.kind == fk.SINK_KILL:
            pipe.faults({"slow_next": 1, "slow_ms": 60_000, "slow_after_work": True})
            caught = self._wait(lambda: pipe.inflight() > 0, 90, every_s=0.02)
            assert pipe.sink is not None
            rec.start = time.monotonic()
            pipe.sink.kill()
            pipe.faults(SANDBOX_FAULT_RESET)
            rec.triggered = bool(caught)
            rec.note = "killed during a committed, unanswered tool call" if caught else "no tool call in 90 s"
            pipe.start_sink()
        elif fault.kind == fk.BROKER_RESTART:
            local.stop_kafka()
            time.sleep(p["down_s"])
            local.start_kafka(create_topics=False)
        elif fault.kind == fk.TOOL_LATENCY:
            pipe.faults({"latency_ms": p["latency_ms"]})
            self._sleep_until(time.monotonic() + p["for_s"])
            pipe.faults(SANDBOX_FAULT_RESET)
        elif fault.kind == fk.TOOL_500:
            pipe.faults({"fail_next": p["fail_next"], "fail_status": 500})
            self._await_consumed(rec, "fail_next", p["fail_next"])
        elif fault.kind == fk.TOOL_TIMEOUT:
            pipe.faults({"slow_next": p["slow_next"], "slow_ms": int(TOOL_TIMEOUT_S * 1000) + 1500})
            self._await_consumed(rec, "slow_next", p["slow_next"])
            pipe.faults(SANDBOX_FAULT_RESET)
        elif fault.kind == fk.SANDBOX_RESTART:
            assert pipe.sandbox is not None
            pipe.sandbox.kill()
            time.sleep(p["down_s"])
            pipe.start_sandbox()
        elif fault.kind == fk.DUPLICATE_INPUT:
            self.load.redeliver(p["records"])
        else:
            raise ValueError(f"unknown fault kind {fault.kind}")
        rec.end = time.monotonic()
        self.injected.append(rec)
        print(f"   t+{rec.start - self.t0:5.1f}s {rec.kind} {rec.params or ''} {rec.note}"
              f"{'' if rec.triggered else ' (not triggered)'}", flush=True)

    def _await_consumed(self, rec: Injected, counter: str, initial: int, timeout_s: float = 90) -> None:
        """A counted tool fault starts when the first tool call suffers it, and ends when the last one has."""
        first: list[float] = []

        def left() -> bool:
            n = int(requests.get(self.pipe.url + "/_faults", timeout=2).json()[counter])
            if n < initial and not first:
                first.append(time.monotonic())
            return n == 0

        rec.triggered = bool(self._wait(left, timeout_s, every_s=0.05))
        rec.start = first[0] if first else rec.start

    def _wait(self, predicate: Any, timeout_s: float, every_s: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                value = predicate()
            except requests.RequestException:
                value = None
            if value:
                return value
            self._watchdog()
            time.sleep(every_s)
        return None

    # -- settling and judging ----------------------------------------------------
    def _expected(self) -> tuple[list[Sent], set[tuple[str, str]], set[tuple[str, str]]]:
        """The acknowledged inputs and the oracle's (executed, rate_limited) actions for them.

        Only VIP or high-value orders can lead to an action, so the (brute-force, slow) oracle is fed
        those alone and recomputed only when they change; the drain's small orders never change it.
        """
        sent = self.load.acknowledged()
        relevant = [s.envelope for s in sent if s.expect != "dlq" and (
            s.envelope["payload"]["after"]["vip_flag"] or Decimal(s.envelope["payload"]["after"]["amount"]) >= 1000)]
        if self._oracle_cache is None or self._oracle_cache[0] != len(relevant):
            self._oracle_cache = (len(relevant), *actions_oracle(relevant, limit=120))
        return sent, self._oracle_cache[1], self._oracle_cache[2]

    def _settle(self) -> bool:
        """Wait (load draining) until every expected action has a receipt and every actionable input an
        outcome, then stop the load and wait until every input has one."""
        def done(actionable_only: bool) -> bool:
            self._watchdog()
            sent, expected, _ = self._expected()
            traces, receipts = self.monitor.snapshot()
            traced = {(t["topic"], t["partition"], t["offset"]) for _, t in traces}
            got = {(r["tool"], r["idempotency_key"]) for _, r in receipts}
            todo = [s for s in sent if not actionable_only or s.expect == "actionable"]
            return expected <= got and all((s.envelope["topic"], s.partition, s.offset) in traced for s in todo)

        deadline = time.monotonic() + self.cfg.settle_timeout_s
        ok = self._poll(lambda: done(True), deadline)
        self.load.stop()
        return self._poll(lambda: self.load.unacknowledged() == 0 and done(False), deadline) and ok

    def _poll(self, predicate: Any, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(2.0)
        return False

    def _recoveries(self) -> None:
        """Fault -> the next committed progress of the part it hit (see README "Guarantees under faults")."""
        traces, receipts = self.monitor.snapshot()
        index = {(s.envelope["topic"], s.partition, s.offset): i for i, s in enumerate(self.load.sent)}
        for rec in self.injected:
            if not rec.triggered:
                continue
            if rec.kind in (fk.JOB_KILL, fk.BROKER_RESTART):
                times = [t for t, tr in traces if t > rec.start
                         and index.get((tr["topic"], tr["partition"], tr["offset"]), -1) >= rec.sent_before]
            elif rec.kind == fk.DUPLICATE_INPUT:
                redelivered = {(s.envelope["topic"], s.partition, s.offset)
                               for s in self.load.sent[rec.sent_before:] if s.redelivery}
                seen = [t for t, tr in traces if (tr["topic"], tr["partition"], tr["offset"]) in redelivered]
                times = [max(seen)] if seen and len(seen) >= len(redelivered) else []
            elif rec.kind == fk.TOOL_LATENCY:  # progress while the tools are slow
                times = [t for t, _ in receipts if t > rec.start]
            else:  # sink kill, sandbox restart, 500s, timeouts: the next new receipt after the fault was lifted
                times = [t for t, _ in receipts if t > rec.end]
            rec.recovery_s = (min(times) - rec.start) if times else None

    def _verdict(self, bootstrap: str, settled: bool) -> dict[str, Any]:
        self._recoveries()
        sent, expected, limited = self._expected()
        traces = consume_json(bootstrap, "agent.traces")
        receipts = consume_json(bootstrap, "agent.receipts")
        dlq = consume_json(bootstrap, "ops.agent_dlq")
        ledger = self.pipe.ledger()
        inputs = [s.input_record() for s in sent]
        verdict: Verdict = check(inputs, expected, traces, receipts, ledger, dlq)
        (self.cfg.workdir / "outputs.json").write_text(json.dumps(  # the evidence, for a failed verdict
            {"inputs": [r.__dict__ for r in inputs], "expected": sorted(expected), "traces": traces,
             "receipts": receipts, "dlq": dlq, "ledger": ledger}))
        load_s = max(1e-9, self.cfg.duration_s)
        actions_topic = len(consume(bootstrap, "agent.actions"))
        return {
            "seed": self.cfg.seed, "broken_sink": self.cfg.broken_sink, "settled": settled,
            "faults": [r.as_dict(self.t0) for r in self.injected],
            "unplanned_restarts": self.unplanned,
            "verdict": verdict.summary(), "examples": verdict.examples(),
            "oracle_rate_limited": len(limited),
            "inputs": len(sent), "redelivered_inputs": sum(1 for s in sent if s.redelivery),
            "input_rate_per_s": round(len(sent) / load_s, 1), "action_requests": actions_topic,
            "process_starts": dict(self.pipe.starts),
        }


def run_once(cfg: RunConfig) -> dict[str, Any]:
    return Run(cfg).execute()
