#!/usr/bin/env bash
# Kafka Connect standalone with the Debezium PostgreSQL connector
# (public.orders -> cdc.public.orders). Needs infra/postgres.sh start and
# infra/kafka.sh start first (reads .infra/run/pg.env and kafka.env).
#   infra/connect.sh start    start the worker, wait until the connector task is RUNNING
#   infra/connect.sh stop     stop the worker this script started (pid file)
#   infra/connect.sh status   connector status JSON (exit 0) or "stopped" (exit 3)
#   infra/connect.sh reset    stop, delete the offsets, drop the replication slot:
#                             the next start snapshots the table from the beginning
# Env: CONNECT_PORT (REST port; default: a free port), CONNECT_HEAP (default -Xmx512m),
#      CONNECT_START_TIMEOUT (seconds, default 120).
# Writes .infra/run/connect.env with CONNECT_URL=http://127.0.0.1:PORT.
set -euo pipefail
# shellcheck source=infra/lib.sh
. "$(dirname "$0")/lib.sh"

DIR="$RUN/connect"
WORKER="$DIR/worker.properties"
CONNECTOR="$DIR/orders-connector.properties"
PIDFILE="$RUN/connect.pid"
LOGFILE="$RUN/connect.log"
ENVFILE="$RUN/connect.env"
MARKER="$WORKER"
NAME=orders-cdc
SLOT=agent_orders

url() { sed -n 's/^CONNECT_URL=//p' "$ENVFILE"; }

connector_state() { # prints "CONNECTOR_STATE TASK_STATE" or nothing
  curl -sf "$(url)/connectors/$NAME/status" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
tasks = s.get("tasks") or [{"state": "NONE"}]
print(s["connector"]["state"], tasks[0]["state"])
' 2>/dev/null || true
}

pg_query() { # pg_query SQL: run SQL in the orders database, unaligned output
  psql -X -q -tA -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" -c "$1"
}

start() {
  if pid_alive "$PIDFILE" "$MARKER"; then
    log "already running (pid $(cat "$PIDFILE")), $(cat "$ENVFILE")"
    return 0
  fi
  need_java
  need_jars connect debezium
  load_env "$RUN/kafka.env"
  load_env "$RUN/pg.env"
  mkdir -p "$DIR"

  # Offsets without the replication slot (e.g. the cluster was re-created) are
  # stale: without them the connector snapshots the table and streams from
  # there, instead of waiting for an LSN of a database that no longer exists.
  if [[ -f "$DIR/offsets.dat" && -z "$(pg_query "SELECT 1 FROM pg_replication_slots WHERE slot_name = '$SLOT'")" ]]; then
    log "no replication slot $SLOT: deleting stale Connect offsets (the connector will snapshot)"
    rm -f "$DIR/offsets.dat"
  fi

  local REST_PORT="${CONNECT_PORT:-$(free_port)}"
  # shellcheck disable=SC2034  # read by render through ${!var}
  local CONNECT_DIR="$DIR" PLUGIN_PATH="$JARS/debezium"
  render "$INFRA_DIR/connect/worker.properties" "$WORKER" BOOTSTRAP CONNECT_DIR REST_PORT PLUGIN_PATH
  render "$INFRA_DIR/connect/orders-connector.properties" "$CONNECTOR" \
    PGHOST PGPORT PGDATABASE DBZ_USER DBZ_PASSWORD
  echo "CONNECT_URL=http://127.0.0.1:$REST_PORT" >"$ENVFILE"

  log "starting Kafka Connect (REST :$REST_PORT, bootstrap $BOOTSTRAP), log $LOGFILE"
  : >"$LOGFILE"
  # shellcheck disable=SC2086
  spawn "$PIDFILE" "$LOGFILE" "$JAVA" ${CONNECT_HEAP:--Xmx512m -Xms128m} \
    -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J2_CONF" \
    -cp "$JARS/connect/*" org.apache.kafka.connect.cli.ConnectStandalone "$WORKER" "$CONNECTOR"

  local timeout="${CONNECT_START_TIMEOUT:-120}" state=""
  local deadline=$((SECONDS + timeout))
  while :; do
    state="$(connector_state)"
    [[ "$state" == "RUNNING RUNNING" ]] && break
    if [[ "$state" == *FAILED* ]] || ! pid_alive "$PIDFILE" "$MARKER" || ((SECONDS > deadline)); then
      if curl -sf "$(url)/connectors/$NAME/status" >&2 2>/dev/null; then echo >&2; fi
      tail_log "$LOGFILE"
      stop_pid "$PIDFILE" "$MARKER" connect 15
      rm -f "$ENVFILE"
      die "connector $NAME not RUNNING (state: ${state:-no answer}) (timeout ${timeout}s)"
    fi
    sleep 0.5
  done
  log "ready: connector $NAME RUNNING, $(cat "$ENVFILE") (pid $(cat "$PIDFILE"))"
}

stop() {
  stop_pid "$PIDFILE" "$MARKER" connect 30
  rm -f "$ENVFILE"
}

status() {
  if pid_alive "$PIDFILE" "$MARKER"; then
    curl -sf "$(url)/connectors/$NAME/status" || echo "running pid $(cat "$PIDFILE"), REST not answering"
    echo
  else
    echo "stopped"
    exit 3
  fi
}

reset() {
  stop
  rm -f "$DIR/offsets.dat"
  log "deleted Connect offsets"
  if ! "$INFRA_DIR/postgres.sh" status >/dev/null 2>&1; then
    log "WARNING: postgres not running: replication slot $SLOT not dropped"
    return 0
  fi
  load_env "$RUN/pg.env"
  # the walsender of the stopped worker may still hold the slot for a moment

  for _ in $(seq 1 20); do
    if pg_query "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
                  WHERE slot_name = '$SLOT' AND active_pid IS NOT NULL;
                 SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                  WHERE slot_name = '$SLOT'" >/dev/null 2>&1; then
      log "dropped replication slot $SLOT (if it existed)"
      return 0
    fi
    sleep 0.5
  done
  die "could not drop replication slot $SLOT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) reset ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
