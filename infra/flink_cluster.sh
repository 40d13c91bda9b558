#!/usr/bin/env bash
# Standalone Flink session cluster (one JobManager + one TaskManager with 2 slots)
# from the Flink distribution that ships inside the apache-flink package
# (.venv/lib/python3.11/site-packages/pyflink), configured by flink-conf/config.yaml.
#
#   infra/flink_cluster.sh start                       start (or reuse) JM + TM, wait until 2 slots are free
#   infra/flink_cluster.sh stop                        stop the JM and TM this script started (pid files)
#   infra/flink_cluster.sh status                      "running http://127.0.0.1:PORT ..." (0) or "stopped" (3)
#   infra/flink_cluster.sh submit [-s PATH] [-p N] [--] JOB_ARGS...
#                                                      flink run -d -py jobs/agent_job.py ... -- JOB_ARGS;
#                                                      prints the JobID (-s: resume from a savepoint/checkpoint)
#   infra/flink_cluster.sh list                        flink list (running and scheduled jobs)
#   infra/flink_cluster.sh savepoint JOBID [DIR]       trigger a savepoint, print its path
#   infra/flink_cluster.sh stop-with-savepoint JOBID [DIR]
#                                                      flink stop --savepointPath DIR JOBID, print the path
#   infra/flink_cluster.sh cancel JOBID                cancel without savepoint (checkpoints are retained)
#
# Env: FLINK_REST_PORT (web UI / REST; default: a free port), FLINK_HOME (default:
#      the venv's pyflink), PYTHON (Python of the workers and the job driver;
#      default .venv/bin/python), FLINK_PROPERTIES (extra "key: value" lines applied
#      on top of flink-conf/config.yaml, like the Flink Docker image),
#      FLINK_START_TIMEOUT (s, default 120), KAFKA_CONNECTOR_JAR (default:
#      .infra/jars/flink/flink-sql-connector-kafka-*.jar, fetched when missing),
#      JOB_SCRIPT (default jobs/agent_job.py).
#
# Everything lives in .infra/run/flink/: conf/ (the generated FLINK_CONF_DIR),
# log/ (Flink's log files), jobmanager.out and taskmanager.out (stdout/stderr),
# checkpoints/, savepoints/, tmp/ (io.tmp.dirs). Writes .infra/run/flink.env:
#   FLINK_REST=http://127.0.0.1:PORT  FLINK_REST_PORT  FLINK_PROM_JM  FLINK_PROM_TM
#   (Prometheus endpoints, http://127.0.0.1:PORT/metrics)  FLINK_CONF_DIR
#   FLINK_HOME  FLINK_CHECKPOINTS  FLINK_SAVEPOINTS
# JM and TM run in the foreground mode of bin/jobmanager.sh / taskmanager.sh
# under our own pid files, so stop signals exactly those two JVMs.
set -euo pipefail
# shellcheck source=infra/lib.sh
. "$(dirname "$0")/lib.sh"

DIR="$RUN/flink"
CONF="$DIR/conf"
ENVFILE="$RUN/flink.env"
JM_PID="$DIR/jobmanager.pid"
TM_PID="$DIR/taskmanager.pid"
# A dynamic property Flink ignores, on the command line of both processes from the
# moment they are spawned (wrapper, jobmanager.sh, flink-console.sh, the JVM).
MARKER="streaming-agent.cluster-dir=$DIR"
TEMPLATE="$ROOT/flink-conf/config.yaml"

flink_home() {
  if [[ -n "${FLINK_HOME:-}" ]]; then echo "$FLINK_HOME"; return; fi
  "$PYTHON" -c 'import os, pyflink; print(os.path.dirname(os.path.abspath(pyflink.__file__)))' \
    || die "cannot locate pyflink with $PYTHON (set FLINK_HOME or PYTHON)"
}

env_value() { [[ -f "$ENVFILE" ]] && sed -n "s/^$1=//p" "$ENVFILE"; }

running() { pid_alive "$JM_PID" "$MARKER" && pid_alive "$TM_PID" "$MARKER"; }

