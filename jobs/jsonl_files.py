"""File mode's output files: JSON Lines appended in batches by more than one writer. Pure logic, no Flink.

The gate writes the traces and DLQ records of the records it settles itself (most of them), the
writer operator those of the later stages; both append to the same files. Each flush is one
`os.write` of whole lines to a file opened with O_APPEND, which the kernel places at the end as a
unit, so lines of the two writers never interleave. The driver creates (truncates) the files
before the job starts; writers only append.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from contracts.records import OUTPUT_FILES

FLUSH_BYTES = 1 << 16
FLUSH_S = 0.5
_ENCODER = msgspec.json.Encoder(order="sorted")


def create_outputs(out_dir: str | Path) -> None:
    """Empty output files, one per kind (the driver, before the job starts)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        (d / f"{name}.jsonl").write_bytes(b"")


def encode(record: dict[str, Any]) -> bytes:
    """One compact JSON line with sorted keys (UTF-8)."""
    try:
        return _ENCODER.encode(record) + b"\n"
    except (TypeError, UnicodeEncodeError, msgspec.EncodeError):  # anything msgspec will not write as is
        return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode() + b"\n"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file. Lines end at "\\n" only: str.splitlines() would also split at
    U+0085, U+2028 and other separators, which JSON strings may hold unescaped (a DLQ copy of hostile
    input does)."""
    return [json.loads(line) for line in Path(path).read_bytes().split(b"\n") if line.strip()]


class JsonlAppender:
    """Buffers encoded lines per output file; flushes at FLUSH_BYTES, after FLUSH_S, and on close."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self._fds: dict[str, int] = {}
        self._buffers: dict[str, list[bytes]] = {}
        self._size = 0
        self._last_flush = time.monotonic()

    def write(self, name: str, record: dict[str, Any]) -> None:
        line = encode(record)
        self._buffers.setdefault(name, []).append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES or time.monotonic() - self._last_flush >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        for name, lines in self._buffers.items():
            if lines:
                data = b"".join(lines)
                fd = self._fds.get(name)
                if fd is None:
                    fd = self._fds[name] = os.open(self.out_dir / f"{name}.jsonl",
                                                   os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                while data:
                    data = data[os.write(fd, data):]
                lines.clear()
        self._size = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
