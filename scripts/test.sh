#!/usr/bin/env bash
# Sets up and runs the whole test suite. Infrastructure (Kafka, PostgreSQL, Connect, Flink cluster)
# is fetched and started by the test fixtures themselves and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --infra
exec .venv/bin/python -m pytest "$@"
