"""`python -m chaos.soak --duration-s N`: a bounded, fault-free run that samples what slow leaks show in.

Every `--sample-s` seconds: input and output throughput, the RSS of each process
(the job's JVM, its Python workers and driver, the sink, the sandbox; read from
/proc by process group, so only our processes), the size of the job's
checkpoint directory and of the latest checkpoint, and the durations of the
checkpoints completed since the last sample. The job runs on a local
MiniCluster, which has no REST endpoint here, so a checkpoint's duration is
measured from the filesystem: from when its `chk-N` directory appears (Flink
creates it when the checkpoint is triggered) to when its `_metadata` appears
(written on completion), polled every 100 ms. At the end the invariants are
checked as in a campaign run. Writes `<out>.json` and `<out>.md`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from chaos.harness import Run, RunConfig
from chaos.report import percentile
from tests.infra import local

PAGE = os.sysconf("SC_PAGE_SIZE")


def group_rss(pgid: int) -> dict[str, float]:
    """RSS in MiB of the processes of one process group, by role (java / python workers / python)."""
    out: dict[str, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid:  # field 5 of stat: the process group
                continue
            rss = int((d / "statm").read_text().split()[1]) * PAGE / 2**20
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        role = "java" if "java" in cmd.split(" ")[0] else "python_workers" if (
            "fn_execution" in cmd or "beam" in cmd) else "python"
        out[role] = out.get(role, 0.0) + rss
    return out


def dir_mib(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / 2**20


class CheckpointWatch(threading.Thread):
    """First-seen times of chk-N directories and of their _metadata: checkpoint durations."""

    def __init__(self, checkpoints: Path) -> None:
        super().__init__(daemon=True, name="chaos-chk-watch")
        self.dir = checkpoints
        self.started: dict[str, float] = {}
        self.completed: dict[str, float] = {}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.wait(0.1):
            now = time.monotonic()
            for chk in self.dir.glob("*/chk-*"):
                name = f"{chk.parent.name}/{chk.name}"
                self.started.setdefault(name, now)
                if name not in self.completed and (chk / "_metadata").exists():
                    self.completed[name] = now

    def durations_since(self, t: float) -> list[float]:
        return [self.completed[n] - self.started[n] for n in list(self.completed) if self.completed[n] > t]


class Sampler(threading.Thread):
    def __init__(self, run: Run, every_s: float) -> None:
        super().__init__(daemon=True, name="chaos-sampler")
        self.run_, self.every = run, every_s
        self.samples: list[dict[str, Any]] = []
        self.stop_flag = threading.Event()
        self.chk = CheckpointWatch(run.pipe.job_state / "checkpoints")

    def run(self) -> None:
        self.chk.start()
        last_t, last_in, last_out = time.monotonic(), 0, 0
        while not self.stop_flag.wait(self.every):
            now = time.monotonic()
            r = self.run_
            traces, _ = r.monitor.snapshot()
            n_in, n_out = len(r.load.acknowledged()), len(traces)
            rss: dict[str, float] = {}
            for name, proc in r.pipe.procs().items():
                if proc is not None and proc.alive():
                    for role, mib in group_rss(proc.p.pid).items():
                        rss[f"{name}_{role}" if name == "job" else name] = round(mib, 1)
            chks = sorted((r.pipe.job_state / "checkpoints").glob("*/chk-*/_metadata"), key=lambda p: p.stat().st_mtime)
            durs = self.chk.durations_since(last_t)
            self.samples.append({
                "t_s": round(now - r.t0, 1), "inputs_per_s": round((n_in - last_in) / (now - last_t), 1),
                "traces_per_s": round((n_out - last_out) / (now - last_t), 1), "rss_mib": rss,
                "checkpoint_dir_mib": round(dir_mib(r.pipe.job_state / "checkpoints"), 2),
                "latest_checkpoint_mib": round(dir_mib(chks[-1].parent), 3) if chks else None,
                "checkpoints_completed": len(durs),
                "checkpoint_s_p50": _r(percentile(durs, 50)), "checkpoint_s_max": _r(max(durs) if durs else None)})
            last_t, last_in, last_out = now, n_in, n_out

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(timeout=30)
        self.chk.stop_flag.set()


def _r(v: float | None) -> float | None:
    """Seconds to the poll's resolution (0.1 s) and a bit: 0.0 means under one poll."""
    return None if v is None else round(v, 2)


