#!/usr/bin/env bash
# Local PostgreSQL for CDC: Debian's server binaries, a private cluster in
# .infra/run/pg/, logical decoding on, loopback TCP only.
#   infra/postgres.sh start        initdb if needed, start, create db/roles/table (idempotent)
#   infra/postgres.sh stop         stop the cluster (pg_ctl on our data dir only)
#   infra/postgres.sh status       "running PORT" (exit 0) or "stopped" (exit 3)
#   infra/postgres.sh psql [ARG..] psql into the shop database as the superuser
#   infra/postgres.sh clean        stop and delete the cluster
# Env: PG_PORT (default: a free port, chosen at initdb), PG_BIN (server bin dir),
#      PG_OS_USER (OS user that owns the cluster when run as root; default agentpg).
# Writes .infra/run/pg.env: PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
#      PG_DSN DBZ_USER DBZ_PASSWORD (the replication role Debezium logs in as).
set -euo pipefail
# shellcheck source=infra/lib.sh
. "$(dirname "$0")/lib.sh"

DIR="$RUN/pg" # may be a link to /var/tmp/... (see init_cluster)
PIDFILE="$RUN/pg.pid"
ENVFILE="$RUN/pg.env"
set_paths() { # paths as the cluster's OS user sees them: links resolved
  local real
  real="$(readlink -f "$DIR")"
  DATA="$real/data"
  LOGFILE="$real/postgres.log" # written by the cluster's OS user
  PORTFILE="$real/port"
}
set_paths

# Local, loopback-only throwaway credentials.
SUPERUSER=agent
SUPERPASS=agent
DATABASE=shop
DBZ_USER=debezium
DBZ_PASSWORD=debezium

find_pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$d" || ! -x "$d/initdb" ]]; then
    [[ $EUID -eq 0 ]] || die "PostgreSQL server not installed; as root: apt-get install postgresql"
    log "installing Debian's postgresql (apt-get) ..."
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
    d="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  echo "$d"
}

# initdb and postgres refuse to run as root: as root, run them as PG_OS_USER.
OS_USER="$(id -un)"
if [[ $EUID -eq 0 ]]; then OS_USER="${PG_OS_USER:-agentpg}"; fi
as_owner() {
  if [[ $EUID -eq 0 ]]; then (cd / && runuser -u "$OS_USER" -- "$@"); else "$@"; fi
}
ensure_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  if ! id -u "$OS_USER" >/dev/null 2>&1; then
    log "creating system user $OS_USER (PostgreSQL will not run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER"
  fi
}

running() { [[ -f "$DATA/postmaster.pid" ]] && pid_alive "$PIDFILE" "$DATA"; }

psql_su() { # psql as the superuser, over TCP
  PGOPTIONS="-c client_min_messages=warning" PGPASSWORD="$SUPERPASS" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$PORTFILE")" -U "$SUPERUSER" "$@"
}

write_env() {
  local port="$1"
  cat >"$ENVFILE" <<EOF
PGHOST=127.0.0.1
PGPORT=$port
PGUSER=$SUPERUSER
PGPASSWORD=$SUPERPASS
PGDATABASE=$DATABASE
PG_DSN=postgresql://$SUPERUSER:$SUPERPASS@127.0.0.1:$port/$DATABASE
DBZ_USER=$DBZ_USER
DBZ_PASSWORD=$DBZ_PASSWORD
EOF
}

remove_cluster_dir() { # .infra/run/pg, and its target when it is a link
  if [[ -L "$DIR" ]]; then rm -rf "$(readlink -f "$DIR")"; fi
  rm -rf "$DIR"
}

