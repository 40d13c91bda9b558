"""Campaign results as Markdown tables and JSON. Pure formatting of the run dicts of `chaos.harness`."""
from __future__ import annotations

from typing import Any

from chaos.faults import KINDS

VIOLATIONS = ("duplicates", "losses", "unexpected", "wrong_outcomes", "unaccounted_rejections")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def totals(runs: list[dict[str, Any]]) -> dict[str, Any]:
    faults = [f for r in runs for f in r["faults"]]
    out: dict[str, Any] = {"runs": len(runs), "faults_injected": len(faults),
                           "faults_triggered": sum(1 for f in faults if f["triggered"]),
                           "all_settled": all(r["settled"] for r in runs),
                           "unplanned_restarts": sum(len(r["unplanned_restarts"]) for r in runs),
                           "inputs": sum(r["inputs"] for r in runs),
                           "expected_actions": sum(r["verdict"].get("expected_actions", 0) for r in runs),
                           "redelivered_inputs": sum(r["redelivered_inputs"] for r in runs),
                           "redelivered_outputs": sum(r["verdict"]["redelivered_outputs"] for r in runs)}
    for v in VIOLATIONS:
        out[v] = sum(r["verdict"][v] for r in runs)
    rec = [f["recovery_s"] for f in faults if f["recovery_s"] is not None]
    out["recovery_p50_s"], out["recovery_p95_s"] = percentile(rec, 50), percentile(rec, 95)
    out["by_kind"] = {}
    for kind in KINDS:
        of_kind = [f for f in faults if f["kind"] == kind]
        rk = [f["recovery_s"] for f in of_kind if f["recovery_s"] is not None]
        out["by_kind"][kind] = {"injected": len(of_kind), "triggered": sum(1 for f in of_kind if f["triggered"]),
                                "recovery_p50_s": percentile(rk, 50), "recovery_p95_s": percentile(rk, 95),
                                "recovery_max_s": max(rk) if rk else None}
    return out


def _s(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def markdown(runs: list[dict[str, Any]], title: str, command: str) -> str:
    t = totals(runs)
    lines = [f"# {title}", "", f"Command: `{command}`", "",
             "| runs | faults injected | triggered | inputs | expected actions | duplicates found | losses found "
             "| unexpected | wrong outcomes | unaccounted rejections | recovery p50 (s) | recovery p95 (s) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| {t['runs']} | {t['faults_injected']} | {t['faults_triggered']} | {t['inputs']} | "
             f"{t['expected_actions']} | {t['duplicates']} | {t['losses']} | {t['unexpected']} | "
             f"{t['wrong_outcomes']} | {t['unaccounted_rejections']} | {_s(t['recovery_p50_s'])} | "
             f"{_s(t['recovery_p95_s'])} |", "",
             "| fault kind | injected | triggered | recovery p50 (s) | recovery p95 (s) | max (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for kind, k in t["by_kind"].items():
        lines.append(f"| {kind} | {k['injected']} | {k['triggered']} | {_s(k['recovery_p50_s'])} | "
                     f"{_s(k['recovery_p95_s'])} | {_s(k['recovery_max_s'])} |")
    lines += ["", "| run | seed | sink | faults | inputs (redelivered) | duplicates | losses | other violations "
              "| repeated outputs | unplanned restarts | settled | wall (s) |",
              "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for i, r in enumerate(runs, 1):
        v = r["verdict"]
        other = v["unexpected"] + v["wrong_outcomes"] + v["unaccounted_rejections"]
        lines.append(f"| {i} | {r['seed']} | {'BROKEN (test-only)' if r['broken_sink'] else 'normal'} | "
                     f"{len(r['faults'])} | {r['inputs']} ({r['redelivered_inputs']}) | {v['duplicates']} | "
                     f"{v['losses']} | {other} | {v['redelivered_outputs']} | {len(r['unplanned_restarts'])} | "
                     f"{'yes' if r['settled'] else 'NO'} | {_s(r.get('wall_s'))} |")
    lines += ["", "Recovery time: from the injection to the next committed progress of the part the fault hit "
              "(job kill, broker restart: the first committed trace of an input produced after the injection; "
              "duplicate input: the last trace of the redelivered records; tool latency: the first new receipt "
              "while it lasts; sink kill, sandbox restart, 500s, timeouts: the first new receipt after the fault "
              "was lifted; a counted tool fault starts at the first call that suffers it). \"Repeated outputs\" are identical traces/receipts the sink "
              "sent again for a redelivered action record (at-least-once output, same content): not duplicates."]
    notes = [(i, u) for i, r in enumerate(runs, 1) for u in r["unplanned_restarts"]]
    if notes:
        lines += ["", "Processes that exited on their own and were restarted by the harness:", ""]
        lines += [f"- run {i}: {u['process']} at {u['at_s']} s (exit {u['exit']}, {u['log']})" for i, u in notes]
    examples = [(i, r["examples"]) for i, r in enumerate(runs, 1) if r["examples"]]
    if examples:
        lines += ["", "Violations (first examples):", ""]
        for i, ex in examples:
            for kind, msgs in ex.items():
                lines += [f"- run {i} {kind}: {m}" for m in msgs[:3]]
    return "\n".join(lines) + "\n"


def fault_timeline(run: dict[str, Any]) -> list[str]:
    return [f"{f['at_s']:>6}s {f['kind']:<16} {'' if f['triggered'] else '(not triggered) '}"
            f"recovery {_s(f['recovery_s'])}s {f['note']}" for f in run["faults"]]
