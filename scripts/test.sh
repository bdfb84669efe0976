#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest (SQLite and PostgreSQL, real ffmpeg,
# a real RTSP camera, real HTTP on loopback). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check src tests tools bench
.venv/bin/ruff format --check src tests tools bench
echo "== mypy --strict src"
.venv/bin/mypy src
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
