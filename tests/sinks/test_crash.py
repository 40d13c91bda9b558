"""Crash recovery: a sink process SIGKILLed between a tool's answer and the receipt write, then restarted.

The restarted sink re-sends the `sent` row with the same idempotency key, the
tool replays its original answer, and every (tool, key) appears once in the
ledger and once, receipted, in the outbox. Runs against SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from sinks.outbox import open_outbox
from tests.sinks.conftest import REPO
from tests.sinks.helpers import effects, hold, notice, ticket, wait_until

PLAN = [ticket("k1", "o5"), hold("k1", "o5"), notice("k1")]


def _driver(sandbox, outbox_target: str, plan_file: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.sinks.driver", "--tools-url", sandbox.url,
                             "--outbox", outbox_target, "--plan", str(plan_file), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)


def _plan_file(tmp_path: Path) -> Path:
    p = tmp_path / "plan.json"
    p.write_text(json.dumps([a.model_dump(mode="json") for a in PLAN]))
    return p


def _finish(sandbox, outbox_target: str, plan_file: Path) -> list[dict]:
    proc = _driver(sandbox, outbox_target, plan_file)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    lines = out.splitlines()
    assert lines[0] == "STARTED" and lines[-1] == "DONE", out
    return [json.loads(x) for x in lines[1:-1]]


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _assert_exactly_once(sandbox, outbox_target: str) -> None:
    ledger = sandbox.settled()
    assert sorted(effects(ledger)) == sorted([("ticket.create", "k1"), ("hold.place", "k1"), ("notice.send", "k1")])
    box = open_outbox(outbox_target)
    rows = box.rows()
    box.close()
    assert [(r.tool, r.state) for r in rows] == [(a.tool, "receipted") for a in PLAN]
    assert sorted(r.receipt.ref for r in rows) == sorted(e["ref"] for e in ledger)


def test_sigkill_after_the_call_before_the_receipt(sandbox, outbox_target, tmp_path):
    plan = _plan_file(tmp_path)
    proc = _driver(sandbox, outbox_target, plan, "--pause-after-call", "2")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "STARTED"
    assert proc.stdout.readline().startswith("PAUSED PlacePaymentHold HOLD-o5")
    # the hold happened at the tool, but the outbox still says `sent`
    box = open_outbox(outbox_target)
    assert [r.state for r in box.rows()] == ["receipted", "sent"]
    box.close()
    assert effects(sandbox.ledger()) == [("ticket.create", "k1"), ("hold.place", "k1")]
    _kill(proc)

    outcomes = _finish(sandbox, outbox_target, plan)
    assert [(o["tool"], o["status"]) for o in outcomes] == \
        [("CreateTicket", "replayed"), ("PlacePaymentHold", "executed"), ("SendNotice", "executed")]
    assert outcomes[1]["ref"] == "HOLD-o5"
    assert sandbox.requests_to("/payments/holds") == 2  # re-sent once, replayed by the tool
    _assert_exactly_once(sandbox, outbox_target)

    again = _finish(sandbox, outbox_target, plan)  # and a third run changes nothing
    assert [o["status"] for o in again] == ["replayed"] * 3 and not any(o["new_receipt"] for o in again)
    _assert_exactly_once(sandbox, outbox_target)


def test_sigkill_after_a_lost_response(sandbox, outbox_target, tmp_path):
    plan = _plan_file(tmp_path)
    sandbox.faults(drop_after_next=1)  # the ticket is created, its answer never arrives
    proc = _driver(sandbox, outbox_target, plan, "--base-delay-s", "3600")  # ...and the sink waits to retry
    wait_until(lambda: effects(sandbox.ledger()) == [("ticket.create", "k1")], "the ticket at the tool")
    box = open_outbox(outbox_target)
    wait_until(lambda: [r.state for r in box.rows()] == ["sent"], "the outbox row in `sent`")
    box.close()
    _kill(proc)

    outcomes = _finish(sandbox, outbox_target, plan)
    assert [o["status"] for o in outcomes] == ["executed"] * 3
    _assert_exactly_once(sandbox, outbox_target)
