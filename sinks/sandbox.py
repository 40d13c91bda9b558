"""The sandbox tools' state and rules: ticketing, payments and messaging APIs with idempotency keys.

Runs in-process (file mode) or behind HTTP (`python -m sinks.sandbox --port N --db PATH`, see
`sinks.sandbox_http`); latency, rate limits and keys in progress live in `sinks.sandbox_service`.
Every executed side effect is written to a ledger table that tests read to
prove exactly-once. The request and its effect commit in one SQLite
transaction, so a key is either fully done (and replayed from then on) or not
at all, even with several processes on one database file.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


class MissingKey(Exception):
    """No Idempotency-Key header (HTTP 400)."""


class KeyInProgress(Exception):
    """A request with the same idempotency key is still being processed (HTTP 409)."""


class KeyReused(Exception):
    """Same idempotency key, different request body (HTTP 422)."""


class ToolNotFound(Exception):
    """The referenced ticket or hold does not exist (HTTP 404)."""


class ToolInvalid(Exception):
    """The request body lacks a field the endpoint needs (HTTP 422)."""


class RateLimited(Exception):
    """Over the API's request rate (HTTP 429 with Retry-After)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after_s:.3f} s")
        self.retry_after_s = retry_after_s


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10].upper()


def _need(body: dict[str, Any], *fields: str) -> None:
    missing = [f for f in fields if not isinstance(body.get(f), str) or not body[f]]
    if missing:
        raise ToolInvalid(f"missing or empty: {', '.join(missing)}")


class SandboxTools:
    """The service's state and rules, behind both the HTTP server and the in-process adapter."""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = str(db_path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a process kill, which is what we inject
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS requests (
                endpoint TEXT NOT NULL, idempotency_key TEXT NOT NULL, body_hash TEXT NOT NULL,
                status INTEGER NOT NULL, response TEXT NOT NULL,
                PRIMARY KEY (endpoint, idempotency_key));
            CREATE TABLE IF NOT EXISTS ledger (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, effect TEXT NOT NULL, ref TEXT NOT NULL,
                idempotency_key TEXT NOT NULL, body TEXT NOT NULL, at_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS objects (ref TEXT PRIMARY KEY, kind TEXT NOT NULL,
                status TEXT NOT NULL, body TEXT NOT NULL);
        """)

    # -- the one idempotent entry point ---------------------------------------
    def handle(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> tuple[int, dict[str, Any]]:
        """Run an endpoint once per (endpoint, key); replays return the stored response.

        The lookup happens inside the write transaction (BEGIN IMMEDIATE), so two
        processes racing on one key cannot both dispatch it.
        """
        body_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT body_hash, status, response FROM requests WHERE endpoint=? AND idempotency_key=?",
                    (endpoint, idempotency_key)).fetchone()
                if row:
                    self._db.execute("ROLLBACK")
                    if row[0] != body_hash:
                        raise KeyReused(f"idempotency key reused with a different body on {endpoint}")
                    resp = json.loads(row[2])
                    resp["idempotent_replay"] = True
                    return row[1], resp
                status, resp = self._dispatch(endpoint, body, idempotency_key)
                self._db.execute("INSERT INTO requests VALUES (?,?,?,?,?)",
                                 (endpoint, idempotency_key, body_hash, status, json.dumps(resp)))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            return status, resp

    def _dispatch(self, endpoint: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
        parts = endpoint.strip("/").split("/")
        if parts == ["tickets"]:
            _need(body, "summary")
            ref = "TKT-" + _short("ticket|" + key)
            self._effect("ticket.create", ref, key, body, "ticket", "open")
            return 201, {"id": ref, "status": "open"}
        if len(parts) == 3 and parts[0] == "tickets" and parts[2] == "close":
            self._require(parts[1])
            self._set_status(parts[1], "closed")
            self._effect("ticket.close", parts[1], key, body)
            return 200, {"id": parts[1], "status": "closed"}
        if len(parts) == 3 and parts[0] == "tickets" and parts[2] == "comments":
            _need(body, "text")
            status = self._require(parts[1])
            ref = "CMT-" + _short(f"comment|{parts[1]}|{key}")
            self._effect("ticket.comment", ref, key, {**body, "ticket": parts[1]}, "comment", "posted")
            return 201, {"id": ref, "ticket": parts[1], "status": status}
        if parts == ["payments", "holds"]:
            _need(body, "order_id")
            ref = f"HOLD-{body['order_id']}"
            existing = self._db.execute("SELECT status FROM objects WHERE ref=?", (ref,)).fetchone()
            if existing and existing[0] == "held":
                return 200, {"id": ref, "status": "held", "already_held": True}
            if existing:
                self._set_status(ref, "held")
                self._effect("hold.place", ref, key, body)
            else:
                self._effect("hold.place", ref, key, body, "hold", "held")
            return 201, {"id": ref, "status": "held"}
        if len(parts) == 4 and parts[:2] == ["payments", "holds"] and parts[3] == "release":
            self._require(parts[2])
            self._set_status(parts[2], "released")
            self._effect("hold.release", parts[2], key, body)
            return 200, {"id": parts[2], "status": "released"}
        if parts == ["messages"]:
            _need(body, "account_id", "template")
            ref = "MSG-" + _short("message|" + key)
            self._effect("notice.send", ref, key, body, "message", "sent")
            return 201, {"id": ref, "status": "sent"}
        raise ToolNotFound(f"no endpoint {endpoint}")

    def _require(self, ref: str) -> str:
        row = self._db.execute("SELECT status FROM objects WHERE ref=?", (ref,)).fetchone()
        if not row:
            raise ToolNotFound(f"{ref} does not exist")
        return str(row[0])

    def _set_status(self, ref: str, status: str) -> None:
        self._db.execute("UPDATE objects SET status=? WHERE ref=?", (status, ref))

    def _effect(self, effect: str, ref: str, key: str, body: dict[str, Any],
                kind: str | None = None, status: str | None = None) -> None:
        if kind:
            self._db.execute("INSERT INTO objects VALUES (?,?,?,?)", (ref, kind, status, json.dumps(body)))
        self._db.execute("INSERT INTO ledger (effect, ref, idempotency_key, body, at_ms) VALUES (?,?,?,?,?)",
                         (effect, ref, key, json.dumps(body), int(time.time() * 1000)))

    # -- read side, for operators and tests ------------------------------------
    def ledger(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, effect, ref, idempotency_key, body, at_ms FROM ledger ORDER BY seq")
            return [{"seq": r[0], "effect": r[1], "ref": r[2], "idempotency_key": r[3],
                     "body": json.loads(r[4]), "at_ms": r[5]} for r in rows]

    def get_object(self, ref: str) -> dict[str, Any] | None:
        with self._lock:
            r = self._db.execute("SELECT ref, kind, status, body FROM objects WHERE ref=?", (ref,)).fetchone()
        return {"id": r[0], "kind": r[1], "status": r[2], "body": json.loads(r[3])} if r else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m sinks.sandbox`: the HTTP service (sinks.sandbox_http), imported here so that its classes
    are the `sinks.sandbox` ones and not this `__main__` module's copies."""
    from sinks.sandbox_http import main as serve

    serve(argv)


if __name__ == "__main__":
    main()
