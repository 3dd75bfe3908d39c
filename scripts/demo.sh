#!/usr/bin/env bash
# The main job: set up, then show an executor's launch plan for the Kubernetes scheduler's environment
# (examples/executor.env), then run a stub executor through the whole lifecycle with a decommission.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m examples.demo "$@"
