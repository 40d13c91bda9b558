#!/usr/bin/env bash
# Fetch the jar sets of infra/pom.xml into .infra/jars/<set>/ with Maven.
#   infra/fetch.sh [kafka] [connect] [debezium] [flink]   (no argument: all)
# Idempotent: a set whose stamp matches the current pom.xml is skipped.
# Prints "<set> <dir>" for every set asked for.
set -euo pipefail
# shellcheck source=infra/lib.sh
. "$(dirname "$0")/lib.sh"

ALL_SETS=(kafka connect debezium flink)
sets=("$@")
[[ ${#sets[@]} -gt 0 ]] || sets=("${ALL_SETS[@]}")

# Where a set's jars go. Debezium is a Connect plugin: plugin.path must name
# the parent of a directory holding the plugin's jars, hence one level more.
set_dir() {
  case "$1" in
    debezium) echo "$JARS/debezium/debezium-connector-postgres" ;;
    kafka | connect | flink) echo "$JARS/$1" ;;
    *) die "unknown jar set '$1' (known: ${ALL_SETS[*]})" ;;
  esac
}

stamp="$(sha256sum "$INFRA_DIR/pom.xml" | cut -d' ' -f1)"
for set in "${sets[@]}"; do
  dir="$(set_dir "$set")"
  if [[ -f "$dir/.fetched" && "$(cat "$dir/.fetched")" == "$stamp" ]]; then
    echo "$set $dir"
    continue
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  log "fetching jar set '$set' with Maven ..."
  start=$SECONDS
  tmp="$dir.tmp"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$dir")"
  # shellcheck disable=SC2086  # MVN_ARGS: extra Maven flags, e.g. -Dmaven.repo.local=DIR
  if ! mvn -q -B ${MVN_ARGS:-} -f "$INFRA_DIR/pom.xml" -P "$set" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" >"$RUN/fetch-$set.log" 2>&1; then
    tail_log "$RUN/fetch-$set.log"
    die "Maven could not fetch jar set '$set'"
  fi
  echo "$stamp" >"$tmp/.fetched"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "fetched '$set': $(find "$dir" -name '*.jar' | wc -l) jars in $((SECONDS - start))s"
  echo "$set $dir"
done
