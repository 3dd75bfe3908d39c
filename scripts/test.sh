#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint, type-check and run every test: unit, process, PID 1, JVM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "test: ruff"
.venv/bin/ruff check lifecycle tests bench
echo "test: mypy"
.venv/bin/mypy
echo "test: lint-imports"
.venv/bin/lint-imports --no-cache  # the three processes' import contracts ([tool.importlinter] in pyproject.toml)
echo "test: pytest"
exec .venv/bin/python -m pytest -q -ra "$@"
