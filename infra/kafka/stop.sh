#!/usr/bin/env bash
# Stop the broker started by start.sh for AIWATCH_KAFKA_DIR: SIGTERM (clean controlled
# shutdown), up to 30 s, then SIGKILL. Exit 0 if nothing is running.
#   --wipe   also delete the data dir (topics, offsets, cluster id) for a fresh start.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
RUN_DIR="${AIWATCH_KAFKA_DIR:-$REPO_ROOT/.aiwatch/kafka/run}"

wipe=0
for arg in "$@"; do
  case "$arg" in
    --wipe) wipe=1 ;;
    *) echo "usage: $0 [--wipe]" >&2; exit 2 ;;
  esac
done

log() { echo "stop.sh: $*" >&2; }

if [[ ! -d "$RUN_DIR" ]]; then
  log "nothing running ($RUN_DIR does not exist)"
  exit 0
fi
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
PROPS="$RUN_DIR/server.properties"
PIDFILE="$RUN_DIR/kafka.pid"

# Same check as start.sh: alive and running *our* server.properties (pids get recycled).
is_our_broker() {
  local pid="$1" cmd
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmd " == *"kafka.Kafka $PROPS "* ]]  # $(...) dropped the trailing space
}

pids=()
if [[ -f "$PIDFILE" ]]; then
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  is_our_broker "$pid" && pids+=("$pid")
fi
# Fallback if the pid file was lost: a broker whose command line names this dir's config.
# (Matched on the exact config path, so brokers of other dirs are never touched.)
if ((${#pids[@]} == 0)); then
  while read -r pid; do
    is_our_broker "$pid" && pids+=("$pid")
  done < <(pgrep -f -- "kafka.Kafka $PROPS" || true)
fi

if ((${#pids[@]} == 0)); then
  log "nothing running"
else
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still alive after 30s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    log "stopped broker pid $pid"
  done
fi
rm -f "$PIDFILE"

if ((wipe)); then
  rm -rf "$RUN_DIR/data"
  log "wiped $RUN_DIR/data"
fi
