"""Stage micro-benchmark: `python -m bench.stages` prints µs per envelope of each pure stage.

The bench workload (bench.workload, file-mode lines) runs through each stage in a loop, in this
process, on one core: parse + gate (the compiled path the job runs), the same gate with
fastjsonschema for every record (no msgspec fast path: the other compiled choice), the same gate
on the jsonschema oracle path (the reference it is measured against), routing, the breach rule over the
qualifying orders, the agent stage's decision over the routed envelopes, and the trace record's
building and encoding. Each figure is the best of several rounds (the least disturbed by the
rest of the machine). The results go into bench/results/latest.json under `stages` (the other
keys of that file are kept) and the table is printed.
"""
from __future__ import annotations

import argparse
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from bench.results import merge_results
from bench.workload import Workload, file_lines
from contracts import records
from contracts.contract import load_contract
from contracts.outcomes import Outcome
from jobs.agent_stage import AgentStage
from jobs.breach_rule import AccountWindow, on_order
from jobs.dedup import MemoryDedupStore
from jobs.gate import Gate
from jobs.jsonl_files import encode
from jobs.policy import RulePolicy
from jobs.routing import route

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLD = Decimal("1000.00")


def best_us(run: Callable[[], int], rounds: int) -> float:
    """µs per item of the fastest of `rounds` runs (`run` returns how many items it handled)."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = run()
        best = min(best, (time.perf_counter() - t0) / max(n, 1) * 1e6)
    return best


def measure(events: int, actionable: float, rounds: int, reference_events: int) -> dict[str, Any]:
    lines = list(file_lines(Workload("stages", events, actionable)))
    contract = load_contract()
    gate, reference, policy = Gate(contract), Gate(contract, validation="reference"), RulePolicy()
    general = Gate(contract, fast_path=False)  # fastjsonschema for every record: the alternative to msgspec

    def gate_all(g: Gate, subset: list[str]) -> Callable[[], int]:
        def run() -> int:
            for i, text in enumerate(subset):
                g.check(text, i + 1)
            return len(subset)
        return run

    gate_us = best_us(gate_all(gate, lines), rounds)
    gate_general_us = best_us(gate_all(general, lines), rounds)
    ref_lines = lines[:reference_events]
    gate_reference_us = best_us(gate_all(reference, ref_lines), max(2, rounds // 2))
    passed = [r.envelope for r in (gate.check(t, i + 1) for i, t in enumerate(lines)) if r.outcome == "pass"]
    assert passed and all(e is not None for e in passed)

    def routing() -> int:
        for env in passed:
            route(env, THRESHOLD, policy)
        return len(lines)  # per envelope of the workload, as the gate

    routed = [r for r in (route(env, THRESHOLD, policy) for env in passed) if r is not None]
    qualifying = sorted((r.qualifying for r in routed if r.qualifying is not None))

    def breach_rule() -> int:
        windows: dict[str, AccountWindow] = {}
        for q in qualifying:
            on_order(windows.setdefault(q.account_id, AccountWindow()), q, THRESHOLD)
        return len(qualifying)

    stage = AgentStage(contract, policy)
    to_agent = sorted((r for r in routed if r.to_agent), key=lambda r: r.env.ts_ms)

    def agent_stage() -> int:
        dedup, accepted = MemoryDedupStore(), {}
        for r in to_agent:
            _, accepted[r.account_id] = stage.decide(r.env, r.idempotency_key, dedup, accepted.get(r.account_id, []))
        return len(to_agent)

    def serialization() -> int:
        for env in passed:
            pos = records.Position(env.topic, env.partition, env.offset, env.key, env.ts_ms, env.schema_version)
            encode(records.trace(pos, Outcome.NO_ACTION, env.idempotency_key())[1])
        return len(passed)

    routing_us = best_us(routing, rounds)
    out = {
        "workload": f"{events} CDC envelopes, {actionable:.0%} actionable (bench.workload)",
        "gate_us": round(gate_us, 2), "gate_reference_us": round(gate_reference_us, 2),
        "gate_fastjsonschema_only_us": round(gate_general_us, 2),
        "gate_speedup": round(gate_reference_us / gate_us, 1),
        "routing_us": round(routing_us, 2),
        "gate_and_routing_per_s": round(1e6 / (gate_us + routing_us)),
        "breach_rule_us": round(best_us(breach_rule, rounds), 2),
        "agent_stage_us": round(best_us(agent_stage, rounds), 2),
        "serialization_us": round(best_us(serialization, rounds), 2),
        "per_stage_items": {"breach_rule": len(qualifying), "agent_stage": len(to_agent),
                            "serialization": len(passed)},
    }
    return out


def table(s: dict[str, Any]) -> str:
    rows = [("parse + gate (compiled: msgspec fast path, fastjsonschema for the rest)", s["gate_us"]),
            ("parse + gate (fastjsonschema for every record)", s["gate_fastjsonschema_only_us"]),
            ("parse + gate (jsonschema oracle)", s["gate_reference_us"]),
            ("routing", s["routing_us"]), ("breach rule (per qualifying order)", s["breach_rule_us"]),
            ("agent-stage decision (per routed envelope)", s["agent_stage_us"]),
            ("trace record + encoding", s["serialization_us"])]
    lines = [f"stages, {s['workload']}", "| stage | µs |", "|---|---:|"]
    lines += [f"| {name} | {us:.2f} |" for name, us in rows]
    lines.append(f"gate speed-up over the oracle: {s['gate_speedup']}x; gate + routing: "
                 f"{s['gate_and_routing_per_s']:,} envelopes/s on one core")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000, help="envelopes in the workload")
    ap.add_argument("--actionable", type=float, default=0.01, help="fraction of actionable envelopes")
    ap.add_argument("--rounds", type=int, default=5, help="runs per stage; the fastest counts")
    ap.add_argument("--reference-events", type=int, default=2_000,
                    help="envelopes through the (slow) oracle path, the first of the workload")
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="results file to merge into")
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args(argv)
    stages = measure(a.events, a.actionable, a.rounds, a.reference_events)
    if not a.no_write:
        merge_results(a.out, {"stages": stages})
    print(table(stages))
    return stages


if __name__ == "__main__":
    main()
