"""One governed envelope through dedup, policy, output validation and rate limit. Pure logic.

Called per account in event-time order (the Flink shell buffers to the
watermark), so every decision is a function of the input set alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from contracts.contract import Contract
from contracts.models import Action, AgentResponse, Envelope
from contracts.outcomes import Outcome, Reason
from jobs import rate_limit
from jobs.dedup import DedupStore
from jobs.policy import Policy, PolicyRejected
from jobs.response_validation import validate_response


@dataclass
class Decision:
    outcome: Outcome
    response: AgentResponse | None = None
    reason: Reason | None = None
    error: str | None = None
    held_back: list[Action] = field(default_factory=list)

    @property
    def actions(self) -> list[Action]:
        """Actions to hand to the sink (none unless processed)."""
        return self.response.actions if self.response and self.outcome == Outcome.PROCESSED else []


class AgentStage:
    def __init__(self, contract: Contract, policy: Policy) -> None:
        self.contract = contract
        self.policy = policy
        self.limit = contract.governance.max_actions_per_minute

    def decide(self, env: Envelope, idempotency_key: str, dedup: DedupStore,
               accepted_ts: list[int]) -> tuple[Decision, list[int]]:
        """Return the decision and the account's new list of admitted action times."""
        if dedup.seen(idempotency_key):
            return Decision(Outcome.DUPLICATE), accepted_ts
        try:
            proposal = self.policy.propose(env, idempotency_key)
        except PolicyRejected as e:
            return Decision(Outcome.DLQ, reason=Reason.INVALID_RESPONSE,
                            error=f"policy {self.policy.name} rejected its answer: {e}"), accepted_ts
        except Exception as e:  # noqa: BLE001 - a failing policy is a DLQ record, not a crash
            return Decision(Outcome.DLQ, reason=Reason.INVALID_RESPONSE,
                            error=f"policy {self.policy.name} failed: {type(e).__name__}"), accepted_ts
        errors = validate_response(proposal, env, idempotency_key, self.contract)
        if errors:
            return Decision(Outcome.DLQ, reason=Reason.INVALID_RESPONSE, error="; ".join(errors)), accepted_ts
        if not proposal.actions:
            dedup.mark(idempotency_key, env.ts_ms)
            return Decision(Outcome.NO_ACTION, response=proposal), accepted_ts
        ok, accepted = rate_limit.admit(accepted_ts, env.ts_ms, len(proposal.actions), self.limit)
        if not ok:
            # Not marked as handled: an operator may replay it from the DLQ with the same key.
            return Decision(Outcome.RATE_LIMITED, response=proposal, reason=Reason.RATE_LIMITED,
                            error=f"account over {self.limit} actions per 60 s of event time",
                            held_back=list(proposal.actions)), accepted
        dedup.mark(idempotency_key, env.ts_ms)
        return Decision(Outcome.PROCESSED, response=proposal), accepted
