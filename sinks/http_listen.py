"""Serve an aiohttp application on a host and port (0: a free one), returning the port actually bound."""
from __future__ import annotations

import socket

from aiohttp import web


async def listen(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    # handlers keep running when their client goes away (aiohttp's default), and shutdown waits 1 s at most
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner, int(sock.getsockname()[1])
