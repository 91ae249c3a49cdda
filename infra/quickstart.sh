#!/usr/bin/env bash
# Quickstart, command 1: install, start a local Kafka broker and the worker on embedded ClickHouse,
# send a stream of demo agent sessions, and show what was stored. Extra arguments go to `aiwatch demo`
# (e.g. --keep-running to leave broker and worker up for `aiwatch query`).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/infra/setup.sh"
cd "$REPO"
exec "${AIWATCH_VENV:-$REPO/.venv}/bin/aiwatch" demo "$@"
