#!/usr/bin/env bash
# The whole local CDC stack, in order.
#   infra/all.sh up       fetch jars, start postgres, kafka (+ topics), connect
#   infra/all.sh down     stop connect, kafka, postgres
#   infra/all.sh status   one line per component
#   infra/all.sh clean    down, then delete all local data (.infra/run)
set -euo pipefail
# shellcheck source=infra/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$INFRA_DIR"

case "${1:-}" in
  up)
    ./fetch.sh kafka connect debezium >/dev/null
    ./postgres.sh start
    ./kafka.sh start
    ./kafka.sh create-topics
    ./connect.sh start
    cat "$RUN/pg.env" "$RUN/kafka.env" "$RUN/connect.env" | grep -v PASSWORD
    ;;
  down)
    rc=0
    ./connect.sh stop || rc=1
    ./kafka.sh stop || rc=1
    ./postgres.sh stop || rc=1
    exit $rc
    ;;
  status)
    for c in postgres kafka connect; do
      printf '%-9s %s\n' "$c" "$(./"$c".sh status 2>&1 | head -n 1 || true)"
    done
    ;;
  clean)
    ./connect.sh stop
    rm -rf "$RUN/connect" "$RUN/connect.log"
    ./kafka.sh clean
    ./postgres.sh clean
    ;;
  *) echo "usage: $0 up|down|status|clean" >&2; exit 2 ;;
esac
