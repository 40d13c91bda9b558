"""The circuit breaker's states, and the tool gate that applies it with the Retry-After pause and the
per-tool concurrency limit (fake clock; no tool)."""
from __future__ import annotations

import asyncio

import pytest

from sinks.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from sinks.tool_gate import ToolGate


def test_opens_after_k_consecutive_failures_and_probes_once_half_open():
    b = CircuitBreaker(failures_to_open=3, open_s=2.0)
    for t in (0.0, 0.1):
        b.failure(t)
    b.success()                                   # a success resets the count
    for t in (1.0, 1.1, 1.2):
        assert b.try_enter(t)
        b.failure(t)
    assert b.state == OPEN and not b.try_enter(2.0) and b.wait_s(2.0) == pytest.approx(1.2)
    assert b.try_enter(3.2) and b.state == HALF_OPEN  # the probe
    assert not b.try_enter(3.3)                   # one probe at a time
    b.failure(3.4)
    assert b.state == OPEN and b.wait_s(3.4) == pytest.approx(2.0)
    assert b.try_enter(5.4)
    b.neutral()                                   # a 429: the probe ends, nothing learnt
    assert b.state == HALF_OPEN and b.try_enter(5.5)
    b.success()
    assert b.state == CLOSED and b.try_enter(5.6) and b.try_enter(5.6)


def test_gate_waits_out_retry_after_and_the_open_circuit_and_bounds_concurrency():
    now = [0.0]
    async def scenario() -> list[str]:
        gate = ToolGate("T", concurrency=2, breaker=CircuitBreaker(1, 0.05), clock=lambda: now[0])
        log: list[str] = []
        active = [0]

        async def call(name: str) -> None:
            async with gate.slot():
                active[0] += 1
                assert active[0] <= 2
                log.append(name)
                await asyncio.sleep(0.01)
                active[0] -= 1

        await asyncio.gather(*(call(f"c{i}") for i in range(5)))
        gate.throttled(0.05)
        started = asyncio.get_running_loop().time()

        async def tick() -> None:  # the fake clock follows the loop's
            while True:
                now[0] += asyncio.get_running_loop().time() - started - (now[0] - base)
                await asyncio.sleep(0.005)
        base = now[0]
        ticker = asyncio.create_task(tick())
        await call("after-429")
        waited = asyncio.get_running_loop().time() - started
        assert waited >= 0.045
        gate.unhealthy()                          # one failure opens this gate's circuit
        assert gate.breaker.state == OPEN
        t0 = asyncio.get_running_loop().time()
        await call("probe")
        assert asyncio.get_running_loop().time() - t0 >= 0.045
        gate.healthy()
        ticker.cancel()
        return log

    log = asyncio.run(scenario())
    assert log[:5] == [f"c{i}" for i in range(5)] and log[5:] == ["after-429", "probe"]
