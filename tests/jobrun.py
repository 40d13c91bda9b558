"""Runs the real job (`python -m jobs.agent_job`) on a MiniCluster in a subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from jobs.summary import read_outputs

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "examples" / "orders_scenario.jsonl"


def run_job(events: Path, out: Path, *args: str, state: Path | None = None,
            timeout: int = 600) -> dict[str, list[dict[str, Any]]]:
    cmd = [sys.executable, "-m", "jobs.agent_job", "--events", str(events), "--out", str(out), *args]
    if state is not None:
        cmd += ["--state", str(state)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    log = out.parent / f"{out.name}.log"
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    assert proc.returncode == 0, f"job failed ({proc.returncode}), see {log}:\n{proc.stderr[-3000:]}"
    return read_outputs(out)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def contract_copy(tmp: Path, **governance: Any) -> Path:
    """The seed contract with governance overrides (e.g. max_actions_per_minute=3), schemas beside it."""
    import shutil

    import yaml

    from contracts.contract import CONTRACTS_DIR

    d = tmp / "contract"
    shutil.copytree(CONTRACTS_DIR / "schemas", d / "schemas")
    c = yaml.safe_load((CONTRACTS_DIR / "streaming_agent_v1.yaml").read_text())
    c["governance"].update(governance)
    (d / "c.yaml").write_text(yaml.safe_dump(c))
    return d / "c.yaml"
