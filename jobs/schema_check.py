"""Validating a payload against a pinned JSON Schema: compiled for the job, interpreted as the oracle.

`CompiledSchema` (fastjsonschema: Python code generated once per schema) is what the gate runs;
`ReferenceSchema` (jsonschema, the interpretive validator) is the test oracle the compiled one
is held to. Both read the same schema file and answer the same question: the paths where the
payload fails, empty when it is valid. Patterns follow ECMA-262 as JSON Schema specifies: `$`
ends the string (Python's `$` would also accept a trailing newline), so both agree with the JVM
prefilter.
"""
from __future__ import annotations

import re
from typing import Any, Protocol

import fastjsonschema
import jsonschema
from jsonschema import validators

_DOLLAR = re.compile(r"(?<!\\)\$")


def ecma_pattern(pattern: str) -> str:
    """A JSON Schema pattern as a Python regex with ECMA-262's `$` (end of string only)."""
    return _DOLLAR.sub(r"\\Z", pattern)


class SchemaCheck(Protocol):
    def failures(self, payload: Any) -> list[str]:
        """Where `payload` breaks the schema (slash-separated paths, '(payload)' for the root); [] if valid."""
        ...


class CompiledSchema:
    def __init__(self, schema: dict[str, Any]) -> None:
        body = {k: v for k, v in schema.items() if k != "$schema"}  # draft-07 keywords only, checked below
        self._validate = fastjsonschema.compile(body, use_formats=False, use_default=False)

    def failures(self, payload: Any) -> list[str]:
        try:
            self._validate(payload)
        except fastjsonschema.JsonSchemaValueException as e:
            path = "/".join(str(p) for p in (e.path or [])[1:])  # path[0] is "data"
            return [f"{path or '(payload)'} fails '{e.rule}'"]
        return []


def _ecma_pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not re.search(ecma_pattern(pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Reference = validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern_keyword})


class ReferenceSchema:
    def __init__(self, schema: dict[str, Any]) -> None:
        self._validator = _Reference(schema)

    def failures(self, payload: Any) -> list[str]:
        errors = sorted(self._validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        return [("/".join(str(p) for p in e.absolute_path) or "(payload)") + f" fails '{e.validator}'"
                for e in errors[:5]]
