#!/usr/bin/env bash
# `make run`: migrate, make sure a first user exists, then run a worker and the API.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

"$BIN/attune" db upgrade --create
echo
"$BIN/attune" user bootstrap
echo

mkdir -p .attune
"$BIN/attune" worker --concurrency "${ATTUNE_WORKER_CONCURRENCY:-2}" >.attune/worker.log 2>&1 &
worker_pid=$!
trap 'kill "$worker_pid" 2>/dev/null || true; wait "$worker_pid" 2>/dev/null || true' EXIT INT TERM
echo "worker started (pid $worker_pid, log .attune/worker.log)"
echo "API on http://localhost:${ATTUNE__API__PORT:-8080}  (docs: /docs; stop with Ctrl-C)"
"$BIN/attune" api
