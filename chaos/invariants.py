"""The invariants a chaos run must keep, checked against the input alone. Pure logic, no Flink, no Kafka.

Why a separate module: the checker is the harness's judge, so it must be small,
readable and unit-tested with hand-built cases where it has to say "duplicate"
or "loss". Everything it knows comes from what was produced (the inputs and
an independent oracle of the expected actions) and what was committed
(traces, receipts, DLQ records, the tools' ledger).

Rules (see README "Guarantees under faults"):

- **Outcomes**: every input position (topic, partition, offset) has exactly one
  distinct final outcome. The sink writes its traces at-least-once, so an
  identical trace repeated is counted as a `redelivered_output`, not a duplicate;
  two different outcomes for one position are a duplicate; none is a loss. A
  derived breach (no input position) is identified by its idempotency key.
- **Expected outcome**: an invalid input is `dlq`, a non-actionable one
  `no_action`; of the actionable inputs sharing one idempotency key (an original
  and its redeliveries) exactly one is `processed` and the others `duplicate`.
- **Side effects**: every expected (tool, idempotency_key) has exactly one
  effect in the ledger and exactly one distinct receipt; anything else executed
  or receipted is unexpected. A tool client may append `:<token>` to the
  Idempotency-Key it sends; the action a ledger row belongs to is the key up to
  the first ':' (our keys never contain one), so re-keyed re-executions still
  count against the action that caused them.
- **DLQ**: every `dlq`, `late` or `rate_limited` trace has a DLQ record for the
  same source (position, or idempotency key for a derived breach) and reason.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

Expect = Literal["actionable", "no_action", "dlq"]
Position = tuple[str, int, int]
ActionKey = tuple[str, str]  # (tool, idempotency_key)

EFFECT_TOOL: dict[str, str] = {"ticket.create": "CreateTicket", "hold.place": "PlacePaymentHold",
                               "notice.send": "SendNotice"}
COMPENSATION_EFFECTS = frozenset({"ticket.close", "hold.release"})
REJECTIONS = frozenset({"dlq", "late", "rate_limited"})


@dataclass(frozen=True)
class InputRecord:
    """One produced record, as the harness wrote it."""

    position: Position
    idempotency_key: str | None
    expect: Expect


@dataclass
class Verdict:
    """What a run's outputs say about the invariants; `ok` only when every list is empty."""

    duplicates: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_outcomes: list[str] = field(default_factory=list)
    unaccounted_rejections: list[str] = field(default_factory=list)
    redelivered_outputs: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.losses or self.unexpected or self.wrong_outcomes
                    or self.unaccounted_rejections)

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "duplicates": len(self.duplicates), "losses": len(self.losses),
                "unexpected": len(self.unexpected), "wrong_outcomes": len(self.wrong_outcomes),
                "unaccounted_rejections": len(self.unaccounted_rejections),
                "redelivered_outputs": self.redelivered_outputs, **self.counts}

    def examples(self, n: int = 5) -> dict[str, list[str]]:
        return {k: v[:n] for k, v in (("duplicates", self.duplicates), ("losses", self.losses),
                                      ("unexpected", self.unexpected), ("wrong_outcomes", self.wrong_outcomes),
                                      ("unaccounted_rejections", self.unaccounted_rejections)) if v}


def _trace_id(t: dict[str, Any]) -> tuple[Any, ...]:
    """A trace's identity: where it comes from (position, or idempotency key when derived)."""
    if t.get("derived"):
        return ("derived", t.get("idempotency_key"))
    return ("pos", t.get("topic"), t.get("partition"), t.get("offset"))


def _trace_content(t: dict[str, Any]) -> tuple[Any, ...]:
    """What must be equal for two traces to be one outcome written twice (lag_ms is not)."""
    return (t.get("outcome"), t.get("reason"), t.get("idempotency_key"), tuple(t.get("receipts") or ()))


def action_of_ledger_key(key: str) -> str:
    return key.split(":", 1)[0]


def check(inputs: Iterable[InputRecord], expected_actions: set[ActionKey], traces: Iterable[dict[str, Any]],
          receipts: Iterable[dict[str, Any]], ledger: Iterable[dict[str, Any]],
          dlq: Iterable[dict[str, Any]]) -> Verdict:
    inputs, traces, receipts, ledger, dlq = list(inputs), list(traces), list(receipts), list(ledger), list(dlq)
    v = Verdict()
    _check_ledger(v, expected_actions, ledger)  # first: side effects lead every list of examples
    final = _check_outcomes(v, inputs, expected_actions, traces)
    _check_expected_outcomes(v, inputs, final)
    _check_receipts(v, expected_actions, receipts)
    _check_dlq(v, final, dlq)
    v.counts.update({"inputs": len(inputs), "expected_actions": len(expected_actions), "traces": len(traces),
                     "receipts": len(receipts), "ledger_effects": len(ledger), "dlq_records": len(dlq)})
    return v