# write_conf FLINK_HOME REST_PORT RPC_PORT: $CONF = the distribution's log
# configs + flink-conf/config.yaml with the environment-specific keys replaced.
write_conf() {
  local home="$1" rest_port="$2" rpc_port="$3"
  rm -rf "$CONF.tmp"
  mkdir -p "$CONF.tmp" "$DIR/checkpoints" "$DIR/savepoints" "$DIR/tmp" "$DIR/log"
  cp "$home"/conf/log4j*.properties "$home"/conf/logback*.xml "$CONF.tmp/" 2>/dev/null || true
  # Flink 2.2's Kafka sink committer re-registers its pendingCommittables gauge on
  # every checkpoint: one "Name collision" WARN per output topic per checkpoint.
  for f in "$CONF.tmp"/log4j.properties "$CONF.tmp"/log4j-console.properties; do
    [[ -f "$f" ]] && printf '%s\n' '' \
      '# added by infra/flink_cluster.sh: silence the per-checkpoint metric name collision warnings' \
      'logger.metricgroup.name = org.apache.flink.metrics.MetricGroup' \
      'logger.metricgroup.level = ERROR' >>"$f"
  done
  "$PYTHON" - "$TEMPLATE" "$CONF.tmp/config.yaml" <<EOF || die "could not write $CONF/config.yaml"
import os, sys, yaml
src, dst = sys.argv[1:]
with open(src) as f:
    conf = yaml.safe_load(f)
nested = [k for k, v in conf.items() if isinstance(v, dict)]
if nested:
    sys.exit(f"{src}: write keys flat (a.b.c: value), nested: {nested}")
conf.update({
    "jobmanager.rpc.address": "127.0.0.1",
    "jobmanager.rpc.port": $rpc_port,
    "jobmanager.bind-host": "127.0.0.1",
    "taskmanager.bind-host": "127.0.0.1",
    "taskmanager.host": "127.0.0.1",
    "rest.address": "127.0.0.1",
    "rest.bind-address": "127.0.0.1",
    "rest.port": $rest_port,
    "python.executable": "$PYTHON",
    "python.client.executable": "$PYTHON",
    "execution.checkpointing.dir": "file://$DIR/checkpoints",
    "execution.checkpointing.savepoint-dir": "file://$DIR/savepoints",
    "io.tmp.dirs": "$DIR/tmp",
})
for line in os.environ.get("FLINK_PROPERTIES", "").splitlines():  # like the Docker image
    if line.strip() and not line.lstrip().startswith("#"):
        key, _, value = line.partition(":")
        conf[key.strip()] = yaml.safe_load(value.strip()) if value.strip() else ""
with open(dst, "w") as f:
    f.write("# generated by infra/flink_cluster.sh from flink-conf/config.yaml: do not edit\n")
    yaml.safe_dump(conf, f, default_flow_style=False, sort_keys=False)
EOF
  rm -rf "$CONF"
  mv "$CONF.tmp" "$CONF"
}

# flink_env: the environment of every bin/* call (our conf, logs, pids).
flink_env() {
  export FLINK_HOME FLINK_CONF_DIR="$CONF" FLINK_LOG_DIR="$DIR/log" FLINK_PID_DIR="$DIR/pid"
  export FLINK_IDENT_STRING="${FLINK_IDENT_STRING:-agent}"
  # the full log is in log/; *.out keep stdout/stderr and warnings (tails on failure)
  export JVM_ARGS="${JVM_ARGS:-} -Dconsole.log.level=${FLINK_CONSOLE_LOG_LEVEL:-WARN}"
}

wait_ready() {
  local rest="$1" deadline=$((SECONDS + ${FLINK_START_TIMEOUT:-120}))
  until curl -sf "$rest/overview" 2>/dev/null | "$PYTHON" -c '
import json, sys
o = json.load(sys.stdin)
sys.exit(0 if o.get("taskmanagers", 0) >= 1 and o.get("slots-total", 0) >= 1 else 1)' 2>/dev/null; do
    for p in jobmanager taskmanager; do
      if ! pid_alive "$DIR/$p.pid" "$MARKER"; then
        tail_log "$DIR/$p.out"
        local kind=taskexecutor logs
        [[ $p == jobmanager ]] && kind=standalonesession
        logs=("$DIR"/log/flink-*-"$kind"-*.log)
        tail_log "${logs[0]}"
        stop
        die "$p exited during startup"
      fi
    done
    if ((SECONDS > deadline)); then
      tail_log "$DIR/jobmanager.out"
      tail_log "$DIR/taskmanager.out"
      stop
      die "cluster not ready in ${FLINK_START_TIMEOUT:-120}s"
    fi
    sleep 0.5
  done
}

