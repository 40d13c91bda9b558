"""Shared helpers for the sink tests: action builders and a client for the sandbox's HTTP control API."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import requests

from contracts.models import Action
from contracts.records import Position
from sinks.backlog import DegradePolicy
from sinks.executor import ActionExecutor, RetryPolicy
from sinks.outbox import SqlOutbox
from sinks.tools import HttpClient

FAST_RETRY = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)


class FixedDelay(RetryPolicy):
    """No jitter: a test that relies on the wait between attempts (or parks a driver in it) can count on it."""

    def delay(self, attempt: int, rng: object) -> float:
        return self.base_delay_s
POS = Position("risk.order_threshold_breach", 0, 7, "acct-1", 1767225600000, "v3")
ENVELOPE = {"topic": "risk.order_threshold_breach", "partition": 0, "offset": 7, "key": "acct-1",
            "ts_ms": 1767225600000, "schema": "v3", "payload": {"account_id": "acct-1"}}


def ticket(key: str, order: str = "o1") -> Action:
    return Action(tool="CreateTicket", idempotency_key=key,
                  args={"summary": f"Order {order} risk breach (high_value_orders_3_in_10m)",
                        "labels": ["risk", "orders"]})


def hold(key: str, order: str = "o1") -> Action:
    return Action(tool="PlacePaymentHold", idempotency_key=key,
                  args={"order_id": order, "reason": "high_value_orders_3_in_10m"})


def notice(key: str, account: str = "acct-1") -> Action:
    return Action(tool="SendNotice", idempotency_key=key,
                  args={"account_id": account, "template": "vip-order-received"})


def wait_until(cond: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    """Poll `cond` until truthy; a deadline only turns a hang into a clear failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Sandbox:
    """The control side of a running sandbox service."""

    url: str
    db: str

    def faults(self, **settings: Any) -> dict[str, Any]:
        r = requests.post(self.url + "/_faults", json=settings, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def ledger(self) -> list[dict[str, Any]]:
        return requests.get(self.url + "/ledger", timeout=5).json()

    def stats(self) -> dict[str, Any]:
        return requests.get(self.url + "/_stats", timeout=5).json()

    def requests_to(self, path: str) -> int:
        return int(self.stats()["requests"].get(path, 0))

    def obj(self, ref: str) -> dict[str, Any] | None:
        r = requests.get(f"{self.url}/objects/{ref}", timeout=5)
        return r.json() if r.status_code == 200 else None

    def settled(self) -> list[dict[str, Any]]:
        """The ledger once no request is in progress (slow requests finish their work first)."""
        wait_until(lambda: self.stats()["inflight"] == 0, "the sandbox to finish its requests")
        return self.ledger()

    def post(self, path: str, body: Any, key: str | None) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return requests.post(self.url + path, json=body, headers=headers, timeout=5)


def effects(ledger: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["effect"], e["idempotency_key"]) for e in ledger]


EXECUTORS: list[ActionExecutor] = []  # closed after each test (tests/sinks/conftest.py)


def make_executor(outbox: SqlOutbox, sandbox: Sandbox, *, timeout_s: float = 5.0,
                  retry: RetryPolicy = FAST_RETRY, bound: int | None = None, **kw: Any) -> ActionExecutor:
    ex = ActionExecutor(outbox, HttpClient(sandbox.url, timeout_s=timeout_s), retry,
                        degrade=DegradePolicy(bound) if bound is not None else None, **kw)
    EXECUTORS.append(ex)
    return ex
