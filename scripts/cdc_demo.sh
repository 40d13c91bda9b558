#!/usr/bin/env bash
# Sets up and runs the CDC demo: PostgreSQL -> Debezium -> Kafka -> job -> sink -> tools (HTTP).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python infra/cdc_demo.py
