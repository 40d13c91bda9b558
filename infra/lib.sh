# Shared helpers for the infra/*.sh scripts. Sourced, not run.
# shellcheck disable=SC2034  # JARS, RUN, LOG4J2_CONF... are used by the scripts that source this
# shellcheck shell=bash

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$INFRA_DIR/.." && pwd)"
# Everything fetched or started lives under .infra/ (gitignored).
INFRA_HOME="${INFRA_HOME:-$ROOT/.infra}"
JARS="$INFRA_HOME/jars"
RUN="$INFRA_HOME/run"
mkdir -p "$RUN"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
LOG4J2_CONF="$INFRA_DIR/log4j2.properties"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Print the last lines of a log file to stderr (used on every failure path).
tail_log() {
  local file="$1" n="${2:-60}"
  if [[ -f "$file" ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$file" >&2
    tail -n "$n" "$file" >&2 || true
    printf -- '-----\n' >&2
  fi
}

# A TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# the process exists and is not a zombie waiting to be reaped
proc_running() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PIDFILE MARKER: the pid in PIDFILE is alive and its command line
# contains MARKER (so a recycled pid is never mistaken for ours).
pid_alive() {
  local pidfile="$1" marker="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  proc_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

# spawn PIDFILE LOGFILE CMD...: start CMD detached (own session, no stdin),
# output appended to LOGFILE; its pid is written to PIDFILE by the process
# itself just before exec, so PIDFILE holds the real pid of CMD.
spawn() {
  local pidfile="$1" logfile="$2"
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ expand in the child bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
  for _ in $(seq 1 50); do [[ -s "$pidfile" ]] && return 0; sleep 0.1; done
  die "could not start $1"
}

# stop_pid PIDFILE MARKER NAME [TIMEOUT_S]: TERM the pid from PIDFILE (only if
# it is still ours), wait, then KILL. Removes PIDFILE.
stop_pid() {
  local pidfile="$1" marker="$2" name="$3" timeout="${4:-30}" pid
  if ! pid_alive "$pidfile" "$marker"; then
    rm -f "$pidfile"
    log "$name not running"
    return 0
  fi
  pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((timeout * 10))); do
    proc_running "$pid" || break
    sleep 0.1
  done
  if proc_running "$pid"; then
    log "$name did not stop in ${timeout}s: SIGKILL $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
}

# Load KEY=VALUE lines of an env file written by these scripts.
load_env() {
  local file="$1"
  [[ -f "$file" ]] || die "$file missing: start that component first"
  set -a
  # shellcheck disable=SC1090
  . "$file"
  set +a
}

# render TEMPLATE OUT VAR...: copy TEMPLATE to OUT replacing @VAR@ by $VAR.
render() {
  local template="$1" out="$2" var
  shift 2
  cp "$template" "$out.tmp"
  local val
  for var in "$@"; do
    val="${!var}"
    val="${val//\\/\\\\}"
    val="${val//|/\\|}"
    val="${val//&/\\&}"
    sed -i "s|@${var}@|${val}|g" "$out.tmp"
  done
  if grep -q '@[A-Z_][A-Z_]*@' "$out.tmp"; then die "unrendered placeholder in $out.tmp"; fi
  mv "$out.tmp" "$out"
}

need_java() {
  command -v "$JAVA" >/dev/null || die "java not found (Java 17+ needed)"
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
  [[ "${v%%.*}" -ge 17 ]] || die "Java 17+ needed, $JAVA is $v"
}

# need_jars SET...: fetch the jar sets if they are missing.
need_jars() { "$INFRA_DIR/fetch.sh" "$@" >/dev/null; }
