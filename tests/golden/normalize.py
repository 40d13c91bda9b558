"""Reduces a run's outputs to what must not change: no processing times, sorted."""
from __future__ import annotations

import json
from typing import Any

VOLATILE = {"at_ms", "lag_ms"}


def _strip(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in VOLATILE}


def normalize(outputs: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    def srt(xs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted((_strip(x) for x in xs), key=lambda r: json.dumps(r, sort_keys=True))

    return {
        "breaches": srt(outputs["breaches"]),
        "actions": srt(outputs["actions"]),
        "receipts": srt(outputs["receipts"]),
        "responses": srt(outputs["responses"]),
        "traces": srt(outputs["traces"]),
        "dlq": srt([{"reason": d["reason"], "source": d["source"], "error": d["error"],
                     "envelope": d["envelope"], **({"action": d["action"]} if "action" in d else {})}
                    for d in outputs["dlq"]]),
    }
