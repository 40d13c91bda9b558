"""One `agent.actions` record through the sink: parse, check, execute, build the output records.

Kept apart from the consumer loop so it can be tested without Kafka. A record
that cannot be parsed or breaks the output contract goes to the DLQ (with a
trace), never to a tool; it is still handled, so its offset can be committed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import records
from contracts.models import AgentResponse
from contracts.outcomes import Outcome, Reason
from contracts.records import Out, Position
from sinks.plan_records import plan_records
from sinks.plan_runner import PlanRunner


@dataclass(frozen=True)
class Message:
    """A consumed record: where it sits in the input topic, and its raw value."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    @property
    def ref(self) -> str:
        """The outbox's envelope_ref: a redelivery of this record has the same one."""
        return f"{self.topic}/{self.partition}/{self.offset}"


class SourceRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    topic: str
    partition: int
    offset: int


class ActionRecord(BaseModel):
    """The value of an `agent.actions` record, as the job writes it."""

    model_config = ConfigDict(extra="ignore")

    idempotency_key: str = Field(min_length=1)
    account_id: str | None = None
    source: SourceRef
    response: AgentResponse
    envelope: dict[str, Any]
    derived: bool = False

    def position(self) -> Position:
        env = self.envelope
        return Position(self.source.topic, self.source.partition, self.source.offset, env.get("key"),
                        env.get("ts_ms"), env.get("schema"))


@dataclass(frozen=True)
class Parsed:
    """A message with its parsed record, or the reason it cannot be acted on."""

    msg: Message
    record: ActionRecord | None
    reason: Reason | None = None
    error: str = ""
    data: Any = None  # the decoded JSON of a record that failed validation

    @property
    def n_actions(self) -> int:
        return len(self.record.response.actions) if self.record else 0

    @property
    def order_key(self) -> str:
        """Plans of one key run in input order: the account (the job's key), else the idempotency key."""
        rec = self.record
        if rec is None:
            return self.msg.ref
        return rec.account_id or rec.idempotency_key


class RecordHandler:
    def __init__(self, runner: PlanRunner, contract_name: str, tools: frozenset[str]) -> None:
        self.runner = runner
        self.contract_name = contract_name
        self.tools = tools

    def parse(self, msg: Message) -> Parsed:
        try:
            data = json.loads(msg.value or b"")
        except ValueError:
            return Parsed(msg, None, Reason.MALFORMED_JSON, "value is not JSON")
        if not isinstance(data, dict):
            return Parsed(msg, None, Reason.NOT_AN_OBJECT, "value is not a JSON object")
        try:
            rec = ActionRecord.model_validate(data)
        except ValidationError as e:
            return Parsed(msg, None, Reason.INVALID_RESPONSE, _brief(e), data)
        wrong = [f"{a.tool} carries key {a.idempotency_key}" for a in rec.response.actions
                 if a.idempotency_key != rec.idempotency_key]
        wrong += [f"tool {a.tool} is not in the contract" for a in rec.response.actions if a.tool not in self.tools]
        if wrong:
            return Parsed(msg, rec, Reason.INVALID_RESPONSE, "; ".join(wrong))
        return Parsed(msg, rec)

    async def handle(self, item: Parsed, backlog: int = 0) -> list[Out]:
        """Execute the record's plan (unless invalid) and return every output record it yields."""
        rec = item.record
        if item.reason is not None or rec is None:
            return self._rejected(item)
        result = await self.runner.run_plan(rec.response.actions, item.msg.ref, backlog=backlog)
        result = result.redelivered(item.msg.ref)
        return plan_records(rec.position(), rec.idempotency_key, rec.response, result, rec.envelope,
                            self.contract_name, rec.derived)

    def _rejected(self, item: Parsed) -> list[Out]:
        assert item.reason is not None
        rec, msg, data = item.record, item.msg, item.data if isinstance(item.data, dict) else {}
        pos = rec.position() if rec else Position(msg.topic, msg.partition, msg.offset)
        key = rec.idempotency_key if rec else data.get("idempotency_key")
        key = key if isinstance(key, str) and key else None
        envelope: Any = rec.envelope if rec else data.get("envelope")
        if not isinstance(envelope, dict):
            envelope = (msg.value or b"").decode("utf-8", "replace")  # raw text, as for unparsable lines
        return [records.dlq(pos, item.reason, item.error, envelope, self.contract_name, idempotency_key=key),
                records.trace(pos, Outcome.DLQ, key, reason=item.reason, derived=bool(rec and rec.derived))]


def _brief(e: ValidationError) -> str:
    """Field paths and messages only: input values may carry data that must not reach the DLQ text."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:5])
