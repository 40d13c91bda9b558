"""A short human summary of a file-mode run, read back from its output files."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from contracts.records import OUTPUT_FILES
from jobs.jsonl_files import read_jsonl


def read_outputs(out_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    d = Path(out_dir)
    result: dict[str, list[dict[str, Any]]] = {}
    for name in OUTPUT_FILES:
        p = d / f"{name}.jsonl"
        result[name] = read_jsonl(p) if p.exists() else []
    return result


def summarize(out_dir: str | Path) -> str:
    o = read_outputs(out_dir)
    lines = [f"breaches: {len(o['breaches'])}"]
    for b in o["breaches"]:
        lines.append(f"  {b['breach_id']} account={b['account_id']} orders={','.join(b['order_ids'])} "
                     f"total={b['total_amount']} trigger={b['order_id']}")
    by_tool = Counter((a["tool"], a["status"]) for a in o["actions"])
    lines.append("actions: " + (", ".join(f"{t} {s} x{n}" for (t, s), n in sorted(by_tool.items())) or "none"))
    lines.append("receipts: " + (", ".join(f"{r['tool']}:{r['ref']}" for r in o["receipts"]) or "none"))
    dlq = Counter(r["reason"] for r in o["dlq"])
    lines.append("dlq by reason: " + (", ".join(f"{k}={v}" for k, v in sorted(dlq.items())) or "none"))
    outcomes = Counter(t["outcome"] for t in o["traces"])
    lines.append("trace outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    lines.append(f"files: {Path(out_dir).resolve()}/{{{','.join(OUTPUT_FILES)}}}.jsonl")
    return "\n".join(lines)
