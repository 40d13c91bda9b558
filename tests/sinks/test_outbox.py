"""The outbox contract, identical for SQLite and PostgreSQL: claim once, guarded transitions, one receipt."""
from __future__ import annotations

import pytest

from contracts.models import ToolReceipt
from sinks.outbox import SqliteOutbox, open_outbox
from tests.sinks.helpers import notice, ticket

RECEIPT = ToolReceipt(tool="CreateTicket", ok=True, ref="TKT-1", message="open", data={"status": "open"})


def test_claim_is_once_per_tool_and_key(outbox):
    row, created = outbox.claim(ticket("k1"), "a/0/1")
    again, created_again = outbox.claim(ticket("k1"), "a/0/2")
    other, _ = outbox.claim(notice("k1"), "a/0/1")
    assert created and not created_again
    assert row.state == again.state == "pending" and again.envelope_ref == "a/0/1"
    assert [(r.tool, r.idempotency_key) for r in outbox.rows()] == [("CreateTicket", "k1"), ("SendNotice", "k1")]
    assert other.args == {"account_id": "acct-1", "template": "vip-order-received"}


def test_a_receipt_is_written_once_and_never_replaced(outbox):
    outbox.claim(ticket("k1"), "a/0/1")
    assert outbox.update("CreateTicket", "k1", "sent", attempt=True)
    assert outbox.update("CreateTicket", "k1", "receipted", receipt=RECEIPT)
    other = RECEIPT.model_copy(update={"ref": "TKT-2"})
    assert not outbox.update("CreateTicket", "k1", "receipted", receipt=other)
    assert not outbox.update("CreateTicket", "k1", "sent", attempt=True)
    row = outbox.get("CreateTicket", "k1")
    assert row.state == "receipted" and row.receipt == RECEIPT and row.attempts == 1


def test_transitions_are_guarded(outbox):
    outbox.claim(notice("k1"), "a/0/1")
    assert not outbox.update("SendNotice", "k1", "compensated", compensation=RECEIPT)  # nothing to undo yet
    assert outbox.update("SendNotice", "k1", "degraded", error="backlog")
    assert not outbox.update("SendNotice", "k1", "sent")  # a degraded notice is settled
    with pytest.raises(ValueError):
        outbox.update("SendNotice", "k1", "pending")
    outbox.note("SendNotice", "k1", "operator looked")
    assert outbox.get("SendNotice", "k1").error == "operator looked"
    assert outbox.get("CreateTicket", "nope") is None


def test_state_survives_reopening(outbox_target):
    box = open_outbox(outbox_target)
    box.claim(ticket("k1"), "a/0/1")
    box.update("CreateTicket", "k1", "receipted", receipt=RECEIPT)
    box.close()
    box = open_outbox(outbox_target)
    assert box.get("CreateTicket", "k1").receipt == RECEIPT
    box.close()


def test_open_outbox_chooses_the_backend(tmp_path):
    assert isinstance(open_outbox(tmp_path / "state"), SqliteOutbox)
    assert (tmp_path / "state" / "outbox.sqlite").exists()
    assert isinstance(open_outbox(tmp_path / "x" / "box.sqlite"), SqliteOutbox)
    assert (tmp_path / "x" / "box.sqlite").exists()


def test_open_outbox_gives_postgres_for_a_dsn(pg_server):
    from sinks.outbox_pg import PostgresOutbox
    from tests.sinks.conftest import new_database

    box = open_outbox(new_database(pg_server))
    assert isinstance(box, PostgresOutbox)
    box.close()