start() {
  if running; then
    log "already running: $(env_value FLINK_REST) (pids $(cat "$JM_PID") $(cat "$TM_PID"))"
    return 0
  fi
  stop_quiet
  need_java
  FLINK_HOME="$(flink_home)"
  [[ -x "$FLINK_HOME/bin/jobmanager.sh" ]] || die "no Flink distribution in $FLINK_HOME"
  compgen -G "$FLINK_HOME/plugins/metrics-prometheus/flink-metrics-prometheus-*.jar" >/dev/null ||
    log "WARNING: no $FLINK_HOME/plugins/metrics-prometheus/flink-metrics-prometheus-*.jar: no Prometheus endpoint"
  local rest_port rpc_port jm_prom tm_prom
  rest_port="${FLINK_REST_PORT:-$(free_port)}"
  port_open "$rest_port" && die "port $rest_port (FLINK_REST_PORT) is already in use"
  rpc_port="$(free_port)"
  jm_prom="$(free_port)"
  tm_prom="$(free_port)"
  while [[ "$rpc_port" == "$rest_port" ]]; do rpc_port="$(free_port)"; done
  while [[ "$jm_prom" == "$rest_port" || "$jm_prom" == "$rpc_port" ]]; do jm_prom="$(free_port)"; done
  while [[ "$tm_prom" == "$rest_port" || "$tm_prom" == "$rpc_port" || "$tm_prom" == "$jm_prom" ]]; do
    tm_prom="$(free_port)"
  done
  write_conf "$FLINK_HOME" "$rest_port" "$rpc_port"
  flink_env
  rm -rf "$DIR/pid"
  # The Python workers start in the TaskManager's working directory, and `python -m`
  # puts it first on sys.path: from a checkout they would import its packages
  # instead of the ones the job ships. Start both processes in $DIR.
  cd "$DIR"
  : >"$DIR/jobmanager.out"
  : >"$DIR/taskmanager.out"
  log "starting JobManager (REST/web UI http://127.0.0.1:$rest_port, rpc :$rpc_port), logs $DIR/log"
  spawn "$JM_PID" "$DIR/jobmanager.out" "$FLINK_HOME/bin/jobmanager.sh" start-foreground \
    -D "$MARKER" -D "metrics.reporter.prom.port=$jm_prom"
  log "starting TaskManager (2 slots)"
  spawn "$TM_PID" "$DIR/taskmanager.out" "$FLINK_HOME/bin/taskmanager.sh" start-foreground \
    -D "$MARKER" -D "metrics.reporter.prom.port=$tm_prom"
  cat >"$ENVFILE" <<EOF
FLINK_REST=http://127.0.0.1:$rest_port
FLINK_REST_PORT=$rest_port
FLINK_PROM_JM=http://127.0.0.1:$jm_prom/metrics
FLINK_PROM_TM=http://127.0.0.1:$tm_prom/metrics
FLINK_CONF_DIR=$CONF
FLINK_HOME=$FLINK_HOME
FLINK_CHECKPOINTS=$DIR/checkpoints
FLINK_SAVEPOINTS=$DIR/savepoints
EOF
  wait_ready "http://127.0.0.1:$rest_port"
  log "ready: web UI http://127.0.0.1:$rest_port (JM pid $(cat "$JM_PID"), TM pid $(cat "$TM_PID"))"
  cat "$ENVFILE"
}

stop_quiet() {
  stop_pid "$TM_PID" "$MARKER" taskmanager 30 2>/dev/null
  stop_pid "$JM_PID" "$MARKER" jobmanager 30 2>/dev/null
}

stop() {
  # TaskManager first: its Python workers are its children and end with it.
  stop_pid "$TM_PID" "$MARKER" taskmanager 30
  stop_pid "$JM_PID" "$MARKER" jobmanager 30
  rm -f "$ENVFILE"
}

status() {
  if running; then
    echo "running $(env_value FLINK_REST) jm=$(cat "$JM_PID") tm=$(cat "$TM_PID")"
  else
    echo "stopped"
    exit 3
  fi
}

# flink_cli ARGS...: bin/flink against our cluster, with our conf.
flink_cli() {
  running || die "cluster not running: infra/flink_cluster.sh start"
  FLINK_HOME="$(env_value FLINK_HOME)"
  flink_env
  "$FLINK_HOME/bin/flink" "$@"
}

jobmanager_addr() { echo "127.0.0.1:$(env_value FLINK_REST_PORT)"; }

