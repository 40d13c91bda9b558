"""The transactional outbox: one row per (tool, idempotency_key), written before any call.

States: pending -> sent -> receipted -> compensated; pending|sent -> failed;
pending -> degraded (skipped under backlog) or skipped (plan aborted earlier).
A row in `sent` after a crash is re-sent with the same idempotency key, which
the tool answers with the original result, so the side effect happens once.
Every transition is guarded by the states it may come from, so a receipt is
written once even when two executors race on the same action: the loser's
`update` returns False and it replays the stored receipt.

`open_outbox` picks SQLite (a state directory or file) or PostgreSQL (a
`postgresql://` DSN) behind the same interface.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contracts.models import Action, ToolReceipt

STATES = ("pending", "sent", "receipted", "failed", "compensated", "degraded", "skipped")
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "pending": (),
    "sent": ("pending", "sent"),
    "receipted": ("pending", "sent"),
    "failed": ("pending", "sent"),
    "compensated": ("receipted",),
    "degraded": ("pending",),
    "skipped": ("pending",),
}
_COLUMNS = "tool, idempotency_key, args, state, receipt, attempts, envelope_ref, error, compensation"


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


class Outbox(Protocol):
    def claim(self, action: Action, envelope_ref: str) -> tuple[OutboxRow, bool]: ...
    def get(self, tool: str, idempotency_key: str) -> OutboxRow | None: ...
    def update(self, tool: str, idempotency_key: str, state: str, *, receipt: ToolReceipt | None = None,
               error: str | None = None, compensation: ToolReceipt | None = None,
               attempt: bool = False) -> bool: ...
    def note(self, tool: str, idempotency_key: str, error: str) -> None: ...
    def reopen(self, tool: str, idempotency_key: str) -> bool: ...
    def rows(self) -> list[OutboxRow]: ...
    def close(self) -> None: ...


class SqlOutbox:
    """The outbox logic over any DB-API-ish backend; subclasses supply `_run` and the DDL."""

    ORDER = "rowid"

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[int, list[tuple[Any, ...]]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def claim(self, action: Action, envelope_ref: str) -> tuple[OutboxRow, bool]:
        """Insert the action as pending unless present; return the row and whether it is new."""
        count, _ = self._run(
            "INSERT INTO outbox (tool, idempotency_key, args, state, envelope_ref, updated_ms)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (tool, idempotency_key) DO NOTHING",
            (action.tool, action.idempotency_key, json.dumps(action.args, sort_keys=True), "pending",
             envelope_ref, _now()))
        row = self.get(action.tool, action.idempotency_key)
        assert row is not None
        return row, count == 1

    def get(self, tool: str, idempotency_key: str) -> OutboxRow | None:
        _, rows = self._run(f"SELECT {_COLUMNS} FROM outbox WHERE tool=? AND idempotency_key=?",
                            (tool, idempotency_key))
        return _row(rows[0]) if rows else None

    def update(self, tool: str, idempotency_key: str, state: str, *, receipt: ToolReceipt | None = None,
               error: str | None = None, compensation: ToolReceipt | None = None,
               attempt: bool = False) -> bool:
        """Move the row to `state` if it is in one of the states allowed before it; True if it moved.

        A receipt or compensation already stored is never replaced.
        """
        if state not in STATES or not ALLOWED_FROM[state]:
            raise ValueError(f"cannot move an outbox row to {state!r}")
        allowed = ALLOWED_FROM[state]
        count, _ = self._run(
            "UPDATE outbox SET state=?, receipt=COALESCE(receipt, ?), error=COALESCE(?, error),"
            " compensation=COALESCE(compensation, ?), attempts=attempts+?, updated_ms=?"
            f" WHERE tool=? AND idempotency_key=? AND state IN ({','.join('?' * len(allowed))})",
            (state, receipt.model_dump_json() if receipt else None, error,
             compensation.model_dump_json() if compensation else None, 1 if attempt else 0, _now(),
             tool, idempotency_key, *allowed))
        return count == 1

    def reopen(self, tool: str, idempotency_key: str) -> bool:
        """Operator action: put a failed, degraded or skipped row back to pending so the next
        delivery of its plan executes it (with the same key, so an in-doubt call is settled by
        the tool's replay). Receipted and compensated rows stay as they are."""
        count, _ = self._run(
            "UPDATE outbox SET state='pending', error=NULL, updated_ms=?"
            " WHERE tool=? AND idempotency_key=? AND state IN ('failed','degraded','skipped')",
            (_now(), tool, idempotency_key))
        return count == 1

    def note(self, tool: str, idempotency_key: str, error: str) -> None:
        """Record an error without changing state (e.g. a compensation that failed)."""
        self._run("UPDATE outbox SET error=?, updated_ms=? WHERE tool=? AND idempotency_key=?",
                  (error, _now(), tool, idempotency_key))

    def rows(self) -> list[OutboxRow]:
        _, rows = self._run(f"SELECT {_COLUMNS} FROM outbox ORDER BY {self.ORDER}")
        return [_row(r) for r in rows]


class SqliteOutbox(SqlOutbox):
    """The default store: one SQLite file (WAL), shared safely by several processes."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a process crash; a write lost to a power cut only sends a row back to `sent`,
        # and re-sending it with the same key is a replay at the tool.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("""
            CREATE TABLE IF NOT EXISTS outbox (
                tool TEXT NOT NULL, idempotency_key TEXT NOT NULL, args TEXT NOT NULL,
                state TEXT NOT NULL, receipt TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                envelope_ref TEXT NOT NULL, error TEXT, compensation TEXT, updated_ms INTEGER NOT NULL,
                PRIMARY KEY (tool, idempotency_key))""")

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[int, list[tuple[Any, ...]]]:
        with self._lock:
            cur = self._db.execute(sql, params)
            rows = cur.fetchall()
            return cur.rowcount, rows

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_outbox(state_dir_or_dsn: str | Path) -> SqlOutbox:
    """SQLite by default (`<dir>/outbox.sqlite`, or a `.sqlite`/`.db` file); PostgreSQL for a DSN."""
    target = str(state_dir_or_dsn)
    if target.startswith(("postgresql://", "postgres://")):
        from sinks.outbox_pg import PostgresOutbox  # psycopg only when asked for
        return PostgresOutbox(target)
    path = Path(target)
    if path.suffix in (".sqlite", ".db"):
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteOutbox(path)
    path.mkdir(parents=True, exist_ok=True)
    return SqliteOutbox(path / "outbox.sqlite")


def _receipt(text: str | None) -> ToolReceipt | None:
    return ToolReceipt.model_validate_json(text) if text else None


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(r[0], r[1], json.loads(r[2]), r[3], _receipt(r[4]), int(r[5]), r[6], r[7], _receipt(r[8]))


def _now() -> int:
    return int(time.time() * 1000)
