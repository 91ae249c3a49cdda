#!/usr/bin/env bash
# Start a single-node Kafka (KRaft, combined broker+controller) on 127.0.0.1 from
# Maven Central jars, in the background, and wait until it really serves requests.
# Prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port> on success (also when already running).
#
# Env (all optional):
#   KAFKA_PORT=19092               client (PLAINTEXT) listener
#   KAFKA_CONTROLLER_PORT=19093    KRaft controller listener
#   AIWATCH_KAFKA_DIR=<repo>/.aiwatch/kafka/run   data/, server.properties, kafka.pid, broker.log
#   AIWATCH_KAFKA_LIBS=<repo>/.aiwatch/kafka/libs jar directory (see fetch.sh)
#   KAFKA_HEAP_OPTS="-Xms128m -Xmx512m"
#   KAFKA_FAST_START=1             0 = Kafka's usual G1 flags instead of SerialGC + C1-only JIT
#   KAFKA_OPTS=                    extra JVM options
#   KAFKA_START_TIMEOUT=90         seconds to wait for readiness
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
RUN_DIR="${AIWATCH_KAFKA_DIR:-$REPO_ROOT/.aiwatch/kafka/run}"
export AIWATCH_KAFKA_LIBS="${AIWATCH_KAFKA_LIBS:-$REPO_ROOT/.aiwatch/kafka/libs}"
LIBS="$AIWATCH_KAFKA_LIBS"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_FAST_START="${KAFKA_FAST_START:-1}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"  # absolute: it ends up in the java command line stop.sh matches on
DATA_DIR="$RUN_DIR/data"
PROPS="$RUN_DIR/server.properties"
PIDFILE="$RUN_DIR/kafka.pid"
LOG="$RUN_DIR/broker.log"

log() { echo "start.sh: $*" >&2; }

# True if PID is alive and is the broker of *this* run dir (guards against recycled pids).
is_our_broker() {
  local pid="$1" cmd
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmd " == *"kafka.Kafka $PROPS "* ]]  # $(...) dropped the trailing space
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

is_ready() { python3 "$HERE/kafka_ready.py" 127.0.0.1 "$1" 3 2>/dev/null; }

# Wait until the broker (pid $1) answers on port $2; returns 1 if it dies or times out.
wait_ready() {
  local pid="$1" port="$2" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { log "broker process $pid exited"; return 1; }
    if port_in_use "$port" && is_ready "$port"; then return 0; fi
    sleep 0.3
  done
  log "broker not ready after ${KAFKA_START_TIMEOUT}s"
  local parts
  parts=$(find "$DATA_DIR" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
  if ((parts > 500)); then  # loading thousands of partitions is what makes a long-lived broker slow to start
    log "its data dir holds $parts partition directories: raise KAFKA_START_TIMEOUT, delete unused topics, or start afresh with stop.sh --wipe"
  fi
  return 1
}

kill_broker() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# Abort cleanly on Ctrl-C/TERM before the broker exists (replaced by a kill-the-broker trap at launch).
trap 'log "interrupted"; exit 130' INT TERM HUP

# One start.sh per run dir at a time: a concurrent second call waits, then finds the broker running.
# (fd 9 is closed for the broker below, otherwise the JVM would inherit and hold the lock forever.)
exec 9>"$RUN_DIR/start.lock"
flock -w $((KAFKA_START_TIMEOUT + 60)) 9 || { log "timed out waiting for another start.sh on $RUN_DIR"; exit 1; }

# --- Already running? -----------------------------------------------------------------
pid="$(cat "$PIDFILE" 2>/dev/null || true)"
if ! is_our_broker "$pid"; then
  # Pid file stale or lost: adopt a broker whose command line names this dir's config, if any.
  pid="$(pgrep -f -- "kafka.Kafka $PROPS" | while read -r p; do is_our_broker "$p" && echo "$p" && break; done || true)"
  if [[ -n "$pid" ]]; then echo "$pid" >"$PIDFILE"; else rm -f "$PIDFILE"; fi
fi
if [[ -n "$pid" ]]; then
  # Use the port the running broker was configured with, not the one requested now.
  running_port="$(sed -n 's#^advertised.listeners=PLAINTEXT://127.0.0.1:\([0-9]*\).*#\1#p' "$PROPS")"
  if [[ "$running_port" != "$KAFKA_PORT" ]]; then
    log "a broker from $RUN_DIR is already running on port $running_port (pid $pid); run stop.sh first"
    exit 1
  fi
  if wait_ready "$pid" "$running_port"; then
    log "already running (pid $pid)"
    echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$running_port"
    exit 0
  fi
  log "broker pid $pid from $RUN_DIR is running but not healthy; stopping it and starting fresh"
  kill_broker "$pid"
  rm -f "$PIDFILE"
fi

for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
  if port_in_use "$p"; then
    log "port $p on 127.0.0.1 is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
    exit 1
  fi
done

"$HERE/fetch.sh"  # no-op when the jars for the current pom.xml are present

# --- Config -------------------------------------------------------------------------
tpl="$(<"$HERE/server.properties.template")"
tpl="${tpl//@KAFKA_PORT@/$KAFKA_PORT}"
tpl="${tpl//@KAFKA_CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT}"
tpl="${tpl//@DATA_DIR@/$DATA_DIR}"
printf '%s\n' "$tpl" >"$PROPS"

if [[ "$KAFKA_FAST_START" == "0" ]]; then
  perf_opts=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent)
else
  # Tests want a quick start more than peak throughput: no G1 setup, C1-only JIT.
  perf_opts=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1)
