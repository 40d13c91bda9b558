"""Background processes for integration tests: started in their own process group, stopped by pid."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]


class Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "w")
        self.p = subprocess.Popen(args, cwd=REPO, stdout=self._fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    @classmethod
    def python(cls, module: str, *args: str, log: Path) -> "Proc":
        return cls([sys.executable, "-m", module, *args], log)

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group (the job's JVM and Python workers are its children)."""
        if self.alive():
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(timeout=30)
        self._fh.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, procs: list[Proc] = (),
             every_s: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        for p in procs:
            assert p.alive(), f"{p.log.name} exited while waiting for {what}:\n{p.tail()}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def start_sandbox(tmp: Path, db: Path | None = None, *options: str) -> tuple[Proc, str]:
    """The sandbox tool service over real HTTP on a free port (`options`: latency, rate limits, ...);
    returns the process and its URL."""
    proc = Proc.python("sinks.sandbox", "--port", "0", "--db", str(db or tmp / "tools.sqlite"), *options,
                       log=tmp / "sandbox.log")

    def url() -> str | None:
        text = proc.log.read_text() if proc.log.exists() else ""
        for line in text.splitlines():
            if line.startswith("{") and "sandbox" in line:
                return json.loads(line)["sandbox"]
        return None

    return proc, wait_for(url, 30, "the sandbox to listen", [proc], every_s=0.05)
