"""`python -m chaos.campaign`: seeded runs with faults, a Markdown table on stdout, JSON + Markdown reports.

    python -m chaos.campaign --runs 4 --seed 7 --faults-per-run 13 --out chaos/reports/campaign

writes `<out>.json` and `<out>.md`. Exit code 0 only when no run found a
violation and every run settled (so CI can use it directly); `--broken-sink`
runs the test-only sink without idempotency and is expected to exit 1.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chaos.faults import KINDS, campaign
from chaos.harness import RunConfig, run_once
from chaos.report import fault_timeline, markdown, totals
from tests.infra import local

WARMUP_S = 30.0   # the job's first start takes ~20-30 s on a 2-core machine
TAIL_S = 20.0     # load after the last fault's slot, before draining


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults-per-run", type=int, default=len(KINDS))
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated fault kinds to draw from")
    ap.add_argument("--fault-spacing-s", type=float, default=15.0, help="load seconds per fault slot")
    ap.add_argument("--rate", type=float, default=10.0, help="input records per second")
    ap.add_argument("--broken-sink", action="store_true", help="TEST-ONLY: sink without idempotency")
    ap.add_argument("--workdir", default=None, help="process logs and state (default: a temporary directory)")
    ap.add_argument("--out", default=None, help="report path without suffix: writes .json and .md")
    return ap.parse_args(argv)


def run_campaign(a: argparse.Namespace, log=print) -> list[dict[str, Any]]:
    kinds = tuple(k for k in a.kinds.split(",") if k)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    span = a.faults_per_run * a.fault_spacing_s
    schedule = campaign(a.seed, a.runs, a.faults_per_run, WARMUP_S, span, kinds)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="chaos-"))
    local.ensure_fetched("kafka", "flink")
    runs = []
    for i, faults in enumerate(schedule):
        cfg = RunConfig(seed=a.seed * 1000 + i, workdir=workdir / f"run-{i + 1}", faults=faults,
                        duration_s=WARMUP_S + span + TAIL_S, rate_per_s=a.rate, broken_sink=a.broken_sink)
        log(f"run {i + 1}/{a.runs}: seed {cfg.seed}, {len(faults)} faults, logs in {cfg.workdir}", flush=True)
        result = run_once(cfg)
        runs.append(result)
        for line in fault_timeline(result):
            log("   " + line, flush=True)
        log(f"   verdict: {json.dumps(result['verdict'])}", flush=True)
    try:
        local.stop_kafka()
    except local.InfraError as e:
        log(f"stopping the broker failed: {e}", flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    command = "python -m chaos.campaign " + shlex.join(argv if argv is not None else sys.argv[1:])
    started = time.time()
    runs = run_campaign(a)
    title = "Chaos campaign" + (" against the BROKEN test-only sink" if a.broken_sink else "")
    md = markdown(runs, title, command)
    print(md)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(md)
        out.with_suffix(".json").write_text(json.dumps(
            {"command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
             "wall_s": round(time.time() - started, 1), "totals": totals(runs), "runs": runs}, indent=1))
    t = totals(runs)
    clean = all(t[v] == 0 for v in ("duplicates", "losses", "unexpected", "wrong_outcomes",
                                     "unaccounted_rejections"))
    return 0 if clean and t["all_settled"] else 1


if __name__ == "__main__":
    sys.exit(main())
