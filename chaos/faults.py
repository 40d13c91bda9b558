"""Fault kinds and the seeded schedule of a campaign. Pure logic: the same seed gives the same faults.

A campaign cycles through the kinds so that every kind is injected about as
often as the others, shuffles that order with the seed, and splits it into
runs; inside a run each fault gets a seeded time and seeded parameters. The
times are earliest starts: the harness injects faults one at a time, and a
fault that needs a moment (a tool call in flight, a checkpoint) waits for it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

JOB_KILL = "job_kill"                # SIGKILL of the job's process group (MiniCluster: JobManager + TaskManager)
SINK_KILL = "sink_kill"              # SIGKILL of the sink after a tool call committed, before its receipt
BROKER_RESTART = "broker_restart"    # stop the Kafka broker, start it again on the same data
TOOL_LATENCY = "tool_latency"        # every tool call slowed for a while
TOOL_500 = "tool_500"                # the next tool calls answer HTTP 500
TOOL_TIMEOUT = "tool_timeout"        # the next tool calls take longer than the sink's timeout
SANDBOX_RESTART = "sandbox_restart"  # SIGKILL of the tool service, started again on the same database
DUPLICATE_INPUT = "duplicate_input"  # already-sent input records produced again (new offsets, same identity)

KINDS: tuple[str, ...] = (JOB_KILL, SINK_KILL, BROKER_RESTART, TOOL_LATENCY, TOOL_500, TOOL_TIMEOUT,
                          SANDBOX_RESTART, DUPLICATE_INPUT)


@dataclass(frozen=True)
class Fault:
    at_s: float                      # earliest start, seconds after the load started
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def params_for(kind: str, rng: random.Random) -> dict[str, Any]:
    """Seeded intensity of one fault."""
    if kind == BROKER_RESTART:
        return {"down_s": round(rng.uniform(2, 8), 1)}
    if kind == TOOL_LATENCY:
        return {"latency_ms": rng.choice([300, 600, 1000, 1500]), "for_s": round(rng.uniform(4, 10), 1)}
    if kind == TOOL_500:
        return {"fail_next": rng.randint(2, 6)}
    if kind == TOOL_TIMEOUT:
        return {"slow_next": rng.randint(1, 3)}
    if kind == SANDBOX_RESTART:
        return {"down_s": round(rng.uniform(0.5, 3), 1)}
    if kind == DUPLICATE_INPUT:
        return {"records": rng.randint(3, 10)}
    return {}


def campaign(seed: int, runs: int, faults_per_run: int, warmup_s: float, span_s: float,
             kinds: tuple[str, ...] = KINDS) -> list[list[Fault]]:
    """`runs` lists of `faults_per_run` faults, spread over [warmup_s, warmup_s + span_s) of each run."""
    rng = random.Random(seed)
    total = runs * faults_per_run
    order: list[str] = []
    while len(order) < total:
        cycle = list(kinds)
        rng.shuffle(cycle)
        order.extend(cycle)
    out = []
    for r in range(runs):
        chosen = order[r * faults_per_run:(r + 1) * faults_per_run]
        slot = span_s / max(1, len(chosen))
        times = [warmup_s + i * slot + rng.uniform(0, slot * 0.5) for i in range(len(chosen))]
        out.append([Fault(round(t, 1), k, params_for(k, rng)) for t, k in zip(times, chosen)])
    return out


def count_by_kind(faults: list[Fault]) -> dict[str, int]:
    out = {k: 0 for k in KINDS}
    for f in faults:
        out[f.kind] = out.get(f.kind, 0) + 1
    return out
