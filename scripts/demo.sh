#!/usr/bin/env bash
# The main job: set up, then run a real Spark 4.3 lifecycle on this machine (pyspark from PyPI, no
# Kubernetes): master, driver with a job, executor through lifecycle, decommission, drain, exit.
# `--stub` runs the quick version with a stand-in executor JVM instead (no pyspark download).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "--stub" ]; then
  shift
  exec .venv/bin/python -m examples.demo "$@"
fi
exec .venv/bin/python -m examples.spark_demo "$@"