init_cluster() {
  local bin="$1"
  remove_cluster_dir
  mkdir -p "$DIR"
  ensure_os_user
  if [[ $EUID -eq 0 ]]; then
    chown "$OS_USER" "$DIR"
    if ! runuser -u "$OS_USER" -- test -w "$DIR"; then
      # the checkout is not reachable by $OS_USER (e.g. under /root): keep
      # the cluster in /var/tmp and link it from .infra/run/pg
      local outside
      outside="/var/tmp/streaming-agent-pg.$(echo "$ROOT" | sha256sum | cut -c1-12)"
      log "$OS_USER cannot reach $DIR: cluster goes to $outside"
      rmdir "$DIR"
      rm -rf "$outside"
      mkdir -p "$outside"
      chown "$OS_USER" "$outside"
      ln -s "$outside" "$DIR"
    fi
  fi
  set_paths
  local pwfile
  pwfile="$(readlink -f "$DIR")/.pw"
  echo "$SUPERPASS" >"$pwfile"
  if [[ $EUID -eq 0 ]]; then chown "$OS_USER" "$pwfile"; fi
  log "initdb $DATA (as $OS_USER)"
  if ! as_owner "$bin/initdb" -D "$DATA" -U "$SUPERUSER" --pwfile="$pwfile" \
      --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$RUN/pg-initdb.log" 2>&1; then
    rm -f "$pwfile"
    tail_log "$RUN/pg-initdb.log"
    die "initdb failed"
  fi
  rm -f "$pwfile"
  # Settings beside postgresql.conf; the port is passed on the command line.
  as_owner tee -a "$DATA/postgresql.auto.conf" >/dev/null <<'EOF'
# infra/postgres.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_connections = 50
# a disposable local cluster: durability traded for speed
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  echo "${PG_PORT:-$(free_port)}" >"$PORTFILE"
}

bootstrap_db() {
  if [[ "$(psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
    psql_su -d postgres -c "CREATE DATABASE $DATABASE"
  fi
  psql_su -d postgres <<EOF
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DBZ_USER') THEN
    CREATE ROLE $DBZ_USER WITH LOGIN REPLICATION PASSWORD '$DBZ_PASSWORD';
  END IF;
END
\$\$;
GRANT CONNECT ON DATABASE $DATABASE TO $DBZ_USER;
EOF
  psql_su -d "$DATABASE" -f "$INFRA_DIR/sql/orders.sql"
  psql_su -d "$DATABASE" <<EOF
GRANT USAGE ON SCHEMA public TO $DBZ_USER;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO $DBZ_USER;
EOF
}

start() {
  if running; then
    log "already running (pid $(cat "$PIDFILE")), port $(cat "$PORTFILE")"
    return 0
  fi
  local bin
  bin="$(find_pg_bin)"
  if [[ ! -f "$DATA/PG_VERSION" ]]; then init_cluster "$bin"; fi
  ensure_os_user
  local port="${PG_PORT:-$(cat "$PORTFILE")}"
  if port_open "$port"; then die "port $port is already in use (not by our cluster); set PG_PORT"; fi

  log "starting PostgreSQL on 127.0.0.1:$port, log $LOGFILE"
  if [[ $EUID -eq 0 ]]; then chown "$OS_USER" "$DIR"; fi
  if ! as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOGFILE" -o "-p $port" -w -t 60 start >"$RUN/pg-ctl.log" 2>&1; then
    cat "$RUN/pg-ctl.log" >&2
    tail_log "$LOGFILE"
    die "pg_ctl start failed"
  fi
  head -n 1 "$DATA/postmaster.pid" >"$PIDFILE"
  echo "$port" >"$PORTFILE"
  write_env "$port"
  if ! bootstrap_db; then
    tail_log "$LOGFILE" 20
    die "creating database/roles/table failed"
  fi
  log "ready: postgresql://$SUPERUSER@127.0.0.1:$port/$DATABASE (pid $(cat "$PIDFILE"))"
}

stop() {
  if ! running; then
    rm -f "$PIDFILE"
    log "postgres not running"
    return 0
  fi
  log "stopping postgres (pid $(cat "$PIDFILE"))"
  local bin
  bin="$(find_pg_bin)"
  if ! as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >"$RUN/pg-ctl.log" 2>&1; then
    cat "$RUN/pg-ctl.log" >&2
    stop_pid "$PIDFILE" "$DATA" postgres 10
  fi
  rm -f "$PIDFILE" "$ENVFILE"
}

status() {
  if running; then
    echo "running 127.0.0.1:$(cat "$PORTFILE") pid $(cat "$PIDFILE")"
  else
    echo "stopped"
    exit 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  psql)
    shift
    running || die "postgres not running: infra/postgres.sh start"
    load_env "$ENVFILE"
    exec psql -X -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" "$@"
    ;;
  clean)
    stop
    remove_cluster_dir
    rm -f "$RUN"/pg-*.log
    log "deleted cluster $DIR"
    ;;
  *) echo "usage: $0 start|stop|status|psql [ARGS]|clean" >&2; exit 2 ;;
esac
