#!/usr/bin/env bash
# The quickstart on a real broker: installs Apache Kafka 4.4 (scripts/kafka.sh: from Maven
# Central, once) and starts a single node on free loopback ports (or uses $KAFKA_BROKERS),
# builds kafkit, and moves a dataset through it: by default the machine's Debian package
# index (apt-cache dumpavail, ~63,000 records, ~50 MB), or the file named as the first
# argument. The broker starts while kafkit builds.
#
#   scripts/quickstart.sh [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ] && [ -z "$(apt-cache dumpavail 2>/dev/null | head -c 1)" ]; then
  echo "quickstart: the package index is empty; refreshing it (apt-get update)" >&2
  apt-get update -qq >/dev/null
fi
export KAFKIT_CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
broker=""
if [ -z "${KAFKA_BROKERS:-}" ]; then
  mkdir -p "$KAFKIT_CACHE/run"
  dir="$KAFKIT_CACHE/run/quickstart-$$"
  trap 'scripts/kafka.sh stop "$dir" KILL' EXIT
  scripts/kafka.sh start "$dir" --owner $$ >"$dir.env" 2>"$dir.log" &
  broker=$!
fi
cargo build -q --profile quickstart -p kafkit-quickstart
if [ -n "$broker" ]; then
  if ! wait "$broker"; then cat "$dir.log" >&2; echo "quickstart: the broker did not start" >&2; exit 1; fi
  KAFKA_BROKERS=$(sed -n 's/^BOOTSTRAP_PLAINTEXT=//p' "$(cat "$dir.env")")
  rm -f "$dir.env" "$dir.log"
  export KAFKA_BROKERS
  echo "quickstart: Apache Kafka 4.4.0 on $KAFKA_BROKERS" >&2
fi
"${CARGO_TARGET_DIR:-target}"/quickstart/kafkit-quickstart "$@"
