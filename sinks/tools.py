"""Tool adapters: typed action in, receipt out, in-process or over HTTP (asyncio).

Each tool maps to one endpoint of a ticketing, payments or messaging API and
one compensating endpoint. A real Jira/ServiceNow/PSP is another `ToolClient`
or just another base URL with the same shapes. Errors are split into
transient (safe to retry: the idempotency key makes a retry a replay) and
permanent (retrying cannot help). Two transient errors carry more meaning:
429 (`ThrottledToolError`, with the tool's Retry-After) and 409 (the tool is
still working on the same key: `InProgressToolError`; retrying later gets the
stored answer), following the IETF Idempotency-Key draft.

The HTTP client is aiohttp: measured against httpx and a thread pool of
requests sessions at 64 calls in flight (bench/http_clients.py), it did the most
calls per second for the least CPU per call.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import aiohttp

from contracts.models import TOOL_ARGS, Action, ToolReceipt
from sinks.sandbox import KeyInProgress, KeyReused, ToolInvalid, ToolNotFound

COMPENSATION_PREFIX = "comp-"
RETRYABLE_STATUS = frozenset({408, 425})
MAX_RETRY_AFTER_S = 60.0


class TransientToolError(Exception):
    """Worth retrying: timeout, connection error, 5xx, 408/409/425/429, an unreadable answer."""


class ThrottledToolError(TransientToolError):
    """HTTP 429: the tool asks us to slow down, for `retry_after_s` seconds when it said so."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InProgressToolError(TransientToolError):
    """HTTP 409: a request with the same idempotency key is still being processed by the tool."""


class PermanentToolError(Exception):
    """Not worth retrying: other 4xx (400 no key, 422 key reused with another body), invalid arguments."""


@dataclass(frozen=True)
class Route:
    endpoint: Callable[[dict[str, Any]], str]
    compensate: Callable[[str], str] | None


ROUTES: dict[str, Route] = {
    "CreateTicket": Route(lambda a: "/tickets", lambda ref: f"/tickets/{ref}/close"),
    "PlacePaymentHold": Route(lambda a: "/payments/holds", lambda ref: f"/payments/holds/{ref}/release"),
    "SendNotice": Route(lambda a: "/messages", None),  # a sent message cannot be unsent
}


class ToolClient(Protocol):
    async def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]: ...


def retry_after_s(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), capped; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds()
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def check_status(status: int, endpoint: str, text: str, retry_after: str | None = None) -> None:
    """Raise the error class an HTTP status means for a tool call; return for 2xx/3xx."""
    if status == 429:
        raise ThrottledToolError(f"HTTP 429 from {endpoint}", retry_after_s(retry_after))
    if status == 409:
        raise InProgressToolError(f"HTTP 409 from {endpoint}: the key is still in progress at the tool")
    if status >= 500 or status in RETRYABLE_STATUS:
        raise TransientToolError(f"HTTP {status} from {endpoint}")
    if status >= 400:
        raise PermanentToolError(f"HTTP {status} from {endpoint}: {text[:200]}")


def request_for(action: Action) -> tuple[str, dict[str, Any]]:
    """The endpoint and validated JSON body of one typed action."""
    try:
        args = TOOL_ARGS[action.tool].model_validate(action.args).model_dump(mode="json")
    except ValueError as e:
        raise PermanentToolError(f"invalid {action.tool} arguments: {e}") from None
    return ROUTES[action.tool].endpoint(args), args


def receipt_of(tool: str, resp: dict[str, Any], endpoint: str) -> ToolReceipt:
    if not isinstance(resp, dict) or not isinstance(resp.get("id"), str):
        raise PermanentToolError(f"{endpoint} answered without an id")
    return ToolReceipt(tool=tool, ok=True, ref=resp["id"], message=str(resp.get("status", "")),
                       data={k: v for k, v in resp.items() if k != "id"})


async def call_tool(client: ToolClient, action: Action) -> ToolReceipt:
    """Perform one typed action; raises Transient/PermanentToolError."""
    endpoint, args = request_for(action)
    return receipt_of(action.tool, await client.post(endpoint, args, action.idempotency_key), endpoint)


def compensation_for(action: Action, receipt: ToolReceipt) -> str | ToolReceipt | None:
    """The endpoint that undoes a receipted action; a receipt when there is nothing to undo; None when it
    cannot be undone. A hold that was already in place before this action (`already_held`) belongs to
    someone else, so compensating it leaves it alone."""
    route = ROUTES[action.tool]
    if route.compensate is None or not receipt.ref:
        return None
    if receipt.data.get("already_held"):
        return ToolReceipt(tool=action.tool, ok=True, ref=receipt.ref, message="left in place: not placed by us",
                           data={"compensation": True, "noop": True})
    return route.compensate(receipt.ref)


def compensation_receipt(action: Action, receipt: ToolReceipt, resp: dict[str, Any]) -> ToolReceipt:
    return ToolReceipt(tool=action.tool, ok=True, ref=receipt.ref, message=str(resp.get("status", "")),
                       data={"compensation": True})


COMPENSATION_BODY: dict[str, Any] = {"reason": "plan failed; compensating"}


class InProcessClient:
    """Calls the sandbox service directly (file mode: no infrastructure, same idempotency rules)."""

    def __init__(self, service: Any) -> None:  # sinks.sandbox_service.SandboxService
        self.service = service

    async def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            _, resp = await self.service.call(endpoint, body, idempotency_key)
        except KeyInProgress as e:
            raise InProgressToolError(str(e)) from None
        except (KeyReused, ToolNotFound, ToolInvalid, KeyError, TypeError) as e:
            raise PermanentToolError(f"{type(e).__name__}: {e}") from None
        except sqlite3.OperationalError as e:  # e.g. database locked by another process
            raise TransientToolError(f"sandbox database: {e}") from None
        resp.pop("idempotent_replay", None)
        return resp

    async def close(self) -> None:
        pass


class HttpClient:
    """Calls a tool service over HTTP: one pooled aiohttp session, at most `connections` sockets, a per-call
    timeout. aiohttp never retries a POST by itself; retries belong to the plan runner, which reuses the
    same Idempotency-Key. The session is made on first use, inside the event loop that runs the calls."""

    def __init__(self, base_url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None,
                 connections: int = 256) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=self.connections, limit_per_host=self.connections))
        return self._session

    async def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            async with self._open().post(self.base_url + endpoint, json=body,
                                         headers={"Idempotency-Key": idempotency_key}) as r:
                text = await r.text()
                status, retry_after = r.status, r.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as e:  # asyncio.TimeoutError is TimeoutError on 3.11
            raise TransientToolError(f"{type(e).__name__} calling {endpoint}") from None
        check_status(status, endpoint, text, retry_after)
        try:
            data = json.loads(text)
        except ValueError:
            raise TransientToolError(f"unreadable answer from {endpoint}") from None
        if not isinstance(data, dict):
            raise TransientToolError(f"unexpected answer from {endpoint}")
        return data

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
