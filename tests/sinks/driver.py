"""A tiny sink process for the crash tests: executes one plan through ActionExecutor + HttpClient.

`--pause-after-call N` stops (forever) right after the N-th tool call answered
and before its receipt is written, printing PAUSED so the test can SIGKILL it
there. `--base-delay-s` lets a test park it in a retry backoff instead.
Prints one JSON line per outcome, then DONE.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from contracts.models import Action, ToolReceipt
from sinks.executor import ActionExecutor
from sinks.outbox import open_outbox
from sinks.tools import HttpClient
from tests.sinks.helpers import FixedDelay


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools-url", required=True)
    ap.add_argument("--outbox", required=True)
    ap.add_argument("--plan", required=True, help="JSON file: [action, ...]")
    ap.add_argument("--envelope-ref", default="cdc.public.orders/0/42")
    ap.add_argument("--pause-after-call", type=int, default=0)
    ap.add_argument("--base-delay-s", type=float, default=0.01)
    a = ap.parse_args()
    calls = 0

    def after_call(action: Action, receipt: ToolReceipt) -> None:
        nonlocal calls
        calls += 1
        if calls == a.pause_after_call:
            print("PAUSED", action.tool, receipt.ref, flush=True)
            while True:
                time.sleep(60)

    actions = [Action.model_validate(x) for x in json.load(open(a.plan))]
    executor = ActionExecutor(open_outbox(a.outbox), HttpClient(a.tools_url, timeout_s=5),
                              FixedDelay(max_attempts=5, base_delay_s=a.base_delay_s),
                              after_call=after_call)
    print("STARTED", flush=True)
    for o in executor.execute_plan(actions, a.envelope_ref).outcomes:
        print(json.dumps({"tool": o.action.tool, "status": o.status, "ref": o.receipt.ref if o.receipt else None,
                          "new_receipt": o.new_receipt}), flush=True)
    print("DONE", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
