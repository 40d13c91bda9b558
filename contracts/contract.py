"""Loads the contract YAML into a typed object; the single source of governance rules."""
from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import phonenumbers
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.pii import DEFAULT_PII_NAMES, PiiRules

CONTRACTS_DIR = Path(__file__).resolve().parent
DEFAULT_CONTRACT = CONTRACTS_DIR / "streaming_agent_v1.yaml"


class InputSpec(BaseModel):
    """One allowlisted `topic@schema` and the schema file it is pinned to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    schema_version: str = Field(alias="schema")
    schema_ref: str
    format: Literal["avro", "debezium-json"]
    schema_file: str

    @property
    def citation(self) -> str:
        return f"{self.topic}@{self.schema_version}"


class PiiDetection(BaseModel):
    """Where the gate looks for PII beyond the named PII fields (see contracts.pii).

    `fields` maps a field name to the detectors that apply to its strings (default: all of
    `detectors`); `[]` exempts a field whose schema already makes PII impossible (a decimal amount)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detectors: list[Literal["email", "phone", "ssn"]] = ["email", "phone", "ssn"]
    phone_regions: list[str] = ["US"]
    fields: dict[str, list[Literal["email", "phone", "ssn"]]] = {}
    pii_field_names: str = DEFAULT_PII_NAMES

    @model_validator(mode="after")
    def _regions_are_known(self) -> "PiiDetection":
        unknown = sorted(set(self.phone_regions) - phonenumbers.SUPPORTED_REGIONS)
        if unknown:
            raise ValueError(f"phone_regions names regions phonenumbers does not know: {unknown}")
        re.compile(self.pii_field_names)
        return self


class Governance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pii_fields: list[str]
    token_pattern: str
    pii_detection: PiiDetection = PiiDetection()
    # An event time more than this ahead of the wall clock is DLQ'd ts_out_of_range (0: no limit).
    max_future_skew_ms: int = Field(default=86_400_000, ge=0)
    sensitivity_levels: list[str]
    default_sensitivity: str
    sensitivity_ceiling: str
    max_actions_per_minute: int = Field(gt=0)
    dlq_topic: str

    def sensitivity_rank(self, label: str) -> int:
        """Position of a label in the ordered levels; ValueError when unknown."""
        return self.sensitivity_levels.index(label)


class OutputSpec(BaseModel):
    """The output contract: response shape, summary length, the tools, and which input may call which tool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: list[str]
    summary_max_words: int = Field(gt=0)
    tools: list[str]
    tools_by_input: dict[str, list[str]]

    @model_validator(mode="after")
    def _per_input_tools_are_contract_tools(self) -> "OutputSpec":
        for citation, tools in self.tools_by_input.items():
            unknown = sorted(set(tools) - set(self.tools))
            if unknown:
                raise ValueError(f"tools_by_input[{citation}] names tools not in output.tools: {unknown}")
        return self


class Contract(BaseModel):
    """The typed contract; `base_dir` resolves the schema files it names."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    contract: str
    version: str
    role: str
    scope: list[str]
    inputs: list[InputSpec]
    governance: Governance
    output: OutputSpec
    base_dir: str = ""

    @model_validator(mode="after")
    def _per_input_tools_name_inputs(self) -> "Contract":
        known = {spec.citation for spec in self.inputs}
        stray = sorted(set(self.output.tools_by_input) - known)
        if stray:
            raise ValueError(f"output.tools_by_input names inputs the contract does not have: {stray}")
        return self

    @property
    def name(self) -> str:
        return f"{self.contract}@{self.version}"

    def tools_for(self, citation: str) -> list[str]:
        """The tools a proposal for input `topic@schema` may call; none for an input not listed (fail closed)."""
        return list(self.output.tools_by_input.get(citation, []))

    def input_for(self, topic: str, schema_version: str) -> InputSpec | None:
        for spec in self.inputs:
            if spec.topic == topic and spec.schema_version == schema_version:
                return spec
        return None

    def load_schema(self, spec: InputSpec) -> dict[str, Any]:
        return json.loads((Path(self.base_dir) / spec.schema_file).read_text())

    @cached_property
    def token_regex(self) -> re.Pattern[str]:
        return re.compile(self.governance.token_pattern)

    @cached_property
    def pii(self) -> PiiRules:
        d = self.governance.pii_detection
        return PiiRules(token=self.token_regex, pii_fields=frozenset(self.governance.pii_fields),
                        detectors=frozenset(d.detectors), phone_regions=tuple(d.phone_regions),
                        per_field=tuple((k, frozenset(v)) for k, v in sorted(d.fields.items())),
                        pii_names=d.pii_field_names)

    def input_topics(self) -> frozenset[str]:
        return frozenset(spec.topic for spec in self.inputs)


def load_contract(path: str | Path | None = None) -> Contract:
    """Read and validate a contract YAML; schema files resolve relative to it."""
    p = Path(path) if path else DEFAULT_CONTRACT
    raw = yaml.safe_load(p.read_text())
    raw["base_dir"] = str(p.resolve().parent)
    return Contract.model_validate(raw)
