"""The transactional outbox: one row per (tool, idempotency_key), written before any call.

States: pending -> sent -> receipted, or -> failed, and receipted -> compensated.
A row in `sent` after a crash is re-sent with the same idempotency key, which
the tool answers with the original result, so the side effect happens once.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.models import Action, ToolReceipt

STATES = ("pending", "sent", "receipted", "failed", "compensated")


@dataclass
class OutboxRow:
    tool: str
    idempotency_key: str
    args: dict[str, Any]
    state: str
    receipt: ToolReceipt | None
    attempts: int
    envelope_ref: str
    error: str | None
    compensation: ToolReceipt | None


class SqliteOutbox:
    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("""
            CREATE TABLE IF NOT EXISTS outbox (
                tool TEXT NOT NULL, idempotency_key TEXT NOT NULL, args TEXT NOT NULL,
                state TEXT NOT NULL, receipt TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                envelope_ref TEXT NOT NULL, error TEXT, compensation TEXT, updated_ms INTEGER NOT NULL,
                PRIMARY KEY (tool, idempotency_key))""")

    def claim(self, action: Action, envelope_ref: str) -> tuple[OutboxRow, bool]:
        """Insert the action as pending unless present; return the row and whether it is new."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (tool, idempotency_key, args, state, envelope_ref, updated_ms)"
                " VALUES (?,?,?,?,?,?)",
                (action.tool, action.idempotency_key, json.dumps(action.args, sort_keys=True), "pending",
                 envelope_ref, _now()))
            created = cur.rowcount == 1
        row = self.get(action.tool, action.idempotency_key)
        assert row is not None
        return row, created

    def get(self, tool: str, idempotency_key: str) -> OutboxRow | None:
        with self._lock:
            r = self._db.execute(
                "SELECT tool, idempotency_key, args, state, receipt, attempts, envelope_ref, error, compensation"
                " FROM outbox WHERE tool=? AND idempotency_key=?", (tool, idempotency_key)).fetchone()
        if not r:
            return None
        return OutboxRow(r[0], r[1], json.loads(r[2]), r[3],
                         ToolReceipt.model_validate_json(r[4]) if r[4] else None, r[5], r[6], r[7],
                         ToolReceipt.model_validate_json(r[8]) if r[8] else None)

    def update(self, tool: str, idempotency_key: str, state: str, *, receipt: ToolReceipt | None = None,
               error: str | None = None, compensation: ToolReceipt | None = None, attempt: bool = False) -> None:
        assert state in STATES
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state=?, receipt=COALESCE(?, receipt), error=COALESCE(?, error),"
                " compensation=COALESCE(?, compensation), attempts=attempts+?, updated_ms=?"
                " WHERE tool=? AND idempotency_key=?",
                (state, receipt.model_dump_json() if receipt else None, error,
                 compensation.model_dump_json() if compensation else None, 1 if attempt else 0, _now(),
                 tool, idempotency_key))

    def rows(self) -> list[OutboxRow]:
        with self._lock:
            keys = self._db.execute("SELECT tool, idempotency_key FROM outbox ORDER BY rowid").fetchall()
        return [r for r in (self.get(t, k) for t, k in keys) if r is not None]

    def close(self) -> None:
        self._db.close()


def _now() -> int:
    return int(time.time() * 1000)
