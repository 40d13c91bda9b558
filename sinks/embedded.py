"""The sink as file mode embeds it: SQLite outbox and in-process sandbox tools under --state."""
from __future__ import annotations

from pathlib import Path

from sinks.executor import ActionExecutor
from sinks.outbox import open_outbox
from sinks.sandbox import SandboxTools
from sinks.tools import InProcessClient


def embedded_executor(state_dir: str) -> ActionExecutor:
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    return ActionExecutor(open_outbox(state), InProcessClient(SandboxTools(state / "sandbox_tools.sqlite")))