fi
read -r -a heap_opts <<<"$KAFKA_HEAP_OPTS"
read -r -a extra_opts <<<"${KAFKA_OPTS:-}"
common_opts=(-Djava.awt.headless=true -XX:+ExitOnOutOfMemoryError "-Dlog4j2.configurationFile=$HERE/log4j2.properties")

# Keep the previous log for post-mortems, start this run's log fresh.
[[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev"

# --- Format storage (once per data dir) ------------------------------------------------
# Static quorum (controller.quorum.voters), so no --standalone. --ignore-formatted makes it
# idempotent anyway; skipping the JVM when meta.properties exists just saves a second.
if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
  # Kafka cluster ids are 16 random bytes, base64url without padding (must not start with '-').
  cluster_id="$(python3 -c 'import base64,os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not s.startswith("-"): print(s); break')"
  if ! "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${common_opts[@]}" -cp "$LIBS/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" --ignore-formatted >>"$LOG" 2>&1 9>&-; then
    log "storage format failed; last 50 lines of $LOG:"
    tail -n 50 "$LOG" >&2
    exit 1
  fi
fi

# --- Launch -------------------------------------------------------------------------
# setsid: detach from the caller's session/process group so the broker outlives the shell
# that started it. The inner bash writes its own pid and then execs java, so the pid file
# holds the java pid itself whatever setsid does about forking.
pid=""
fail() {
  # Kill first and ignore further signals/SIGPIPE: reporting must not stop the cleanup.
  trap '' INT TERM HUP PIPE
  [[ -n "$pid" ]] || pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill_broker "$pid"
  rm -f "$PIDFILE"
  { log "$1; last 50 lines of $LOG:"; tail -n 50 "$LOG" >&2; } || true
  exit 1
}
# If we are interrupted from here on, don't leave a half-started broker behind.
trap 'fail "interrupted"' INT TERM HUP
rm -f "$PIDFILE"
setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
  "$JAVA" "${heap_opts[@]}" "${perf_opts[@]}" "${common_opts[@]}" ${extra_opts[@]+"${extra_opts[@]}"} \
  -cp "$LIBS/*" kafka.Kafka "$PROPS" </dev/null >>"$LOG" 2>&1 9>&- &

for ((i = 0; i < 100; i++)); do
  [[ -s "$PIDFILE" ]] && pid="$(cat "$PIDFILE")" && break
  sleep 0.05
done

[[ -n "$pid" ]] || fail "broker did not start (no pid file)"

if ! wait_ready "$pid" "$KAFKA_PORT"; then
  fail "broker failed to become ready"
fi
trap - INT TERM HUP
log "broker ready (pid $pid, ${SECONDS}s, log $LOG)"
echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
