"""Shadow mode: a candidate policy proposes beside the live one, executes nothing. Pure logic.

For every envelope the live policy handles after dedup, the agent stage asks the candidate too,
validates its proposal against the contract exactly as it would a live one, and writes one record
to `shadow.jsonl`; the candidate never reaches the sink, the dedup state or the rate limit.

Two proposals *agree* when they call the same tools on the same targets: per tool the same
`order_id`, `account_id` and `template`. Free text (ticket summaries, descriptions, hold reasons)
is not compared, so a reworded ticket still agrees; both argument lists are in the record to read.
A candidate that fails or breaks the contract proposes nothing and never agrees.

    python -m jobs.shadow report OUT_DIR/shadow.jsonl [--examples N]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from contracts.contract import Contract
from contracts.models import AgentResponse, Envelope
from jobs.jsonl_files import read_jsonl
from jobs.policy import Policy, PolicyRejected
from jobs.response_validation import validate_response

TARGET_ARGS = ("order_id", "account_id", "template")


def _targets(actions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((a["tool"], *(str(a["args"].get(k)) for k in TARGET_ARGS)) for a in actions)


def compare(env: Envelope, idempotency_key: str, live: AgentResponse | None, candidate: AgentResponse | None,
            candidate_error: str | None = None, live_outcome: str | None = None) -> dict[str, Any]:
    """One shadow record for one envelope (live None: the live decision proposed nothing usable)."""
    live_actions = [a.model_dump(mode="json") for a in live.actions] if live else []
    cand_actions = [a.model_dump(mode="json") for a in candidate.actions] if candidate and not candidate_error else []
    rec: dict[str, Any] = {
        "idempotency_key": idempotency_key, "topic": env.topic,
        "live": [a["tool"] for a in live_actions], "candidate": [a["tool"] for a in cand_actions],
        "agree": candidate_error is None and _targets(live_actions) == _targets(cand_actions),
        "live_args": [a["args"] for a in live_actions], "candidate_args": [a["args"] for a in cand_actions],
        "candidate_error": candidate_error,
    }
    if live_outcome is not None:
        rec["live_outcome"] = live_outcome
    return rec


def shadow_record(candidate: Policy, env: Envelope, idempotency_key: str, contract: Contract,
                  live: AgentResponse | None, live_outcome: str) -> dict[str, Any]:
    """Ask the candidate, validate its proposal, compare. Never raises; never executes anything."""
    try:
        proposal = candidate.propose(env, idempotency_key)
    except PolicyRejected as e:  # its message names what was wrong, never a raw value
        return compare(env, idempotency_key, live, None, f"invalid_response: {e}", live_outcome)
    except Exception as e:  # noqa: BLE001 - a failing candidate is a finding, not a crash
        return compare(env, idempotency_key, live, None, f"candidate failed: {type(e).__name__}", live_outcome)
    errors = validate_response(proposal, env, idempotency_key, contract)
    if errors:
        return compare(env, idempotency_key, live, None, "invalid_response: " + "; ".join(errors), live_outcome)
    return compare(env, idempotency_key, live, proposal, None, live_outcome)


# -- the report ---------------------------------------------------------------

def read_records(path: str | Path) -> list[dict[str, Any]]:
    return read_jsonl(path)


def summarize(records: Iterable[dict[str, Any]], examples: int = 5) -> dict[str, Any]:
    recs = list(records)
    disagreements = [r for r in recs if not r["agree"]]
    return {
        "envelopes": len(recs),
        "agree": len(recs) - len(disagreements),
        "agreement_rate": (len(recs) - len(disagreements)) / len(recs) if recs else None,
        "live_by_tool": dict(sorted(Counter(t for r in recs for t in r["live"]).items())),
        "candidate_by_tool": dict(sorted(Counter(t for r in recs for t in r["candidate"]).items())),
        "candidate_errors": sum(1 for r in recs if r.get("candidate_error")),
        "examples": disagreements[:examples],
    }


def report(records: Iterable[dict[str, Any]], examples: int = 5) -> str:
    s = summarize(records, examples)
    if not s["envelopes"]:
        return "shadow: no envelopes compared"

    def tools(counts: dict[str, int]) -> str:
        return ", ".join(f"{t} x{n}" for t, n in counts.items()) or "none"

    lines = [f"envelopes compared: {s['envelopes']}",
             f"agreement: {s['agree']}/{s['envelopes']} ({100 * s['agreement_rate']:.1f}%)",
             f"live actions: {tools(s['live_by_tool'])}",
             f"candidate actions: {tools(s['candidate_by_tool'])}",
             f"candidate errors: {s['candidate_errors']}"]
    if s["examples"]:
        lines.append(f"disagreements (first {len(s['examples'])} of {s['envelopes'] - s['agree']}):")
    for r in s["examples"]:
        lines.append(f"  {r['idempotency_key']} {r['topic']}"
                     + (f" (live {r['live_outcome']})" if r.get("live_outcome") else ""))
        lines.append(f"    live:      {_calls(r['live'], r['live_args'])}")
        lines.append(f"    candidate: {_calls(r['candidate'], r['candidate_args'])}"
                     + (f"  error: {r['candidate_error']}" if r.get("candidate_error") else ""))
    return "\n".join(lines)


def _calls(tools: list[str], args: list[dict[str, Any]]) -> str:
    """`Tool(target=...)` per action: the arguments agreement is decided on (full args: --json)."""
    def one(tool: str, a: dict[str, Any]) -> str:
        return f"{tool}(" + ", ".join(f"{k}={a[k]}" for k in TARGET_ARGS if a.get(k) is not None) + ")"
    return ", ".join(one(t, a) for t, a in zip(tools, args)) or "nothing"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.shadow", description="Shadow-mode tools.")
    sub = ap.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("report", help="agreement and tool counts of a shadow.jsonl")
    rp.add_argument("path", help="OUT_DIR/shadow.jsonl")
    rp.add_argument("--examples", type=int, default=5, help="disagreements to show (default 5)")
    rp.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = ap.parse_args(argv)
    recs = read_records(a.path)
    print(json.dumps(summarize(recs, a.examples), indent=1, sort_keys=True) if a.json else report(recs, a.examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
