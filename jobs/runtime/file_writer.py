"""Writes tagged output records to DIR/<name>.jsonl (file mode). Runs at parallelism 1."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from pyflink.datastream.functions import ProcessFunction, RuntimeContext

from contracts.records import OUTPUT_FILES


class JsonlWriterFunction(ProcessFunction):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def open(self, runtime_context: RuntimeContext) -> None:
        d = Path(self.out_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.files = {name: open(d / f"{name}.jsonl", "w", encoding="utf-8") for name in OUTPUT_FILES}

    def process_element(self, value: tuple[str, dict[str, Any]], ctx: ProcessFunction.Context) -> Iterable[Any]:
        name, record = value
        f = self.files[name]
        f.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
        f.flush()
        return iter(())

    def close(self) -> None:
        for f in getattr(self, "files", {}).values():
            f.close()
