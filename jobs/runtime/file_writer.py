"""Writes tagged output records of the later stages to DIR/<name>.jsonl (file mode). Runs at parallelism 1.

The gate appends its own records to the same files (jobs.jsonl_files); the driver created them."""
from __future__ import annotations

from typing import Any, Iterable

from pyflink.datastream.functions import ProcessFunction, RuntimeContext

from jobs.jsonl_files import JsonlAppender


class JsonlWriterFunction(ProcessFunction):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def open(self, runtime_context: RuntimeContext) -> None:
        self.out = JsonlAppender(self.out_dir)

    def process_element(self, value: tuple[str, dict[str, Any]], ctx: ProcessFunction.Context) -> Iterable[Any]:
        name, record = value
        self.out.write(name, record)
        return iter(())

    def close(self) -> None:
        out = getattr(self, "out", None)
        if out is not None:
            out.close()
