"""Which HTTP client the sink uses, by measurement: aiohttp, httpx (async) and a thread pool of requests
sessions, each making the same tool calls against the sandbox (`python -m bench.http_clients`, or part of
`python -m bench.sink`). Each client runs in a process of its own, so its CPU time is its own.

Reports calls per second and client CPU microseconds per call at a given number of calls in flight.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CLIENTS = ("aiohttp", "httpx", "requests-threads")
BODY = {"account_id": "acct-bench", "template": "vip-order-received"}


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _aiohttp(url: str, keys: list[str], concurrency: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        sem = asyncio.Semaphore(concurrency)

        async def one(key: str) -> None:
            async with sem, s.post(url, json=BODY, headers={"Idempotency-Key": key}) as r:
                assert r.status < 300, r.status
                await r.json()
        await asyncio.gather(*(one(k) for k in keys))


async def _httpx(url: str, keys: list[str], concurrency: int) -> None:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as s:
        sem = asyncio.Semaphore(concurrency)

        async def one(key: str) -> None:
            async with sem:
                r = await s.post(url, json=BODY, headers={"Idempotency-Key": key})
                assert r.status_code < 300, r.status_code
                r.json()
        await asyncio.gather(*(one(k) for k in keys))


def _threads(url: str, keys: list[str], concurrency: int) -> None:
    import threading

    import requests

    local = threading.local()

    def one(key: str) -> None:
        s = getattr(local, "session", None) or requests.Session()
        local.session = s
        r = s.post(url, json=BODY, headers={"Idempotency-Key": key}, timeout=30)
        assert r.status_code < 300, r.status_code
        r.json()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, keys))


def measure(client: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    """In this process: `n` calls with `concurrency` in flight."""
    keys = [f"bench-{client}-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]
    t0, c0 = time.perf_counter(), _cpu_s()
    if client == "aiohttp":
        asyncio.run(_aiohttp(url, keys, concurrency))
    elif client == "httpx":
        asyncio.run(_httpx(url, keys, concurrency))
    else:
        _threads(url, keys, concurrency)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    return {"client": client, "concurrency": concurrency, "calls": n, "calls_per_s": round(n / wall, 1),
            "cpu_us_per_call": round(cpu / n * 1e6)}


def compare(tools_url: str, n: int = 3000, concurrency: int = 64) -> list[dict[str, Any]]:
    """Every client, one subprocess each, against the sandbox's messages endpoint."""
    out = []
    for client in CLIENTS:
        proc = subprocess.run([sys.executable, "-m", "bench.http_clients", "--url", tools_url.rstrip("/") + "/messages",
                               "--client", client, "--calls", str(n), "--concurrency", str(concurrency)],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"{client}: {proc.stderr[-2000:]}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="a tool endpoint, e.g. http://127.0.0.1:8700/messages")
    ap.add_argument("--client", choices=CLIENTS, required=True)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=64)
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.client, a.url, a.calls, a.concurrency)), flush=True)


if __name__ == "__main__":
    main()
