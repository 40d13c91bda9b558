"""The small, documented vocabularies of trace outcomes and DLQ reason codes."""
from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    PROCESSED = "processed"
    NO_ACTION = "no_action"
    DUPLICATE = "duplicate"
    DLQ = "dlq"
    LATE = "late"
    RATE_LIMITED = "rate_limited"


class Reason(StrEnum):
    """Why a record went to the DLQ. The README keeps the same table."""

    MALFORMED_JSON = "malformed_json"          # line is not JSON (or not UTF-8 text)
    NOT_AN_OBJECT = "not_an_object"            # JSON, but not an object
    MISSING_FIELD = "missing_field"            # an envelope field is absent
    INVALID_ENVELOPE = "invalid_envelope"      # an envelope field has the wrong type, or a key is duplicated
    INVALID_TEXT = "invalid_text"              # a string is not Unicode text (a lone UTF-16 surrogate)
    NUMBER_OUT_OF_RANGE = "number_out_of_range"  # an integer beyond 64 bits, an amount beyond 15.6 digits
    TS_OUT_OF_RANGE = "ts_out_of_range"        # event time negative, beyond 64 bits or too far in the future
    NOT_ALLOWLISTED = "not_allowlisted"        # topic@schema not in the contract inputs
    SCHEMA_VIOLATION = "schema_violation"      # payload breaks the pinned schema
    UNKNOWN_REQUIRED_FIELD = "unknown_required_field"  # writer schema requires a field the contract lacks
    PII_NOT_TOKENIZED = "pii_not_tokenized"    # a PII field holds a non-token value
    SENSITIVITY_ABOVE_CEILING = "sensitivity_above_ceiling"
    LATE = "late"                              # behind the watermark bound
    INVALID_RESPONSE = "invalid_response"      # the policy's answer broke the output contract
    RATE_LIMITED = "rate_limited"              # an action over the per-account limit
    TOOL_FAILED = "tool_failed"                # a tool call failed for good (after retries)
    COMPENSATED = "compensated"                # an action undone because its plan failed
    PLAN_ABORTED = "plan_aborted"              # an action not attempted because an earlier step failed
    DEGRADED = "degraded"                      # a notice skipped under backlog by the degrade policy
