"""Typed records shared by the job and the sink: the project's one vocabulary."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.idempotency import idempotency_key

ToolName = Literal["CreateTicket", "PlacePaymentHold", "SendNotice"]


@dataclass(slots=True, eq=True)
class Envelope:
    """One record of a topic as the gate passes it: governed, PII-free, every value checked.

    A plain dataclass, not a pydantic model: the gate builds one per valid record, so it must cost
    nanoseconds. Treat it as immutable. `model_validate` is the pydantic-validated way in, for
    envelopes that did not come through the gate (tests, tools).
    """

    topic: str
    partition: int
    offset: int
    key: str | None
    ts_ms: int
    schema_version: str
    sensitivity: str | None = None
    payload: dict[str, Any] | None = None
    writer_schema: dict[str, Any] | None = None

    @property
    def citation(self) -> str:
        return f"{self.topic}@{self.schema_version}"

    def idempotency_key(self) -> str:
        return idempotency_key(self.topic, self.key, self.ts_ms, self.payload)

    def to_json_dict(self) -> dict[str, Any]:
        d = {"topic": self.topic, "partition": self.partition, "offset": self.offset, "key": self.key,
             "ts_ms": self.ts_ms, "schema": self.schema_version, "sensitivity": self.sensitivity,
             "payload": self.payload, "writer_schema": self.writer_schema}
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def model_validate(cls, data: dict[str, Any]) -> "Envelope":
        m = _EnvelopeIn.model_validate(data)
        return cls(m.topic, m.partition, m.offset, m.key, m.ts_ms, m.schema_version, m.sensitivity, m.payload,
                   m.writer_schema)


class _EnvelopeIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    topic: str
    partition: int = 0
    offset: int
    key: str | None
    ts_ms: int
    schema_version: str = Field(alias="schema")
    sensitivity: str | None = None
    payload: dict[str, Any] | None
    writer_schema: dict[str, Any] | None = None


class OrderRow(BaseModel):
    """The governed image of an orders row (PII already stripped)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: str
    account_id: str
    amount: Decimal
    currency: str
    status: str
    vip_flag: bool


class CreateTicketArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str = Field(min_length=1, max_length=300)
    labels: list[str]
    description: str = Field(default="", max_length=4000)
    account_id: str | None = None
    order_id: str | None = None


class PlacePaymentHoldArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class SendNoticeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str = Field(min_length=1)
    template: str = Field(min_length=1)


TOOL_ARGS: dict[str, type[BaseModel]] = {
    "CreateTicket": CreateTicketArgs,
    "PlacePaymentHold": PlacePaymentHoldArgs,
    "SendNotice": SendNoticeArgs,
}


class Action(BaseModel):
    """A typed tool call proposed by the policy; (tool, idempotency_key) identifies it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: ToolName
    args: dict[str, Any]
    idempotency_key: str

    @field_validator("args")
    @classmethod
    def _args_are_typed(cls, v: dict[str, Any], info: Any) -> dict[str, Any]:
        tool = info.data.get("tool")
        if tool in TOOL_ARGS:
            return TOOL_ARGS[tool].model_validate(v).model_dump(mode="json")
        return v


class ToolReceipt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str
    ok: bool
    ref: str | None = None
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def token(self) -> str:
        """The `Tool:REF` form used in responses."""
        return f"{self.tool}:{self.ref}"


class Breach(BaseModel):
    """risk.order_threshold_breach@v3 (see contracts/schemas/order_breach_v3.avsc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    breach_id: str
    account_id: str
    order_id: str
    order_ids: list[str] = Field(min_length=3)
    rule: str
    threshold: str
    window_start_ms: int
    window_end_ms: int
    total_amount: str
    auto_hold: bool = True
    ts_ms: int


class AgentResponse(BaseModel):
    """The output contract: what every handled envelope yields."""

    model_config = ConfigDict(extra="forbid")

    summary: str
    actions: list[Action]
    citations: list[str]
    receipts: list[str] = Field(default_factory=list)
