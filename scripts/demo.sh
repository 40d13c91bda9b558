#!/usr/bin/env bash
# Sets up and runs the demo: the main job in file mode on the shipped scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
rm -rf out/demo
.venv/bin/python -m jobs.agent_job --events examples/orders_scenario.jsonl --out out/demo "$@" 2> out-demo.log || {
  echo "demo failed; see out-demo.log" >&2; tail -40 out-demo.log >&2; exit 1; }
