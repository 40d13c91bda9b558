"""The transactional outbox: one row per (tool, idempotency_key), written before any call.

States: pending -> sent -> receipted -> compensated; pending|sent -> failed;
pending -> degraded (skipped under backlog) or skipped (plan aborted earlier).
A row in `sent` after a crash is re-sent with the same idempotency key, which
the tool answers with the original result, so the side effect happens once.
Every transition is guarded by the states it may come from, so a receipt is
written once even when two executors race on the same action: the loser's
`update` returns False and it replays the stored receipt.

Group commit: `apply` runs a batch of ops (claims, moves, notes) in one
transaction, so many actions in flight share one commit; a tool is called only
after the batch holding its claim has committed (`sinks.group_commit`).

`open_outbox` picks SQLite (a state directory or file) or PostgreSQL (a
`postgresql://` DSN) behind the same interface.
"""
from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

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
    """A row as stored; its JSON columns are parsed when read (most ops only look at the state)."""

    tool: str
    idempotency_key: str
    args_json: str
    state: str
    receipt_json: str | None
    attempts: int
    envelope_ref: str
    error: str | None
    compensation_json: str | None

    @functools.cached_property
    def args(self) -> dict[str, Any]:
        return dict(json.loads(self.args_json))

    @functools.cached_property
    def receipt(self) -> ToolReceipt | None:
        return _receipt(self.receipt_json)

    @functools.cached_property
    def compensation(self) -> ToolReceipt | None:
        return _receipt(self.compensation_json)


@dataclass(frozen=True)
class Claim:
    """Insert the action as pending unless present; then, if `then` is given, move it on in the same
    transaction: to `sent` (one more attempt; from pending or sent), or to `degraded`/`skipped` (from pending
    only; a `degraded` claim of a row left in `sent` by a crash re-sends it instead, as it may be done)."""

    action: Action
    envelope_ref: str
    then: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Move:
    """A guarded transition: to `state` if the row is in one of the states allowed before it."""

    tool: str
    idempotency_key: str
    state: str
    receipt: ToolReceipt | None = None
    error: str | None = None
    compensation: ToolReceipt | None = None
    attempt: bool = False


@dataclass(frozen=True)
class Note:
    """Record an error without changing state (e.g. a compensation that failed)."""

    tool: str
    idempotency_key: str
    error: str


Op = Claim | Move | Note


@dataclass(frozen=True)
class Applied:
    """What an op found and did: the row afterwards, whether it was inserted, whether its transition happened."""

    row: OutboxRow | None
    created: bool = False
    moved: bool = False


class Outbox(Protocol):
    def apply(self, ops: Sequence[Op]) -> list[Applied]: ...
    def claim(self, action: Action, envelope_ref: str) -> tuple[OutboxRow, bool]: ...
    def get(self, tool: str, idempotency_key: str) -> OutboxRow | None: ...
    def update(self, tool: str, idempotency_key: str, state: str, *, receipt: ToolReceipt | None = None,
               error: str | None = None, compensation: ToolReceipt | None = None,
               attempt: bool = False) -> bool: ...
    def note(self, tool: str, idempotency_key: str, error: str) -> None: ...
    def reopen(self, tool: str, idempotency_key: str) -> bool: ...
    def rows(self) -> list[OutboxRow]: ...
    def close(self) -> None: ...


Statement = tuple[str, tuple[Any, ...]]
_SELECT = f"SELECT {_COLUMNS} FROM outbox WHERE tool=? AND idempotency_key=?"


def _move_sql(m: Move, allowed: Sequence[str] | None = None) -> Statement:
    if m.state not in STATES or not ALLOWED_FROM[m.state]:
        raise ValueError(f"cannot move an outbox row to {m.state!r}")
    allowed = tuple(allowed or ALLOWED_FROM[m.state])
    return ("UPDATE outbox SET state=?, receipt=COALESCE(receipt, ?), error=COALESCE(?, error),"
            " compensation=COALESCE(compensation, ?), attempts=attempts+?, updated_ms=?"
            f" WHERE tool=? AND idempotency_key=? AND state IN ({','.join('?' * len(allowed))})",
            (m.state, m.receipt.model_dump_json() if m.receipt else None, m.error,
             m.compensation.model_dump_json() if m.compensation else None, 1 if m.attempt else 0, _now(),
             m.tool, m.idempotency_key, *allowed))