connector_jar() {
  if [[ -n "${KAFKA_CONNECTOR_JAR:-}" ]]; then echo "$KAFKA_CONNECTOR_JAR"; return; fi
  need_jars flink
  local jars=("$JARS"/flink/flink-sql-connector-kafka-*.jar)
  [[ -f "${jars[0]}" ]] || die "no flink-sql-connector-kafka jar in $JARS/flink"
  echo "${jars[0]}"
}

submit() {
  local flink_args=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -s | --fromSavepoint) flink_args+=(-s "$2"); shift 2 ;;
      -p | --parallelism) flink_args+=(-p "$2"); shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  local jar out logf script src
  jar="$(connector_jar)"
  script="${JOB_SCRIPT:-$ROOT/jobs/agent_job.py}"
  src="$(cd "$(dirname "$script")/.." && pwd)"
  logf="$DIR/submit-$(date +%Y%m%d-%H%M%S)-$$.log"
  # -d: detached, the CLI returns once the job is submitted. -py runs the job's
  # driver with python.client.executable (-pyclientexec) and PYTHONPATH=SRC, so
  # the driver imports contracts/jobs/sinks from the checkout; -pyexec is the
  # workers' Python. The job ships its packages to the workers itself
  # (env.add_python_file), so there is no --pyFiles here: `--pyFiles
  # contracts,jobs,sinks` would put each package directory itself on the
  # workers' PYTHONPATH (contracts/avro.py then shadows the avro library) and
  # make the driver import the packages from a temporary copy (the contract
  # path it computes would not exist on the workers). The connector jar goes
  # into the job as a pipeline jar (the job's --jars, uploaded to the blob store
  # with the job graph): Flink 2's `flink run` has no --jarfile option.
  # Arguments after `--` are the job's.
  if ! out="$(cd "$src" && PYTHONPATH="$src${PYTHONPATH:+:$PYTHONPATH}" flink_cli run -m "$(jobmanager_addr)" -d \
      "${flink_args[@]}" -py "$script" -pyexec "$PYTHON" -pyclientexec "$PYTHON" \
      -- --jars "$jar" "$@" 2>&1)"; then
    printf '%s\n' "$out" >"$logf"
    tail_log "$logf" 80
    die "flink run failed (log $logf)"
  fi
  printf '%s\n' "$out" >"$logf"
  local job_id
  job_id="$(printf '%s\n' "$out" | sed -n 's/.*submitted with JobID \([0-9a-f]\{32\}\).*/\1/p' | tail -n 1)"
  [[ -n "$job_id" ]] || { tail_log "$logf" 80; die "no JobID in the output of flink run (log $logf)"; }
  log "submitted job $job_id (log $logf)"
  echo "$job_id"
}

# savepoint_path OUTPUT: the path of "Savepoint completed. Path: file:/..."
savepoint_path() { sed -n 's/.*Savepoint completed\. Path: \(.*\)$/\1/p' | tail -n 1; }

savepoint() {
  local job="${1:?usage: savepoint JOBID [DIR]}" dir="${2:-$DIR/savepoints}" out path
  out="$(flink_cli savepoint -m "$(jobmanager_addr)" "$job" "$dir" 2>&1)" || { printf '%s\n' "$out" >&2; die "savepoint failed"; }
  path="$(printf '%s\n' "$out" | savepoint_path)"
  [[ -n "$path" ]] || { printf '%s\n' "$out" >&2; die "no savepoint path in the output"; }
  echo "$path"
}

stop_with_savepoint() {
  local job="${1:?usage: stop-with-savepoint JOBID [DIR]}" dir="${2:-$DIR/savepoints}" out path
  out="$(flink_cli stop -m "$(jobmanager_addr)" --savepointPath "$dir" "$job" 2>&1)" ||
    { printf '%s\n' "$out" >&2; die "stop-with-savepoint failed"; }
  path="$(printf '%s\n' "$out" | savepoint_path)"
  [[ -n "$path" ]] || { printf '%s\n' "$out" >&2; die "no savepoint path in the output"; }
  echo "$path"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  submit) submit "$@" ;;
  list) flink_cli list -m "$(jobmanager_addr)" ;;
  savepoint) savepoint "$@" ;;
  stop-with-savepoint) stop_with_savepoint "$@" ;;
  cancel) flink_cli cancel -m "$(jobmanager_addr)" "${1:?usage: cancel JOBID}" ;;
  *) echo "usage: $0 start|stop|status|submit [-s PATH] [-p N] [--] JOB_ARGS...|list|savepoint JOBID [DIR]|stop-with-savepoint JOBID [DIR]|cancel JOBID" >&2; exit 2 ;;
esac
