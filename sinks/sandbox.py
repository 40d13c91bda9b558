"""The sandbox tool service: ticketing, payments and messaging APIs with idempotency keys.

Runs in-process (file mode) or over HTTP (`python -m sinks.sandbox --port N --db PATH`).
Every executed side effect is written to a ledger table that tests read to
prove exactly-once. The request and its effect commit in one SQLite
transaction, so a key is either fully done (and replayed from then on) or not
at all, even with several processes on one database file. Faults for the HTTP
layer (see `sinks.faults`) are injected on demand through `POST /_faults`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sinks.faults import FaultPlan, Faults


class ToolConflict(Exception):
    """Same idempotency key, different request body (HTTP 409)."""


class ToolNotFound(Exception):
    """The referenced ticket or hold does not exist (HTTP 404)."""


class ToolInvalid(Exception):
    """The request body lacks a field the endpoint needs (HTTP 422)."""


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
                        raise ToolConflict(f"idempotency key reused with a different body on {endpoint}")
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


def make_server(tools: SandboxTools, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP front for `tools`; faults and request statistics live with the server."""
    faults = Faults()
    lock = threading.Lock()
    stats: dict[str, Any] = {"requests": {}, "inflight": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: no request bodies in logs
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout); the work, if any, is already committed
                self.close_connection = True

        def _drop(self) -> None:
            """Close the socket without answering: the client sees a dropped connection."""
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/ledger":
                self._send(200, tools.ledger())
            elif self.path == "/health":
                self._send(200, {"ok": True})
            elif self.path == "/_faults":
                with lock:
                    self._send(200, faults.as_dict())
            elif self.path == "/_stats":
                with lock:
                    self._send(200, json.loads(json.dumps(stats)))
            elif self.path.startswith("/objects/"):
                obj = tools.get_object(self.path.split("/", 2)[2])
                self._send(200 if obj else 404, obj or {"error": "not found"})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._send(400, {"error": "body is not JSON"})
                return
            if self.path == "/_faults":
                with lock:
                    try:
                        faults.update(body)
                    except (ValueError, TypeError) as e:
                        self._send(400, {"error": str(e)})
                        return
                    self._send(200, faults.as_dict())
                return
            with lock:
                plan = faults.take(self.path)
                stats["requests"][self.path] = stats["requests"].get(self.path, 0) + 1
                stats["inflight"] += 1
            try:
                self._tool_call(body, plan)
            finally:
                with lock:
                    stats["inflight"] -= 1

        def _tool_call(self, body: Any, plan: FaultPlan) -> None:
            if plan.delay_before_ms:
                time.sleep(plan.delay_before_ms / 1000.0)
            if plan.fail_status:
                self._send(plan.fail_status, {"error": "injected fault"})
                return
            if plan.drop_before:
                self._drop()
                return
            key = self.headers.get("Idempotency-Key")
            if not key:
                self._send(400, {"error": "Idempotency-Key header is required"})
                return
            if not isinstance(body, dict):
                self._send(422, {"error": "body must be a JSON object"})
                return
            try:
                status, resp = tools.handle(self.path, body, key)
            except ToolConflict as e:
                self._send(409, {"error": str(e)})
                return
            except ToolNotFound as e:
                self._send(404, {"error": str(e)})
                return
            except (ToolInvalid, KeyError, TypeError) as e:
                self._send(422, {"error": f"invalid request: {e}"})
                return
            if plan.delay_after_ms:
                time.sleep(plan.delay_after_ms / 1000.0)
            if plan.drop_after:
                self._drop()
                return
            replay = {"Idempotent-Replayed": "true"} if resp.pop("idempotent_replay", False) else None
            self._send(200 if replay else status, resp, replay)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Sandbox ticketing/payments/messaging service")
    ap.add_argument("--port", type=int, default=8700, help="0 picks a free port (printed on stdout)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--db", default="sandbox_tools.sqlite")
    args = ap.parse_args(argv)
    tools = SandboxTools(args.db)
    server = make_server(tools, args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"sandbox": f"http://{args.host}:{server.server_address[1]}", "db": args.db}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        tools.close()


if __name__ == "__main__":
    main()
