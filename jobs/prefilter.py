"""When and how Kafka mode keeps non-actionable CDC records on the JVM. Pure logic, no Flink.

The prefilter is the SQL function `order_fast_path` (jvm/, Java): for a
`cdc.public.orders` record that is certainly valid under the pinned schema and
certainly needs no action under the rule policy, it writes the `no_action`
trace itself; every other record reaches the Python gate as before. As it alone
sees every record of a partition in order, it also judges lateness (the rule of
jobs.lateness) and flags late records for the Python gate. It encodes
two things Python also knows, so it switches itself off where they could
differ: the rule policy (another policy may want other events) and the exact
schema file it was written for (a new pinned schema needs a new check).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from contracts.contract import Contract

ORDERS_TOPIC = "cdc.public.orders"
FUNCTION_NAME = "order_fast_path"
FUNCTION_CLASS = "streamingagent.prefilter.OrderFastPath"
# Its answer is a row (verdict, k, trace); verdicts:
LATE = "late"            # behind its partition's bound: Python DLQs it `late`
NO_ACTION = "no_action"  # settled on the JVM: `trace` is its trace, `k` its idempotency key
PYTHON = "python"        # the Python gate decides
# Debezium source.ts_ms by a streaming scan, for the source's watermark column (instead of JSON_VALUE)
EVENT_TIME_FUNCTION_NAME = "cdc_event_ms"
EVENT_TIME_FUNCTION_CLASS = "streamingagent.prefilter.CdcEventTime"
JAR = Path(__file__).resolve().parent.parent / "jvm" / "target" / "streaming-agent-prefilter.jar"
# sha256 of contracts/schemas/debezium_order_v2.json, the schema OrderChangeCheck.java checks by hand
CHECKED_SCHEMA_SHA256 = "9809951f4ae42df3aa005e6df917080240f344d240ec5e1ee7e2003b916fc471"


@dataclass(frozen=True)
class PrefilterPlan:
    """Whether the prefilter runs, why not if it does not, and the literal arguments of its SQL call."""

    enabled: bool
    why_not: str = ""
    bound_ms: int = 0
    args: tuple[str, ...] = ()


def plan_prefilter(contract: Contract, policy: str, threshold: str, bound_ms: int,
                   requested: bool = True) -> PrefilterPlan:
    if not requested:
        return PrefilterPlan(False, "switched off (--no-jvm-prefilter)")
    if policy != "rules":
        return PrefilterPlan(False, f"policy {policy} is not the rule policy the prefilter encodes")
    specs = [i for i in contract.inputs if i.topic == ORDERS_TOPIC]
    if len(specs) != 1:
        return PrefilterPlan(False, f"the contract pins {len(specs)} schemas for {ORDERS_TOPIC}, not one")
    spec = specs[0]
    digest = hashlib.sha256((Path(contract.base_dir) / spec.schema_file).read_bytes()).hexdigest()
    if digest != CHECKED_SCHEMA_SHA256:
        return PrefilterPlan(False, f"{spec.schema_ref} is not the schema file the prefilter checks")
    gov = contract.governance
    ceiling = gov.sensitivity_rank(gov.sensitivity_ceiling)
    allowed = [label for label in gov.sensitivity_levels if gov.sensitivity_rank(label) <= ceiling]
    plain, with_plus = contract.pii.digits_needed()
    return PrefilterPlan(True, bound_ms=bound_ms, args=(ORDERS_TOPIC, spec.schema_version, ",".join(allowed),
                                                        gov.default_sensitivity, gov.token_pattern, threshold,
                                                        str(plain), str(with_plus), str(gov.max_future_skew_ms)))


def sql_call(plan: PrefilterPlan) -> str:
    """The SQL expression over the agent_inputs columns that yields the (verdict, k, trace) row."""
    literals = ", ".join("'" + a.replace("'", "''") + "'" for a in plan.args)
    return (f"{FUNCTION_NAME}(`topic`, `partition`, `offset`, k, v, event_ts, claimed_ms, "
            f"`headers`['schema'], `headers`['sensitivity'], CAST({plan.bound_ms} AS BIGINT), {literals})")
