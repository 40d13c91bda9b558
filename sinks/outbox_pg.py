"""The outbox on PostgreSQL (psycopg 3), for sinks that run on several hosts or want a managed store.

Same table, same guarded transitions as the SQLite outbox (the SQL lives in
`SqlOutbox`); `INSERT ... ON CONFLICT DO NOTHING` makes the claim atomic
across processes. A batch of ops is one transaction sent in pipeline mode: its
statements go out without waiting for each other's answers, so a group commit
costs about one round trip, not one per statement.
"""
from __future__ import annotations

import threading
from typing import Any

import psycopg

from sinks.outbox import SqlOutbox, Statement

_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq BIGSERIAL, tool TEXT NOT NULL, idempotency_key TEXT NOT NULL, args TEXT NOT NULL,
    state TEXT NOT NULL, receipt TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    envelope_ref TEXT NOT NULL, error TEXT, compensation TEXT, updated_ms BIGINT NOT NULL,
    PRIMARY KEY (tool, idempotency_key))
"""


class PostgresOutbox(SqlOutbox):
    ORDER = "seq"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        self._conn = psycopg.connect(dsn, autocommit=True)
        with self._lock:
            # concurrent CREATE TABLE IF NOT EXISTS can still race on the catalog; serialize it
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(7007)")
                self._conn.execute(_DDL)

    def _batch(self, statements: list[Statement]) -> list[tuple[int, list[tuple[Any, ...]]]]:
        with self._lock:
            with self._conn.transaction(), self._conn.pipeline() as pipe:
                cursors = [self._conn.execute(sql.replace("?", "%s"), params) for sql, params in statements]
                pipe.sync()
                return [(cur.rowcount, cur.fetchall() if cur.description else []) for cur in cursors]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
