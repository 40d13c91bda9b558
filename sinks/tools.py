"""Tool adapters: typed action in, receipt out, in-process or over HTTP.

Each tool maps to one endpoint of a ticketing, payments or messaging API and
one compensating endpoint. A real Jira/ServiceNow/PSP is another `ToolClient`
or just another base URL with the same shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import requests

from contracts.models import TOOL_ARGS, Action, ToolReceipt
from sinks.sandbox import SandboxTools, ToolConflict, ToolNotFound


class TransientToolError(Exception):
    """Worth retrying: timeout, connection error, 5xx."""


class PermanentToolError(Exception):
    """Not worth retrying: 4xx, conflicts, invalid arguments."""


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


def call_tool(client: ToolClient, action: Action) -> ToolReceipt:
    """Perform one typed action; raises Transient/PermanentToolError."""
    args = TOOL_ARGS[action.tool].model_validate(action.args).model_dump(mode="json")
    resp = client.post(ROUTES[action.tool].endpoint(args), args, action.idempotency_key)
    return ToolReceipt(tool=action.tool, ok=True, ref=resp["id"], message=resp.get("status", ""),
                       data={k: v for k, v in resp.items() if k not in ("id",)})


def compensate_tool(client: ToolClient, action: Action, receipt: ToolReceipt) -> ToolReceipt | None:
    """Undo a receipted action (close the ticket, release the hold); None when it cannot be undone."""
    route = ROUTES[action.tool]
    if route.compensate is None or not receipt.ref:
        return None
    resp = client.post(route.compensate(receipt.ref), {"reason": "plan failed; compensating"},
                       "comp-" + action.idempotency_key)
    return ToolReceipt(tool=action.tool, ok=True, ref=receipt.ref, message=resp.get("status", ""),
                       data={"compensation": True})


class InProcessClient:
    """Calls the sandbox directly (file mode: no infrastructure)."""

    def __init__(self, tools: SandboxTools) -> None:
        self.tools = tools

    def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            _, resp = self.tools.handle(endpoint, body, idempotency_key)
        except (ToolConflict, ToolNotFound, KeyError, TypeError) as e:
            raise PermanentToolError(f"{type(e).__name__}: {e}") from None
        resp.pop("idempotent_replay", None)
        return resp


class HttpClient:
    """Calls a tool service over HTTP with a pooled session and a per-call timeout."""

    def __init__(self, base_url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers.update(headers or {})

    def post(self, endpoint: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            r = self.session.post(self.base_url + endpoint, json=body, timeout=self.timeout_s,
                                  headers={"Idempotency-Key": idempotency_key})
        except (requests.Timeout, requests.ConnectionError) as e:
            raise TransientToolError(f"{type(e).__name__} calling {endpoint}") from None
        if r.status_code >= 500 or r.status_code == 429:
            raise TransientToolError(f"HTTP {r.status_code} from {endpoint}")
        if r.status_code >= 400:
            raise PermanentToolError(f"HTTP {r.status_code} from {endpoint}: {r.text[:200]}")
        return r.json()
