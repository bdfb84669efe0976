#!/usr/bin/env bash
# PlateBridge demo: set up, seed a demo company/admin/site/pod into a portal on SQLite
# (demo-data/portal.db), print the login and a ready curl heartbeat, then run the portal.
# HOST (default 127.0.0.1) and PORT (default 8080) choose where the portal listens.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8080}"
mkdir -p demo-data
export PLATEBRIDGE_DATABASE_URL="${PLATEBRIDGE_DATABASE_URL:-sqlite:///$PWD/demo-data/portal.db}"

# Idempotent: re-running resets the demo password and rotates the demo pod key.
.venv/bin/platebridge-portal demo-seed --portal-url "http://$HOST:$PORT"
echo "Starting the portal on http://$HOST:$PORT (Ctrl-C to stop)…"
exec .venv/bin/platebridge-portal serve --host "$HOST" --port "$PORT"
