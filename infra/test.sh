#!/usr/bin/env bash
# Quickstart, command 2: the test suite against real services. The fixtures use KAFKA_BOOTSTRAP_SERVERS
# and CLICKHOUSE_DSN when set, testcontainers where a Docker engine exists, and otherwise start a local
# broker from the Maven Central jars; ClickHouse is the embedded chDB engine. Extra arguments go to pytest.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/infra/setup.sh"
cd "$REPO"
set +e
"${AIWATCH_VENV:-$REPO/.venv}/bin/python" -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "test.sh: pytest collected no tests" >&2
  exit 1   # no tests is not a pass
fi
exit "$code"