def _statements(op: Op) -> tuple[list[Statement], int | None, int | None]:
    """The SQL of one op, the index of its INSERT and of its primary UPDATE (None where it has none);
    the last statement always selects the row."""
    if isinstance(op, Note):
        return [("UPDATE outbox SET error=?, updated_ms=? WHERE tool=? AND idempotency_key=?",
                 (op.error, _now(), op.tool, op.idempotency_key)),
                (_SELECT, (op.tool, op.idempotency_key))], None, None
    if isinstance(op, Move):
        return [_move_sql(op), (_SELECT, (op.tool, op.idempotency_key))], None, 0
    a = op.action
    stmts: list[Statement] = [(
        "INSERT INTO outbox (tool, idempotency_key, args, state, envelope_ref, updated_ms)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT (tool, idempotency_key) DO NOTHING",
        (a.tool, a.idempotency_key, json.dumps(a.args, sort_keys=True), "pending", op.envelope_ref, _now()))]
    primary: int | None = None
    sent = Move(a.tool, a.idempotency_key, "sent", attempt=True)
    if op.then == "sent":
        primary = len(stmts)
        stmts.append(_move_sql(sent))
    elif op.then in ("degraded", "skipped"):
        primary = len(stmts)
        stmts.append(_move_sql(Move(a.tool, a.idempotency_key, op.then, error=op.error)))
        if op.then == "degraded":
            stmts.append(_move_sql(sent, allowed=("sent",)))
    elif op.then is not None:
        raise ValueError(f"a claim cannot move on to {op.then!r}")
    stmts.append((_SELECT, (a.tool, a.idempotency_key)))
    return stmts, 0, primary


class SqlOutbox:
    """The outbox logic over any DB-API-ish backend; subclasses supply `_batch` and the DDL."""

    ORDER = "rowid"

    def _batch(self, statements: list[Statement]) -> list[tuple[int, list[tuple[Any, ...]]]]:
        """Run the statements in one transaction, committed before returning: (rowcount, rows) of each."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def apply(self, ops: Sequence[Op]) -> list[Applied]:
        """Every op in one transaction (group commit): durable when this returns."""
        plans = [_statements(op) for op in ops]
        results = self._batch([s for stmts, _, _ in plans for s in stmts])
        out, i = [], 0
        for stmts, insert, primary in plans:
            mine = results[i:i + len(stmts)]
            i += len(stmts)
            rows = mine[-1][1]
            out.append(Applied(_row(rows[0]) if rows else None,
                               created=insert is not None and mine[insert][0] == 1,
                               moved=primary is not None and mine[primary][0] == 1))
        return out

    def claim(self, action: Action, envelope_ref: str) -> tuple[OutboxRow, bool]:
        """Insert the action as pending unless present; return the row and whether it is new."""
        [done] = self.apply([Claim(action, envelope_ref)])
        assert done.row is not None
        return done.row, done.created

    def get(self, tool: str, idempotency_key: str) -> OutboxRow | None:
        [(_, rows)] = self._batch([(_SELECT, (tool, idempotency_key))])
        return _row(rows[0]) if rows else None

    def update(self, tool: str, idempotency_key: str, state: str, *, receipt: ToolReceipt | None = None,
               error: str | None = None, compensation: ToolReceipt | None = None,
               attempt: bool = False) -> bool:
        """Move the row to `state` if it is in one of the states allowed before it; True if it moved.

        A receipt or compensation already stored is never replaced.
        """
        return self.apply([Move(tool, idempotency_key, state, receipt, error, compensation, attempt)])[0].moved

    def reopen(self, tool: str, idempotency_key: str) -> bool:
        """Operator action: put a failed, degraded or skipped row back to pending so the next
        delivery of its plan executes it (with the same key, so an in-doubt call is settled by
        the tool's replay). Receipted and compensated rows stay as they are."""
        [(count, _)] = self._batch([(
            "UPDATE outbox SET state='pending', error=NULL, updated_ms=?"
            " WHERE tool=? AND idempotency_key=? AND state IN ('failed','degraded','skipped')",
            (_now(), tool, idempotency_key))])
        return count == 1

    def note(self, tool: str, idempotency_key: str, error: str) -> None:
        """Record an error without changing state (e.g. a compensation that failed)."""
        self.apply([Note(tool, idempotency_key, error)])

    def rows(self) -> list[OutboxRow]:
        [(_, rows)] = self._batch([(f"SELECT {_COLUMNS} FROM outbox ORDER BY {self.ORDER}", ())])
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

    def _batch(self, statements: list[Statement]) -> list[tuple[int, list[tuple[Any, ...]]]]:
        with self._lock:
            if all(sql.startswith("SELECT") for sql, _ in statements):  # a read takes no write lock
                return [(-1, self._db.execute(sql, params).fetchall()) for sql, params in statements]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = []
                for sql, params in statements:
                    cur = self._db.execute(sql, params)
                    out.append((cur.rowcount, cur.fetchall()))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            return out

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
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], r[8])


def _now() -> int:
    return int(time.time() * 1000)
