#!/usr/bin/env bash
# PlateBridge demo: set up (scripts/setup.sh), then run the whole system on this machine —
# two RTSP test cameras, the portal on SQLite (demo-data/), a POD agent registered through its
# real heartbeat — and print the URL and the login. Ctrl-C stops everything.
# Environment: HOST (127.0.0.1), PORTAL_PORT (8080), POD_PORT (8000), CAMERA_PORTS (8554,8555),
# DEMO_DIR (demo-data). A second run reuses demo-data/ (new admin password and POD key).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# exec: the demo process itself receives Ctrl-C and stops its children in order.
exec .venv/bin/python -m platebridge.demo
