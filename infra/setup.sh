#!/usr/bin/env bash
# Everything aiwatch needs on a fresh machine, idempotent: a virtualenv in .venv with the package
# and its test extras, and the Kafka jars from Maven Central. Re-runs skip what is already done.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python3}"
VENV="${AIWATCH_VENV:-$REPO/.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.aiwatch-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing aiwatch and its dependencies into $VENV (log: .aiwatch/setup.log)" >&2
  mkdir -p .aiwatch
  if ! { "$VENV/bin/python" -m pip install -q --upgrade pip \
         && "$VENV/bin/python" -m pip install -q -e ".[test,eval]"; } >.aiwatch/setup.log 2>&1; then
    tail -n 40 .aiwatch/setup.log >&2
    echo "setup: pip install failed (full log: .aiwatch/setup.log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
bash "$REPO/infra/kafka/fetch.sh"
echo "setup: ready ($VENV)" >&2
