"""Agent stage keyed by account: dedup (MapState with TTL), policy, validation, rate limit."""
from __future__ import annotations

from typing import Any, Iterable

from pyflink.common import Types
from pyflink.datastream.functions import RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from contracts.outcomes import Outcome, Reason
from contracts import records
from jobs import shadow
from jobs.agent_stage import AgentStage
from jobs.routing import Routed
from jobs.runtime.breach_op import ttl
from jobs.runtime.buffered import EventTimeOrderedFunction
from jobs.runtime.tags import OUT


# Decisions the live policy took (after dedup); a duplicate is not compared again.
SHADOWED = (Outcome.PROCESSED, Outcome.RATE_LIMITED, Outcome.NO_ACTION, Outcome.DLQ)


class MapStateDedup:
    """DedupStore over Flink keyed MapState (durable through checkpoints and savepoints)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def seen(self, idempotency_key: str) -> bool:
        return bool(self.state.contains(idempotency_key))

    def mark(self, idempotency_key: str, ts_ms: int) -> None:
        self.state.put(idempotency_key, ts_ms)


class AgentFunction(EventTimeOrderedFunction):
    name = "agent"

    def setup(self, runtime_context: RuntimeContext) -> None:
        self.stage = AgentStage(self.contract, self.config.load_policy())
        self.shadow = self.config.load_shadow_policy()  # candidate of shadow mode, or None
        seen = MapStateDescriptor("agent-dedup", Types.STRING(), Types.LONG())
        seen.enable_time_to_live(ttl(self.config.dedup_ttl_ms))
        self.dedup = MapStateDedup(runtime_context.get_map_state(seen))
        self.accepted = runtime_context.get_state(ValueStateDescriptor("agent-rate", Types.PICKLED_BYTE_ARRAY()))

    def on_ready(self, item: Routed) -> Iterable[Any]:
        env, key = item.env, item.idempotency_key
        pos = records.position_of(env, item.derived)
        decision, accepted = self.stage.decide(env, key, self.dedup, self.accepted.value() or [])
        self.accepted.update(accepted)
        self._count_rejected_answers()
        if self.shadow is not None and decision.outcome in SHADOWED:
            # The candidate only proposes: no sink, no dedup mark, no rate-limit budget.
            yield OUT, ("shadow", shadow.shadow_record(self.shadow, env, key, self.contract, decision.response,
                                                       str(decision.outcome)))
        if decision.outcome == Outcome.PROCESSED:
            for action in decision.response.actions:  # in Kafka mode these become action requests
                self.metrics.inc("action_requests", "tool", action.tool)
            yield item, decision.response
            return
        if decision.outcome == Outcome.DUPLICATE:
            self.metrics.inc("dedup_hits")
        elif decision.outcome == Outcome.RATE_LIMITED:
            self.metrics.inc("rate_limited", n=len(decision.held_back))
            for action in decision.held_back:
                yield OUT, records.dlq(pos, Reason.RATE_LIMITED, decision.error or "", records.governed_envelope(env),
                                       self.contract.name, idempotency_key=key, action=action)
        elif decision.outcome == Outcome.DLQ:
            assert decision.reason is not None
            self.metrics.inc("dlq", "reason", str(decision.reason))
            yield OUT, records.dlq(pos, decision.reason, decision.error or "", records.governed_envelope(env),
                                   self.contract.name, idempotency_key=key)
        yield OUT, records.trace(pos, decision.outcome, key, reason=decision.reason, derived=item.derived)

    def _count_rejected_answers(self) -> None:
        """A policy may keep a `failures` Counter by kind (the LLM policy does, fallback or not): drain it
        into the metric agent.kind.<kind>.policy_answers_rejected."""
        failures = getattr(self.stage.policy, "failures", None)
        if failures:
            for kind, n in failures.items():
                self.metrics.inc("policy_answers_rejected", "kind", str(kind), n=n)
            failures.clear()

    def on_late(self, item: Routed, watermark: int) -> Iterable[Any]:
        if item.derived:
            # A breach of our own breach stage is never late by the rule (judged per source partition at
            # the gate). It trails this stage's watermark only when idleness let the gate's channel run
            # ahead: the breach channel was idle, so the watermark passed on the gate's channel alone
            # before the breach stage, still firing its timers, sent the breach. Decide it now.
            self.metrics.inc("breaches_behind_watermark")
            yield from self.on_ready(item)
            return
        self.metrics.inc("late")
        pos = records.position_of(item.env, item.derived)
        yield OUT, records.dlq(pos, Reason.LATE, f"behind the agent stage's watermark {watermark}",
                               records.governed_envelope(item.env), self.contract.name,
                               idempotency_key=item.idempotency_key)
        yield OUT, records.trace(pos, Outcome.LATE, item.idempotency_key, reason=Reason.LATE, derived=item.derived)
