"""`python -m bench.stages` on a small workload, so the stage benchmark cannot rot: every stage is
measured, the keys latest.json documents are there, and the oracle path is the slower one."""
from __future__ import annotations

import json

from bench import stages


def test_every_stage_is_measured_and_merged_into_the_results(tmp_path):
    out = tmp_path / "latest.json"
    out.write_text(json.dumps({"events_per_s": 1.0}))
    s = stages.main(["--events", "400", "--rounds", "1", "--reference-events", "100", "--out", str(out)])
    for key in ("gate_us", "gate_reference_us", "gate_fastjsonschema_only_us", "routing_us", "breach_rule_us",
                "agent_stage_us", "serialization_us"):
        assert s[key] > 0, key
    assert s["gate_speedup"] == round(s["gate_reference_us"] / s["gate_us"], 1) > 1
    assert all(n > 0 for n in s["per_stage_items"].values())
    written = json.loads(out.read_text())
    assert written["stages"] == s and written["events_per_s"] == 1.0  # other benchmarks' keys are kept
