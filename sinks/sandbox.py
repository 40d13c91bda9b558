"""The sandbox tool service: ticketing, payments and messaging APIs with idempotency keys.

Runs in-process (file mode) or over HTTP (`python -m sinks.sandbox --port N`).
Every executed side effect is written to a ledger table that tests read to
prove exactly-once. Faults (latency, 500s, dropped connections) can be injected
on demand through `POST /_faults`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class ToolConflict(Exception):
    """Same idempotency key, different request body (HTTP 409)."""


class ToolNotFound(Exception):
    """The referenced ticket or hold does not exist (HTTP 404)."""


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10].upper()


class SandboxTools:
    """The service's state and rules, behind both the HTTP server and the in-process adapter."""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = str(db_path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
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
        """Run an endpoint once per (endpoint, key); replays return the stored response."""
        body_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            row = self._db.execute(
                "SELECT body_hash, status, response FROM requests WHERE endpoint=? AND idempotency_key=?",
                (endpoint, idempotency_key)).fetchone()
            if row:
                if row[0] != body_hash:
                    raise ToolConflict(f"idempotency key reused with a different body on {endpoint}")
                resp = json.loads(row[2])
                resp["idempotent_replay"] = True
                return row[1], resp
            self._db.execute("BEGIN IMMEDIATE")
            try:
                status, resp = self._dispatch(endpoint, body, idempotency_key)
                self._db.execute("INSERT INTO requests VALUES (?,?,?,?,?)",
                                 (endpoint, idempotency_key, body_hash, status, json.dumps(resp)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return status, resp

    def _dispatch(self, endpoint: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
        parts = endpoint.strip("/").split("/")
        if parts == ["tickets"]:
            ref = "TKT-" + _short("ticket|" + key)
            self._effect("ticket.create", ref, key, body, "ticket", "open")
            return 201, {"id": ref, "status": "open"}
        if len(parts) == 3 and parts[0] == "tickets" and parts[2] in ("close", "comments"):
            self._require(parts[1])
            if parts[2] == "close":
                self._db.execute("UPDATE objects SET status='closed' WHERE ref=?", (parts[1],))
            self._effect(f"ticket.{parts[2]}", parts[1], key, body)
            return 200, {"id": parts[1], "status": "closed" if parts[2] == "close" else "open"}
        if parts == ["payments", "holds"]:
            ref = f"HOLD-{body['order_id']}"
            existing = self._db.execute("SELECT status FROM objects WHERE ref=?", (ref,)).fetchone()
            if existing and existing[0] == "held":
                return 200, {"id": ref, "status": "held", "already_held": True}
            if existing:
                self._db.execute("UPDATE objects SET status='held' WHERE ref=?", (ref,))
                self._effect("hold.place", ref, key, body)
            else:
                self._effect("hold.place", ref, key, body, "hold", "held")
            return 201, {"id": ref, "status": "held"}
        if len(parts) == 4 and parts[:2] == ["payments", "holds"] and parts[3] == "release":
            self._require(parts[2])
            self._db.execute("UPDATE objects SET status='released' WHERE ref=?", (parts[2],))
            self._effect("hold.release", parts[2], key, body)
            return 200, {"id": parts[2], "status": "released"}
        if parts == ["messages"]:
            ref = "MSG-" + _short("message|" + key)
            self._effect("notice.send", ref, key, body, "message", "sent")
            return 201, {"id": ref, "status": "sent"}
        raise ToolNotFound(f"no endpoint {endpoint}")

    def _require(self, ref: str) -> None:
        if not self._db.execute("SELECT 1 FROM objects WHERE ref=?", (ref,)).fetchone():
            raise ToolNotFound(f"{ref} does not exist")

    def _effect(self, effect: str, ref: str, key: str, body: dict[str, Any],
                kind: str | None = None, status: str | None = None) -> None:
        if kind:
            self._db.execute("INSERT INTO objects VALUES (?,?,?,?)", (ref, kind, status, json.dumps(body)))
        self._db.execute("INSERT INTO ledger (effect, ref, idempotency_key, body, at_ms) VALUES (?,?,?,?,?)",
                         (effect, ref, key, json.dumps(body), int(time.time() * 1000)))

    def ledger(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, effect, ref, idempotency_key, body, at_ms FROM ledger ORDER BY seq")
            return [{"seq": r[0], "effect": r[1], "ref": r[2], "idempotency_key": r[3],
                     "body": json.loads(r[4]), "at_ms": r[5]} for r in rows]

    def close(self) -> None:
        self._db.close()


@dataclass
class Faults:
    """Faults injected into the HTTP layer, consumed in order of arrival."""

    latency_ms: int = 0
    fail_next: int = 0            # answer the next N requests with 500 before doing anything
    drop_next: int = 0            # close the connection without answering, before doing anything
    drop_after_next: int = 0      # do the work, then close without answering (lost response)
    fail_paths: dict[str, int] = field(default_factory=dict)  # path prefix -> status, always
    seed: int = 0

    def update(self, data: dict[str, Any]) -> None:
        for k, v in data.items():
            if hasattr(self, k):
                setattr(self, k, v)


def make_server(tools: SandboxTools, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    faults = Faults()
    lock = threading.Lock()
    rng = random.Random(0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: no request bodies in logs
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.close()

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/ledger":
                self._send(200, tools.ledger())
            elif self.path == "/health":
                self._send(200, {"ok": True})
            elif self.path == "/_faults":
                self._send(200, faults.__dict__)
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
                    faults.update(body)
                self._send(200, faults.__dict__)
                return
            with lock:
                delay = faults.latency_ms
                fail = faults.fail_next > 0
                faults.fail_next -= 1 if fail else 0
                drop = not fail and faults.drop_next > 0
                faults.drop_next -= 1 if drop else 0
                drop_after = not fail and not drop and faults.drop_after_next > 0
                faults.drop_after_next -= 1 if drop_after else 0
                forced = next((s for p, s in faults.fail_paths.items() if self.path.startswith(p)), None)
            if delay:
                time.sleep(delay / 1000.0 * (0.5 + rng.random()))
            if fail or forced:
                self._send(forced or 500, {"error": "injected fault"})
                return
            if drop:
                self._drop()
                return
            key = self.headers.get("Idempotency-Key")
            if not key:
                self._send(400, {"error": "Idempotency-Key header is required"})
                return
            try:
                status, resp = tools.handle(self.path, body, key)
            except ToolConflict as e:
                self._send(409, {"error": str(e)})
                return
            except ToolNotFound as e:
                self._send(404, {"error": str(e)})
                return
            except (KeyError, TypeError) as e:
                self._send(422, {"error": f"invalid request: {type(e).__name__}"})
                return
            if drop_after:
                self._drop()
                return
            replay = {"Idempotent-Replayed": "true"} if resp.pop("idempotent_replay", False) else None
            self._send(200 if replay else status, resp, replay)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Sandbox ticketing/payments/messaging service")
    ap.add_argument("--port", type=int, default=8700)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--db", default="sandbox_tools.sqlite")
    args = ap.parse_args(argv)
    server = make_server(SandboxTools(args.db), args.host, args.port)
    print(json.dumps({"sandbox": f"http://{args.host}:{server.server_address[1]}", "db": args.db}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
