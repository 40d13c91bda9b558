"""The sandbox tool service over HTTP (aiohttp, one event loop: many requests in flight, none blocking another
while it waits its latency). `python -m sinks.sandbox --port N --db PATH [profile options]`.

Tool endpoints answer as `sinks.sandbox_service` decides: 400 without an
Idempotency-Key, 429 with Retry-After over an API's rate, 409 while the same key is
in progress, 422 for a key reused with another body (or a body lacking a field),
404 for an unknown object, the stored response (200, `Idempotent-Replayed: true`)
for a completed key. Faults (`sinks.faults`) come on top, on demand, through
`POST /_faults`. Control and read endpoints: `GET /ledger`, `/health`, `/_faults`,
`/_stats` (requests per path, in flight now and at most per API, 429s and 409s per
API), `/objects/{ref}`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import sys
from typing import Any

import uvloop
from aiohttp import web

from sinks.faults import FaultPlan, Faults
from sinks.http_listen import listen
from sinks.sandbox import KeyInProgress, KeyReused, MissingKey, RateLimited, SandboxTools, ToolInvalid, ToolNotFound
from sinks.sandbox_profile import Latency, Profile, api_of, parse_assignments
from sinks.sandbox_service import SandboxService


class Stats:
    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.inflight = 0
        self.inflight_by_api: dict[str, int] = {}
        self.max_inflight_by_api: dict[str, int] = {}
        self.status_by_api: dict[str, dict[str, int]] = {}

    def enter(self, path: str) -> None:
        api = api_of(path)
        self.requests[path] = self.requests.get(path, 0) + 1
        self.inflight += 1
        n = self.inflight_by_api[api] = self.inflight_by_api.get(api, 0) + 1
        self.max_inflight_by_api[api] = max(n, self.max_inflight_by_api.get(api, 0))

    def leave(self, path: str, status: int) -> None:
        api = api_of(path)
        self.inflight -= 1
        self.inflight_by_api[api] -= 1
        counts = self.status_by_api.setdefault(api, {})
        counts[str(status)] = counts.get(str(status), 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "inflight": self.inflight,
                "inflight_by_api": dict(self.inflight_by_api), "max_inflight_by_api": dict(self.max_inflight_by_api),
                "status_by_api": {k: dict(v) for k, v in self.status_by_api.items()}}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json", headers=headers)


def _drop(request: web.Request) -> web.Response:
    """Close the socket without answering: the client sees a dropped connection."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)  # never reaches the client


def make_app(service: SandboxService) -> web.Application:
    faults = Faults()
    stats = Stats()
    tools = service.tools

    async def tool_call(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return _json(400, {"error": "body is not JSON"})
        path = request.path
        plan = faults.take(path)
        stats.enter(path)
        status = 0
        try:
            response = await _answer(request, body, plan)
            status = response.status
            return response
        finally:
            stats.leave(path, status)

    async def _answer(request: web.Request, body: Any, plan: FaultPlan) -> web.Response:
        if plan.delay_before_ms:
            await asyncio.sleep(plan.delay_before_ms / 1000.0)
        if plan.fail_status:
            return _json(plan.fail_status, {"error": "injected fault"})
        if plan.drop_before:
            return _drop(request)
        if not isinstance(body, dict):
            return _json(422, {"error": "body must be a JSON object"})
        try:
            status, resp = await service.call(request.path, body, request.headers.get("Idempotency-Key"))
        except MissingKey as e:
            return _json(400, {"error": str(e)})
        except RateLimited as e:
            return _json(429, {"error": str(e)}, {"Retry-After": str(max(1, math.ceil(e.retry_after_s)))})
        except KeyInProgress as e:
            return _json(409, {"error": str(e)})
        except ToolNotFound as e:
            return _json(404, {"error": str(e)})
        except KeyReused as e:
            return _json(422, {"error": str(e)})
        except (ToolInvalid, KeyError, TypeError) as e:
            return _json(422, {"error": f"invalid request: {e}"})
        if plan.delay_after_ms:
            await asyncio.sleep(plan.delay_after_ms / 1000.0)
        if plan.drop_after:
            return _drop(request)
        replay = {"Idempotent-Replayed": "true"} if resp.pop("idempotent_replay", False) else None
        return _json(200 if replay else status, resp, replay)

    async def set_faults(request: web.Request) -> web.Response:
        try:
            faults.update(json.loads(await request.read() or b"{}"))
        except (ValueError, TypeError) as e:
            return _json(400, {"error": str(e)})
        return _json(200, faults.as_dict())

    async def get_object(request: web.Request) -> web.Response:
        obj = tools.get_object(request.match_info["ref"])
        return _json(200 if obj else 404, obj or {"error": "not found"})

    def read(view: Any) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return _json(200, view())
        return handler

    app = web.Application()
    app.router.add_get("/ledger", read(tools.ledger))
    app.router.add_get("/health", read(lambda: {"ok": True}))
    app.router.add_get("/_faults", read(faults.as_dict))
    app.router.add_get("/_stats", read(stats.as_dict))
    app.router.add_get("/objects/{ref}", get_object)
    app.router.add_post("/_faults", set_faults)
    app.router.add_post("/{path:.*}", tool_call)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="sinks.sandbox", description="Sandbox ticketing/payments/messaging service")
    ap.add_argument("--port", type=int, default=8700, help="0 picks a free port (printed on stdout)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--db", default="sandbox_tools.sqlite")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="latency of every request (before the work)")
    ap.add_argument("--jitter-ms", type=float, default=0.0, help="uniform jitter around --latency-ms")
    ap.add_argument("--api-latency", action="append", default=[], metavar="API=MS[:JITTER]",
                    help="latency of one API (tickets, payments, messages); repeatable")
    ap.add_argument("--rate-limit", action="append", default=[], metavar="API=PER_S",
                    help="requests per second one API accepts before answering 429; repeatable")
    ap.add_argument("--burst", type=float, default=None, help="token-bucket burst of the rate limits "
                                                               "(default: a tenth of the rate, at least 1)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the latency jitter")
    return ap.parse_args(argv)


def profile_of(a: argparse.Namespace) -> Profile:
    try:
        api_latency = {k: Latency.parse(v) for k, v in parse_assignments(a.api_latency, "--api-latency").items()}
        limits = {k: float(v) for k, v in parse_assignments(a.rate_limit, "--rate-limit").items()}
    except ValueError as e:
        raise SystemExit(f"sinks.sandbox: {e}") from None
    return Profile(Latency(a.latency_ms, a.jitter_ms), api_latency, limits, a.burst)


async def serve(a: argparse.Namespace) -> None:
    tools = SandboxTools(a.db)
    app = make_app(SandboxService(tools, profile_of(a), random.Random(a.seed)))
    # handlers keep running when their client goes away: the work of a request whose client timed out
    # or was killed still happens, as at a real tool
    runner, port = await listen(app, a.host, a.port)
    print(json.dumps({"sandbox": f"http://{a.host}:{port}", "db": a.db}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        tools.close()


def main(argv: list[str] | None = None) -> None:
    uvloop.run(serve(parse_args(argv)))
    sys.exit(0)
