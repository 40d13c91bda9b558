"""Fixtures for the sink tests: the real sandbox HTTP service, a throwaway PostgreSQL, the outboxes.

Every outbox test runs twice, against SQLite and against PostgreSQL. PostgreSQL
is Debian's (installed with apt-get when missing), run as a non-root user in a
temporary directory on a free port, and stopped by pid when the session ends.
Without it the postgres variants skip, except in CI (CI=true) where they fail.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from sinks.outbox import SqlOutbox, open_outbox
from tests.procs import start_sandbox
from tests.sinks.helpers import EXECUTORS, Sandbox, wait_until

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def close_executors() -> Iterator[None]:
    """Executors made by `make_executor` hold an HTTP session on their own event loop: close both."""
    yield
    while EXECUTORS:
        EXECUTORS.pop().close()


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    """A fresh sandbox service (`python -m sinks.sandbox`) in a subprocess, on a free port; indirect
    parametrization passes it command-line options (latency, rate limits)."""
    db = tmp_path / "sandbox_tools.sqlite"
    proc, url = start_sandbox(tmp_path, db, *getattr(request, "param", ()))
    try:
        yield Sandbox(url, str(db))
    finally:
        proc.stop()


# -- PostgreSQL ---------------------------------------------------------------------------------
def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install_postgres() -> str:
    if os.geteuid() != 0:
        return "PostgreSQL is not installed and we are not root to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return f"{' '.join(cmd)} failed: {proc.stderr[-500:]}"
    return ""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL outbox tests need PostgreSQL in CI: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[dict[str, Any]]:
    """A throwaway PostgreSQL server: {"host", "port"}; user postgres, trust auth, no fsync."""
    bindir = _pg_bindir()
    if bindir is None:
        problem = _install_postgres()
        bindir = _pg_bindir()
        if bindir is None:
            _unavailable(problem or "no initdb after installing postgresql")
    assert bindir is not None
    user = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root
    base = Path(tempfile.mkdtemp(prefix="sink-pg-"))
    data = base / "data"
    if user:
        shutil.chown(base, user, user)
    init = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                           "-E", "UTF8", "--no-locale", "--no-sync"], user=user, capture_output=True, text=True)
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        _unavailable(f"initdb failed: {init.stderr[-500:]}")
    port = free_port()
    log = open(base / "postgres.log", "w")
    proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(base),
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                            user=user, stdout=log, stderr=subprocess.STDOUT)
    try:
        import psycopg

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"postgres exited: {(base / 'postgres.log').read_text()[-2000:]}")
            try:
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                return False

        wait_until(ready, "postgres to accept connections", timeout_s=60)
        yield {"host": "127.0.0.1", "port": port}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # fast shutdown
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def new_database(server: dict[str, Any]) -> str:
    """A DSN whose tables land in a fresh, empty schema of the throwaway server (cheaper than a database)."""
    import psycopg

    name = "sink_" + uuid.uuid4().hex[:12]
    base = f"postgresql://postgres@{server['host']}:{server['port']}/postgres"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{base}?options=-csearch_path%3D{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def outbox_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What `open_outbox` is given: a state directory (SQLite) or a postgresql:// DSN."""
    if request.param == "sqlite":
        return str(tmp_path / "state")
    return new_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def outbox(outbox_target: str) -> Iterator[SqlOutbox]:
    box = open_outbox(outbox_target)
    try:
        yield box
    finally:
        box.close()
