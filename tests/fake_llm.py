"""A local fake of an OpenAI-compatible chat API (http.server in a thread, free port) for the LLM policy tests."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

from contextlib import contextmanager


@dataclass
class Reply:
    content: str | None = None        # the assistant message's content
    status: int = 200
    delay_s: float = 0.0
    raw: bytes | None = None          # a whole body instead of a chat completion


@dataclass
class FakeLlm:
    port: int = 0
    # a fixed Reply, or a function of the request body (parsed JSON) giving one
    reply: Reply | Callable[[dict[str, Any]], Reply] = field(default_factory=Reply)
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _handler(fake: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            fake.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            r = fake.reply(json.loads(body)) if callable(fake.reply) else fake.reply
            if r.delay_s:
                time.sleep(r.delay_s)
            out = r.raw if r.raw is not None else json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": r.content}}]}).encode()
            try:
                self.send_response(r.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout case)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve() -> Iterator[FakeLlm]:
    fake = FakeLlm()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    fake.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
