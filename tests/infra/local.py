"""Start and stop the local infrastructure (infra/*.sh) from Python tests.

Meant for pytest session fixtures, e.g.::

    @pytest.fixture(scope="session")
    def kafka():
        info = local.start_kafka()
        yield info                      # {"bootstrap": "127.0.0.1:PORT"}
        local.stop_kafka()

Every function calls one of the shell scripts in infra/ and raises
:class:`InfraError` (with the tail of the script's output, which includes the
tail of the component's log) when it fails. Nothing here kills processes by
name: the scripts stop only what they started, by pid file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
INFRA_HOME = Path(os.environ.get("INFRA_HOME", ROOT / ".infra"))
RUN = INFRA_HOME / "run"

FETCH_TIMEOUT_S = 900
START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 120
TAIL_LINES = 60


class InfraError(RuntimeError):
    """An infra/*.sh script failed; the message carries its output tail."""


def _tail(text: str, n: int = TAIL_LINES) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-n:])


def _run(script: str, *args: str, timeout: float = START_TIMEOUT_S, ok_codes=(0,)) -> str:
    cmd = ["bash", str(INFRA / script), *args]
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise InfraError(
            f"{' '.join(cmd[1:])} timed out after {timeout}s\n{_tail(out + err)}"
        ) from None
    if proc.returncode not in ok_codes:
        raise InfraError(
            f"{' '.join(cmd[1:])} failed with exit code {proc.returncode}\n"
            f"--- stdout ---\n{_tail(proc.stdout)}\n--- stderr ---\n{_tail(proc.stderr)}"
        )
    return proc.stdout


def read_env(name: str) -> dict[str, str]:
    """KEY=VALUE pairs of .infra/run/<name>.env (kafka, pg, connect)."""
    path = RUN / f"{name}.env"
    if not path.exists():
        raise InfraError(f"{path} missing: is {name} started?")
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


def missing_prerequisites() -> str | None:
    """Why the real infrastructure cannot run here, or None (for pytest.skip)."""
    for tool in ("java", "mvn", "curl", "psql"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


# --- jars -----------------------------------------------------------------

def ensure_fetched(*sets: str) -> dict[str, Path]:
    """Fetch jar sets (kafka, connect, debezium, flink; none = all) once.

    Returns {set: directory of its jars}.
    """
    out = _run("fetch.sh", *sets, timeout=FETCH_TIMEOUT_S)
    dirs = {}
    for line in out.splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2:
            dirs[parts[0]] = Path(parts[1])
    return dirs


def flink_kafka_connector_jar() -> Path:
    """The flink-sql-connector-kafka fat jar (for add_jars / --jarfile)."""
    d = ensure_fetched("flink")["flink"]
    jars = sorted(d.glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise InfraError(f"no flink-sql-connector-kafka jar in {d}")
    return jars[0]


# --- Kafka ----------------------------------------------------------------

def start_kafka(create_topics: bool = True, fresh: bool = False) -> dict:
    """Start (or reuse) the single-node broker; returns {"bootstrap": "127.0.0.1:PORT"}.

    fresh=True first stops our broker (if running) and deletes its data, so
    the topics start empty.
    """
    if fresh:
        _run("kafka.sh", "clean", timeout=STOP_TIMEOUT_S)
    _run("kafka.sh", "start")
    if create_topics:
        _run("kafka.sh", "create-topics")
    return {"bootstrap": read_env("kafka")["BOOTSTRAP"]}


def stop_kafka() -> None:
    _run("kafka.sh", "stop", timeout=STOP_TIMEOUT_S)


# --- PostgreSQL -----------------------------------------------------------

def start_postgres() -> dict:
    """Start (or reuse) the local cluster with database shop and table orders.

    Returns dsn, host, port, user, password, database, dbz_user, dbz_password.
    """
    _run("postgres.sh", "start")
    env = read_env("pg")
    return {
        "dsn": env["PG_DSN"],
        "host": env["PGHOST"],
        "port": int(env["PGPORT"]),
        "user": env["PGUSER"],
        "password": env["PGPASSWORD"],
        "database": env["PGDATABASE"],
        "dbz_user": env["DBZ_USER"],
        "dbz_password": env["DBZ_PASSWORD"],
    }


def stop_postgres() -> None:
    _run("postgres.sh", "stop", timeout=STOP_TIMEOUT_S)


def psql(sql: str) -> str:
    """Run SQL in database shop (psql, ON_ERROR_STOP); returns unaligned tuples."""
    env = read_env("pg")
    proc = subprocess.run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
         "-h", env["PGHOST"], "-p", env["PGPORT"], "-U", env["PGUSER"], "-d", env["PGDATABASE"]],
        input=sql, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PGPASSWORD": env["PGPASSWORD"]},
    )
    if proc.returncode != 0:
        raise InfraError(f"psql failed ({proc.returncode}):\n{_tail(proc.stderr)}")
    return proc.stdout


# --- Kafka Connect + Debezium ---------------------------------------------

def start_connect() -> dict:
    """Start Connect with the Debezium orders connector (needs postgres and kafka).

    Returns {"url": "http://127.0.0.1:PORT", "connector": "orders-cdc",
    "topic": "cdc.public.orders"} once the connector task is RUNNING.
    """
    _run("connect.sh", "start")
    return {
        "url": read_env("connect")["CONNECT_URL"],
        "connector": "orders-cdc",
        "topic": "cdc.public.orders",
    }


def stop_connect() -> None:
    _run("connect.sh", "stop", timeout=STOP_TIMEOUT_S)


def reset_connect() -> None:
    """Stop Connect, delete its offsets and drop the replication slot.

    The next start_connect() snapshots the table again (op "r").
    """
    _run("connect.sh", "reset", timeout=STOP_TIMEOUT_S)


# --- everything -----------------------------------------------------------

def up() -> dict:
    """postgres, kafka (+ topics), connect, in order; returns their infos."""
    ensure_fetched("kafka", "connect", "debezium")
    pg = start_postgres()
    kafka = start_kafka()
    connect = start_connect()
    return {"postgres": pg, "kafka": kafka, "connect": connect}


def down() -> None:
    """Stop connect, kafka, postgres (each only if this machinery started it)."""
    errors = []
    for stop in (stop_connect, stop_kafka, stop_postgres):
        try:
            stop()
        except InfraError as e:  # keep stopping the others
            errors.append(str(e))
    if errors:
        raise InfraError("\n\n".join(errors))
