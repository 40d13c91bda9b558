"""The consumer loop's ordering rules, with in-memory Kafka: flush before commit, no commit on failure."""
from __future__ import annotations

import pytest

from sinks.sink_loop import SinkLoop
from tests.sinks.fakes import FakeOutput, FakeSource, action_value, handler
from tests.sinks.helpers import make_executor, ticket


class FailingOutput(FakeOutput):
    def flush(self) -> None:
        raise RuntimeError("broker unavailable")


def test_outputs_that_fail_to_flush_leave_the_offsets_uncommitted(outbox, sandbox):
    out = FailingOutput()
    source = FakeSource.of([action_value("k1", [ticket("k1")], 0)], out)
    loop = SinkLoop(source, out, handler(make_executor(outbox, sandbox)), 10)
    with pytest.raises(RuntimeError):
        loop.run_once()
    assert source.committed == {}
    # the redelivery after a restart finds the receipt in the outbox and re-sends the outputs
    out2 = FakeOutput()
    again = FakeSource.of([action_value("k1", [ticket("k1")], 0)], out2)
    SinkLoop(again, out2, handler(make_executor(outbox, sandbox)), 10).run_once()
    assert again.committed == {("agent.actions", 0): 1}
    assert [r["tool"] for r in out2.on("agent.receipts")] == ["CreateTicket"]
    assert len(sandbox.ledger()) == 1


def test_run_stops_when_idle_by_its_clock():
    ticks = iter(range(100))
    out = FakeOutput()
    loop = SinkLoop(FakeSource([], out), out, handler=None, max_in_flight=1,  # type: ignore[arg-type]
                    clock=lambda: float(next(ticks)))
    stats = loop.run(exit_when_idle_s=3)
    assert stats.records == 0 and next(ticks) < 10
