"""Command-line mistakes: one line on stderr, exit code 2, before any JVM starts."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.command_line import parse_args
from tests.jobrun import REPO, SCENARIO


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.command_line", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def paths(tmp_path):
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    return {"file": not_a_dir, "dir": tmp_path / "events", "tmp": tmp_path}


CASES = {
    "missing events": (lambda p: ["--events", str(p["tmp"] / "nope.jsonl")], "no such file"),
    "events is a directory": (lambda p: ["--events", str(p["tmp"])], "is a directory; pass --events-directory"),
    "out is a file": (lambda p: ["--events", str(SCENARIO), "--out", str(p["file"])], "--out"),
    "state is a file": (lambda p: ["--events", str(SCENARIO), "--out", str(p["tmp"] / "o"), "--state",
                                   str(p["file"])], "--state"),
    "threshold": (lambda p: ["--events", str(SCENARIO), "--threshold", "a lot"], "not a decimal"),
    "negative threshold": (lambda p: ["--events", str(SCENARIO), "--threshold", "-1"], ">= 0"),
    "parallelism": (lambda p: ["--events", str(SCENARIO), "--parallelism", "0"], "must be >= 1"),
    "policy": (lambda p: ["--events", str(SCENARIO), "--policy", "no.such.module:Policy"], "cannot import"),
    "policy shape": (lambda p: ["--events", str(SCENARIO), "--policy", "nocolon"], "module:Class"),
    "contract": (lambda p: ["--events", str(SCENARIO), "--contract", str(p["tmp"] / "c.yaml")], "--contract"),
    "invalid contract": (lambda p: ["--events", str(SCENARIO), "--contract", str(p["file"])], "not a valid contract"),
    "both modes": (lambda p: ["--events", str(SCENARIO), "--bootstrap-servers", "x:1"], "exactly one"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_mistake_is_one_line_and_exit_2(name, paths):
    args, expected = CASES[name]
    t0 = time.monotonic()
    proc = run(*args(paths), "--out", str(paths["tmp"] / "out")) if "--out" not in args(paths) else run(*args(paths))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agent-job: error: "), proc.stderr
    assert expected in lines[0]
    assert time.monotonic() - t0 < 30  # no JVM


def test_an_out_directory_that_cannot_be_created():
    proc = run("--events", str(SCENARIO), "--out", "/proc/self/agent-out")  # not even root creates one there
    assert proc.returncode == 2 and "--out /proc/self/agent-out: cannot create it" in proc.stderr


def test_a_directory_is_read_when_asked(paths):
    d = paths["dir"]
    d.mkdir()
    (d / "a.jsonl").write_text("{}\n")
    config = parse_args(["--events", str(d), "--events-directory", "--out", str(paths["tmp"] / "o")])
    assert config.events_directory and Path(config.events) == d.resolve()


def test_defaults_thread_mode_in_file_mode_and_process_mode_in_kafka_mode(paths):
    assert parse_args(["--events", str(SCENARIO), "--out", str(paths["tmp"] / "o")]).python_execution_mode == "thread"
    assert parse_args(["--bootstrap-servers", "x:1"]).python_execution_mode == "process"
