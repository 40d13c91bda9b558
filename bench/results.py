"""bench/results/latest.json is written by more than one benchmark: each writes its own keys and keeps the
others' (bench.run the pipeline figures, bench.sink the `sink*` keys, bench.stages the `stages` block)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OWNED_BY_OTHERS = ("sink", "stages")  # key prefixes bench.sink and bench.stages write; bench.run keeps them


def merge_results(path: Path, updates: dict[str, Any], replace: bool = False) -> dict[str, Any]:
    """Write `updates` into the JSON file at `path`. `replace`: the updates are the whole result of their
    benchmark, so keys it no longer writes go, except those owned by another benchmark (`sink*`, `stages`)."""
    old: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if replace:
        old = {k: v for k, v in old.items() if k.startswith(OWNED_BY_OTHERS)}
    merged = {**old, **updates}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    return (["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])