def growth(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per process: RSS at the first and last sample after warm-up (the first third is start-up), MiB/min."""
    steady = samples[len(samples) // 3:] or samples
    out = {}
    for name in sorted({k for s in steady for k in s["rss_mib"]}):
        pts = [(s["t_s"], s["rss_mib"][name]) for s in steady if name in s["rss_mib"]]
        if len(pts) >= 2:
            (t1, m1), (t2, m2) = pts[0], pts[-1]
            out[name] = {"first_mib": m1, "last_mib": m2, "peak_mib": max(m for _, m in pts),
                         "mib_per_min": round((m2 - m1) / max(1e-9, (t2 - t1) / 60), 2)}
    return out


def markdown(result: dict[str, Any], command: str) -> str:
    s = result["samples"]
    g = result["rss_growth"]
    c = result["checkpoints"]
    lines = ["# Soak run", "", f"Command: `{command}`", "",
             f"Load {result['duration_s']} s at {result['rate_per_s']} records/s; inputs {result['inputs']}, "
             f"mean committed traces/s {result['mean_traces_per_s']}; invariants: "
             f"{'OK' if result['verdict']['ok'] else 'VIOLATED'} (duplicates {result['verdict']['duplicates']}, "
             f"losses {result['verdict']['losses']}).", "",
             f"Checkpoints completed: {c['completed']}, duration p50 {c['p50_s']} s, p95 {c['p95_s']} s, "
             f"max {c['max_s']} s; checkpoint directory {c['dir_mib_first']} → {c['dir_mib_last']} MiB, latest "
             f"checkpoint {c['latest_mib_last']} MiB.", "",
             "| process | RSS after warm-up (MiB) | at end (MiB) | peak (MiB) | growth (MiB/min) |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {v['first_mib']} | {v['last_mib']} | {v['peak_mib']} | {v['mib_per_min']} |"
              for n, v in g.items()]
    names = sorted({k for x in s for k in x["rss_mib"]})
    lines += ["", "| t (s) | inputs/s | traces/s | " + " | ".join(f"{n} MiB" for n in names)
              + " | chk dir MiB | latest chk MiB | chk done | chk p50 (s) |",
              "|" + "---:|" * (7 + len(names))]
    for x in s:
        lines.append(f"| {x['t_s']} | {x['inputs_per_s']} | {x['traces_per_s']} | "
                     + " | ".join(str(x["rss_mib"].get(n, "–")) for n in names)
                     + f" | {x['checkpoint_dir_mib']} | {x['latest_checkpoint_mib']} | {x['checkpoints_completed']} "
                     f"| {x['checkpoint_s_p50'] if x['checkpoint_s_p50'] is not None else '–'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=180.0)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None, help="report path without suffix: writes .json and .md")
    a = ap.parse_args(argv)
    command = "python -m chaos.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    local.ensure_fetched("kafka", "flink")
    cfg = RunConfig(seed=a.seed, workdir=Path(a.workdir or tempfile.mkdtemp(prefix="chaos-soak-")), faults=[],
                    duration_s=a.duration_s, rate_per_s=a.rate)
    holder: dict[str, Sampler] = {}

    def observe(run: Run) -> None:
        holder["s"] = Sampler(run, a.sample_s)
        holder["s"].start()

    run = Run(cfg, observer=observe)
    result = run.execute()
    holder["s"].stop()
    local.stop_kafka()
    samples = holder["s"].samples
    in_load = [x for x in samples if x["t_s"] <= a.duration_s]
    durs = [d for n, d in ((n, holder["s"].chk.completed[n] - holder["s"].chk.started[n])
                           for n in holder["s"].chk.completed)]
    dirs = [x["checkpoint_dir_mib"] for x in samples]
    soak = {"duration_s": a.duration_s, "rate_per_s": a.rate, "inputs": result["inputs"],
            "verdict": result["verdict"], "settled": result["settled"], "samples": samples,
            "mean_traces_per_s": round(sum(x["traces_per_s"] for x in in_load) / max(1, len(in_load)), 1),
            "rss_growth": growth(in_load),
            "checkpoints": {"completed": len(durs), "p50_s": _r(percentile(durs, 50)),
                            "p95_s": _r(percentile(durs, 95)), "max_s": _r(max(durs) if durs else None),
                            "dir_mib_first": dirs[0] if dirs else None, "dir_mib_last": dirs[-1] if dirs else None,
                            "latest_mib_last": samples[-1]["latest_checkpoint_mib"] if samples else None},
            "run": result}
    md = markdown(soak, command)
    print(md)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(md)
        out.with_suffix(".json").write_text(json.dumps(soak, indent=1))
    return 0 if result["verdict"]["ok"] and result["settled"] else 1


if __name__ == "__main__":
    sys.exit(main())
