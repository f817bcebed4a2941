#!/usr/bin/env bash
# `make run`: `attune dev` — migrate, make sure a first user exists, run a worker and the API.
# With no database or broker configured it runs embedded (SQLite + filesystem broker in
# ./.attune); set ATTUNE__DATABASE__URL / ATTUNE__CELERY__BROKER_URL (or config.yaml)
# to run on Postgres and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

args=(--concurrency "${ATTUNE_WORKER_CONCURRENCY:-2}")
if [[ -z "${ATTUNE__PACKS_BASE_DIR:-}" && -z "${ATTUNE_CONFIG:-}" && ! -f config.yaml ]]; then
  # nothing says where packs are: serve the example pack shipped with the repository
  args+=(--packs-dir examples/packs)
fi
exec "$BIN/attune" dev "${args[@]}"
