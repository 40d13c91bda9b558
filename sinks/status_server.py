"""The standalone sink's HTTP status endpoint, on the sink's own event loop: `GET /metrics` (Prometheus text
format) and `GET /health` (JSON, 200 or 503: `sinks.health`).

Serving from the loop that runs the plans means a wedged loop answers nothing:
a health check that times out is the right verdict for it.
"""
from __future__ import annotations

import json
from typing import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks.health import Snapshot, judge
from sinks.http_listen import listen
from sinks.metrics import SinkMetrics


async def start(metrics: SinkMetrics, snapshot: Callable[[], Snapshot], host: str, port: int,
                stall_after_s: float) -> tuple[web.AppRunner, str]:
    """Start serving; returns the runner (to clean up) and the base URL (port 0 picks a free one)."""
    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_health(request: web.Request) -> web.Response:
        status, body = judge(snapshot(), stall_after_s)
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/health", get_health)
    runner, bound = await listen(app, host, port)
    return runner, f"http://{host}:{bound}"