def _check_outcomes(v: Verdict, inputs: list[InputRecord], expected_actions: set[ActionKey],
                    traces: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """One distinct outcome per input position and per expected derived breach; returns the final traces."""
    by_id: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for t in traces:
        by_id[_trace_id(t)].append(t)
    known_inputs = {("pos", *r.position) for r in inputs}
    breach_keys = {k for tool, k in expected_actions if tool == "CreateTicket"}
    wanted = known_inputs | {("derived", k) for k in breach_keys}
    final: dict[tuple[Any, ...], dict[str, Any]] = {}
    for tid in sorted(wanted, key=str):
        got = by_id.get(tid, [])
        contents = Counter(_trace_content(t) for t in got)
        if not got:
            v.losses.append(f"no outcome for {_fmt(tid)}")
            continue
        if len(contents) > 1:
            v.duplicates.append(f"{len(contents)} different outcomes for {_fmt(tid)}: "
                                f"{sorted({c[0] for c in contents})}")
        v.redelivered_outputs += len(got) - len(contents)
        final[tid] = got[0]
    for tid, got in by_id.items():
        if tid not in wanted:
            v.unexpected.append(f"outcome {got[0].get('outcome')} for {_fmt(tid)}, which is no input or expected breach")
            final[tid] = got[0]
    return final


def _check_expected_outcomes(v: Verdict, inputs: list[InputRecord], final: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    by_key: dict[str, list[InputRecord]] = defaultdict(list)
    for r in inputs:
        t = final.get(("pos", *r.position))
        if t is None:
            continue
        outcome = t.get("outcome")
        if r.expect == "actionable":
            by_key[r.idempotency_key or ""].append(r)
        elif outcome != r.expect:
            v.wrong_outcomes.append(f"{_fmt(('pos', *r.position))}: expected {r.expect}, got {outcome}")
    for key, group in by_key.items():
        outcomes = Counter(final[("pos", *r.position)].get("outcome") for r in group)
        if outcomes != Counter({"processed": 1, "duplicate": len(group) - 1}):
            v.wrong_outcomes.append(f"{key}: {len(group)} deliveries should be 1 processed + "
                                    f"{len(group) - 1} duplicate, got {dict(outcomes)}")


def _check_ledger(v: Verdict, expected: set[ActionKey], ledger: list[dict[str, Any]]) -> None:
    effects: Counter[ActionKey] = Counter()
    compensations = 0
    for row in ledger:
        if row["effect"] in COMPENSATION_EFFECTS:
            compensations += 1
            continue
        tool = EFFECT_TOOL.get(row["effect"])
        if tool is None:
            v.unexpected.append(f"ledger effect {row['effect']} ({row.get('ref')})")
            continue
        effects[(tool, action_of_ledger_key(row["idempotency_key"]))] += 1
    for action in sorted(expected):
        n = effects.get(action, 0)
        if n == 0:
            v.losses.append(f"{action[0]} {action[1]} never executed at the tool")
        elif n > 1:
            v.duplicates.append(f"{action[0]} {action[1]} executed {n} times at the tool")
    for action in sorted(set(effects) - expected):
        v.unexpected.append(f"{action[0]} {action[1]} executed at the tool but not expected")
    v.counts["compensations"] = compensations


def _check_receipts(v: Verdict, expected: set[ActionKey], receipts: list[dict[str, Any]]) -> None:
    refs: dict[ActionKey, Counter[str]] = defaultdict(Counter)
    for r in receipts:
        key = r.get("idempotency_key") or ""
        if key.startswith("comp-"):
            continue  # compensation receipts are counted in the ledger check
        refs[(r.get("tool") or "", key)][r.get("ref") or ""] += 1
    for action in sorted(expected):
        got = refs.get(action)
        if not got:
            v.losses.append(f"{action[0]} {action[1]} has no receipt")
            continue
        if len(got) > 1:
            v.duplicates.append(f"{action[0]} {action[1]} has {len(got)} different receipts {sorted(got)}")
        v.redelivered_outputs += sum(got.values()) - len(got)
    for action in sorted(set(refs) - expected):
        v.unexpected.append(f"receipt for unexpected {action[0]} {action[1]}")


def _check_dlq(v: Verdict, final: dict[tuple[Any, ...], dict[str, Any]], dlq: list[dict[str, Any]]) -> None:
    records: set[tuple[Any, ...]] = set()
    for d in dlq:
        src = d.get("source") or {}
        reason = d.get("reason")
        if src.get("offset", -1) == -1 and d.get("idempotency_key"):
            records.add(("derived", d["idempotency_key"], reason))
        records.add(("pos", src.get("topic"), src.get("partition"), src.get("offset"), reason))
    for tid, t in final.items():
        outcome = t.get("outcome")
        if outcome not in REJECTIONS:
            continue
        reason = t.get("reason") or outcome
        if (*tid, reason) not in records:
            v.unaccounted_rejections.append(f"{_fmt(tid)} traced {outcome}/{reason} without a DLQ record")


def _fmt(tid: tuple[Any, ...]) -> str:
    if tid[0] == "derived":
        return f"breach {tid[1]}"
    return f"{tid[1]}/{tid[2]}@{tid[3]}"
