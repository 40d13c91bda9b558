"""What the benchmark measures: throughput from committed output counts, latency percentiles,
peak RSS and CPU seconds of process trees. Pure functions plus a psutil sampler."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class Sample:
    t: float          # monotonic seconds
    done: int         # committed output records so far
    cpu_s: float      # CPU seconds of every watched process so far
    rss: dict[str, int] = field(default_factory=dict)  # bytes per role
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # CPU seconds so far of the live processes


def steady_window(samples: list[Sample], total: int) -> tuple[Sample, Sample] | None:
    """The samples at 10% and 90% of `total` done: the steady part, without JVM start-up and the last
    transaction's tail. Falls back to first output..last sample (a run stopped by its time limit), and
    when every output arrived in one commit (a tiny run), to the sample before it..the commit."""
    lo = next((s for s in samples if s.done >= 0.1 * total), None)
    hi = next((s for s in samples if s.done >= 0.9 * total), None)
    if lo is None or hi is None or hi.t - lo.t < 1.0:
        started = [s for s in samples if s.done > 0]
        if not started:
            return None
        lo, hi = started[0], started[-1]
        if hi.done <= lo.done:
            before = [s for s in samples if s.t < lo.t]
            if not before:
                return None
            lo, hi = before[-1], started[0]
    return lo, hi


def cpu_share(samples: list[Sample], total: int) -> dict[str, float]:
    """Cores used by each role during the steady window (CPU seconds per wall second)."""
    window = steady_window(samples, total)
    if window is None or window[1].t <= window[0].t:
        return {}
    lo, hi = window
    return {r: round((hi.cpu_by_role.get(r, 0.0) - lo.cpu_by_role.get(r, 0.0)) / (hi.t - lo.t), 2)
            for r in sorted(hi.cpu_by_role)}


def sustained_rate(samples: list[Sample], total: int) -> tuple[float, float, float]:
    """(events/s, CPU s per 1k events, seconds) over the steady window."""
    window = steady_window(samples, total)
    if window is None:
        return 0.0, math.nan, 0.0
    lo, hi = window
    n = hi.done - lo.done
    if n <= 0 or hi.t <= lo.t:
        return 0.0, math.nan, hi.t - lo.t
    return n / (hi.t - lo.t), (hi.cpu_s - lo.cpu_s) / (n / 1000), hi.t - lo.t


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def role_of(cmdline: list[str], roles: dict[int, str], pid: int, parent_role: str) -> str:
    """Name a process for the RSS table: the JVM, Flink's Python workers, or the watched root's role."""
    text = " ".join(cmdline)
    if cmdline and cmdline[0].endswith("java"):
        return f"{parent_role} JVM"
    if "pyflink" in text or "beam" in text or "fn_execution" in text:
        return f"{parent_role} Python workers"
    return roles.get(pid, parent_role)


class Probe:
    """Samples RSS by role and total CPU of watched process trees (root pid -> role)."""

    def __init__(self, roots: dict[int, str]) -> None:
        self.roots = roots
        self.peak: dict[str, int] = {}
        self._cpu_gone = 0.0
        self._last_cpu: dict[int, float] = {}

    def sample(self, done: int) -> Sample:
        rss: dict[str, int] = {}
        cpu_now: dict[int, float] = {}
        by_role: dict[str, float] = {}
        for root_pid, role in self.roots.items():
            try:
                root = psutil.Process(root_pid)
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for p in procs:
                try:
                    with p.oneshot():
                        t = p.cpu_times()
                        cpu_now[p.pid] = t.user + t.system + t.children_user + t.children_system
                        r = role_of(p.cmdline(), self.roots, p.pid, role)
                        rss[r] = rss.get(r, 0) + p.memory_info().rss
                        by_role[r] = by_role.get(r, 0.0) + cpu_now[p.pid]
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
        for pid, cpu in self._last_cpu.items():  # processes that ended keep their CPU time
            if pid not in cpu_now:
                self._cpu_gone += cpu
        self._last_cpu = cpu_now
        for r, b in rss.items():
            self.peak[r] = max(self.peak.get(r, 0), b)
        return Sample(time.monotonic(), done, self._cpu_gone + sum(cpu_now.values()), rss, by_role)
