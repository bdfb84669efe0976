#!/usr/bin/env bash
# On-demand load and soak (docs/security.md): 2,000 simulated PODs + 20 proxy viewers for
# 10 minutes against PostgreSQL, then a POD agent with 4 cameras for 30 minutes with the camera
# server restarted every 2 minutes. Results land in bench/results/soak-*.json.
# Shorter:  LOAD_SECONDS=150 LOAD_INTERVAL=30 POD_SOAK_SECONDS=300 bash scripts/soak.sh
# One part only:  SOAK_PARTS=load bash scripts/soak.sh   (or SOAK_PARTS=pod)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
parts=" ${SOAK_PARTS:-load pod} "
if [[ $parts == *" load "* ]]; then
  .venv/bin/python -m tests.soak.load \
    --pods "${LOAD_PODS:-2000}" --viewers "${LOAD_VIEWERS:-20}" \
    --duration "${LOAD_SECONDS:-600}" --interval "${LOAD_INTERVAL:-60}" --db postgres \
    --out "bench/results/soak-load-$stamp.json"
fi
if [[ $parts == *" pod "* ]]; then
  .venv/bin/python -m tests.soak.pod_soak \
    --cameras "${POD_SOAK_CAMERAS:-4}" --duration "${POD_SOAK_SECONDS:-1800}" \
    --restart-every "${POD_SOAK_RESTART:-120}" \
    --out "bench/results/soak-pod-$stamp.json"
fi
