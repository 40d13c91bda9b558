#!/usr/bin/env bash
# Creates .venv at the repository root and installs the project with pinned versions.
# Needs Python 3.11 and a Java 17 runtime (PyFlink runs the JVM); installs Java from Debian if absent.
# With --infra it also installs what the real-infrastructure tests need (Maven, curl, PostgreSQL)
# fetches the pinned Kafka, Connect, Debezium and Flink connector jars (infra/fetch.sh), and builds
# the JVM prefilter of Kafka mode (jvm/, a Flink SQL function) when its jar is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_UPDATED=0
need() {  # need COMMAND DEBIAN-PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ $EUID -eq 0 ]] || { echo "setup: $1 missing; install: ${*:2}" >&2; exit 1; }
  [[ $APT_UPDATED -eq 1 ]] || { apt-get update -qq; APT_UPDATED=1; }
  echo "setup: installing ${*:2} (Debian)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${@:2}" >/dev/null
}

need java openjdk-17-jre-headless
if [[ "${1:-}" == "--infra" ]]; then
  need mvn maven
  need javac openjdk-17-jdk-headless
  need curl curl
  need psql postgresql-client
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need postgresql-server-absent postgresql
fi
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version}"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[test]" > .venv/pip-install.log 2>&1 || {
  echo "setup: pip install failed:" >&2; tail -30 .venv/pip-install.log >&2; exit 1; }
if [[ "${1:-}" == "--infra" ]]; then
  bash infra/fetch.sh >&2
  jar=jvm/target/streaming-agent-prefilter.jar
  if [[ ! -f $jar || -n "$(find jvm/pom.xml jvm/src -newer "$jar" -print -quit)" ]]; then
    echo "setup: building $jar" >&2
    mvn -q -f jvm/pom.xml package >&2
  fi
fi
echo "setup: .venv ready ($(.venv/bin/python -c 'import pyflink.version as v; print("apache-flink", v.__version__)'))" >&2
