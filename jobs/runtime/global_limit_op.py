"""Optional global action limit: all admitted plans, in event-time order, through one sliding window.

Keyed by a single constant (parallelism 1 by nature): every plan the per-account stage admitted
passes here before the sink; one that would put more than N actions in any 60 s of event time
across all accounts is held back like a per-account rate limit (DLQ `rate_limited`, trace
`rate_limited`), never executed.
"""
from __future__ import annotations

from typing import Any, Iterable

from pyflink.common import Types
from pyflink.datastream.functions import RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from contracts import records
from contracts.models import AgentResponse
from contracts.outcomes import Outcome, Reason
from jobs import rate_limit
from jobs.routing import Routed
from jobs.runtime.buffered import EventTimeOrderedFunction
from jobs.runtime.tags import OUT

GLOBAL_KEY = "all-accounts"
Plan = tuple[Routed, AgentResponse]


class GlobalLimitFunction(EventTimeOrderedFunction):
    name = "global-limit"

    def setup(self, runtime_context: RuntimeContext) -> None:
        self.accepted = runtime_context.get_state(ValueStateDescriptor("global-rate", Types.PICKLED_BYTE_ARRAY()))

    def event_time(self, item: Plan) -> int:
        return item[0].env.ts_ms

    def tie_break(self, item: Plan) -> Any:
        return super().tie_break(item[0])

    def on_ready(self, item: Plan) -> Iterable[Any]:
        routed, response = item
        limit = self.config.global_max_actions_per_minute
        assert limit is not None
        ok, accepted = rate_limit.admit(self.accepted.value() or [], routed.env.ts_ms, len(response.actions), limit)
        self.accepted.update(accepted)
        if ok:
            yield item
            return
        pos = records.position_of(routed.env, routed.derived)
        error = f"over the global limit of {limit} actions per 60 s of event time"
        self.metrics.inc("rate_limited", n=len(response.actions))
        for action in response.actions:
            yield OUT, records.dlq(pos, Reason.RATE_LIMITED, error, records.governed_envelope(routed.env),
                                   self.contract.name, idempotency_key=routed.idempotency_key, action=action)
        yield OUT, records.trace(pos, Outcome.RATE_LIMITED, routed.idempotency_key, reason=Reason.RATE_LIMITED,
                                 derived=routed.derived)

    def on_late(self, item: Plan, watermark: int) -> Iterable[Any]:
        # Cannot happen: plans leave the agent stage at or after its watermark, never behind it.
        yield from self.on_ready(item)
