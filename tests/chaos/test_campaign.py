"""The CI chaos campaign: one run with one fault of every kind must find no duplicate and no loss; the same
harness against the test-only broken sink (idempotency off) must report duplicates."""
import json
import re

import pytest

from chaos.campaign import main, parse_args, run_campaign
from chaos.faults import KINDS, SINK_KILL
from chaos.report import markdown, totals
from tests.infra import local

pytestmark = [pytest.mark.chaos, pytest.mark.kafka, pytest.mark.flink]


@pytest.fixture(scope="module", autouse=True)
def infra(infra_prerequisites):
    yield
    local.stop_kafka()


def test_short_campaign_one_fault_of_each_kind_no_duplicates_no_losses(tmp_path):
    out = tmp_path / "report"
    code = main(["--runs", "1", "--seed", "11", "--faults-per-run", str(len(KINDS)), "--fault-spacing-s", "12",
                 "--workdir", str(tmp_path / "work"), "--out", str(out)])
    md = out.with_suffix(".md").read_text()
    assert code == 0, md
    report = json.loads(out.with_suffix(".json").read_text())
    t = report["totals"]
    assert {k: v["injected"] for k, v in t["by_kind"].items()} == {k: 1 for k in KINDS}
    assert t["faults_triggered"] == len(KINDS), md
    assert t["duplicates"] == 0 and t["losses"] == 0 and t["unexpected"] == 0, md
    assert t["expected_actions"] > 50 and t["redelivered_inputs"] > 0, md
    run = report["runs"][0]
    assert run["verdict"]["dlq_records"] > 0, "the load must include invalid records that the DLQ accounts for"
    assert run["process_starts"]["job"] >= 2 and run["process_starts"]["sink"] >= 2, run["process_starts"]


def test_the_harness_reports_duplicates_against_a_sink_without_idempotency(tmp_path):
    args = parse_args(["--runs", "1", "--seed", "5", "--faults-per-run", "2", "--kinds", SINK_KILL,
                       "--fault-spacing-s", "12", "--broken-sink", "--workdir", str(tmp_path / "work")])
    runs = run_campaign(args)
    t = totals(runs)
    md = markdown(runs, "broken", "test")
    assert t["faults_triggered"] >= 1, md
    assert t["duplicates"] > 0, md
    assert re.search(r"executed [2-9][0-9]* times at the tool", " ".join(runs[0]["examples"]["duplicates"])), md
