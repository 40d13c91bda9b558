"""Tool adapters: typed action in, receipt out, in-process or over HTTP.

Each tool maps to one endpoint of a ticketing, payments or messaging API and
one compensating endpoint. A real Jira/ServiceNow/PSP is another `ToolClient`
or just another base URL with the same shapes. Errors are split into
transient (safe to retry: the idempotency key makes a retry a replay) and
permanent (retrying cannot help).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import requests

from contracts.models import TOOL_ARGS, Action, ToolReceipt
from sinks.sandbox import SandboxTools, ToolConflict, ToolInvalid, ToolNotFound

COMPENSATION_PREFIX = "comp-"
RETRYABLE_STATUS = frozenset({408, 425, 429})


class TransientToolError(Exception):
    """Worth retrying: timeout, connection error, 5xx, 408/425/429, an unreadable answer."""


class PermanentToolError(Exception):
    """Not worth retrying: other 4xx (409 = key reused with another body), invalid arguments."""


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
    def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]: ...


def _receipt(tool: str, resp: dict[str, Any], endpoint: str) -> ToolReceipt:
    if not isinstance(resp, dict) or not isinstance(resp.get("id"), str):
        raise PermanentToolError(f"{endpoint} answered without an id")
    return ToolReceipt(tool=tool, ok=True, ref=resp["id"], message=str(resp.get("status", "")),
                       data={k: v for k, v in resp.items() if k != "id"})


def call_tool(client: ToolClient, action: Action) -> ToolReceipt:
    """Perform one typed action; raises Transient/PermanentToolError."""
    try:
        args = TOOL_ARGS[action.tool].model_validate(action.args).model_dump(mode="json")
    except ValueError as e:
        raise PermanentToolError(f"invalid {action.tool} arguments: {e}") from None
    endpoint = ROUTES[action.tool].endpoint(args)
    return _receipt(action.tool, client.post(endpoint, args, action.idempotency_key), endpoint)


def compensate_tool(client: ToolClient, action: Action, receipt: ToolReceipt) -> ToolReceipt | None:
    """Undo a receipted action (close the ticket, release the hold); None when it cannot be undone.

    A hold that was already in place before this action (`already_held`) belongs
    to someone else, so compensating it leaves it alone.
    """
    route = ROUTES[action.tool]
    if route.compensate is None or not receipt.ref:
        return None
    if receipt.data.get("already_held"):
        return ToolReceipt(tool=action.tool, ok=True, ref=receipt.ref, message="left in place: not placed by us",
                           data={"compensation": True, "noop": True})
    resp = client.post(route.compensate(receipt.ref), {"reason": "plan failed; compensating"},
                       COMPENSATION_PREFIX + action.idempotency_key)
    return ToolReceipt(tool=action.tool, ok=True, ref=receipt.ref, message=str(resp.get("status", "")),
                       data={"compensation": True})


class InProcessClient:
    """Calls the sandbox directly (file mode: no infrastructure)."""

    def __init__(self, tools: SandboxTools) -> None:
        self.tools = tools

    def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            _, resp = self.tools.handle(endpoint, body, idempotency_key)
        except (ToolConflict, ToolNotFound, ToolInvalid, KeyError, TypeError) as e:
            raise PermanentToolError(f"{type(e).__name__}: {e}") from None
        except sqlite3.OperationalError as e:  # e.g. database locked by another process
            raise TransientToolError(f"sandbox database: {e}") from None
        resp.pop("idempotent_replay", None)
        return resp


class HttpClient:
    """Calls a tool service over HTTP with a pooled session and a per-call timeout.

    requests never retries a POST by itself here; retries belong to the executor,
    which reuses the same Idempotency-Key.
    """

    def __init__(self, base_url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers.update(headers or {})

    def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            r = self.session.post(self.base_url + endpoint, json=body, timeout=self.timeout_s,
                                  headers={"Idempotency-Key": idempotency_key})
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            raise TransientToolError(f"{type(e).__name__} calling {endpoint}") from None
        if r.status_code >= 500 or r.status_code in RETRYABLE_STATUS:
            raise TransientToolError(f"HTTP {r.status_code} from {endpoint}")
        if r.status_code >= 400:
            raise PermanentToolError(f"HTTP {r.status_code} from {endpoint}: {r.text[:200]}")
        try:
            data = r.json()
        except ValueError:
            raise TransientToolError(f"unreadable answer from {endpoint}") from None
        if not isinstance(data, dict):
            raise TransientToolError(f"unexpected answer from {endpoint}")
        return data

    def close(self) -> None:
        self.session.close()
