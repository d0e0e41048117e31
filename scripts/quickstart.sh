#!/usr/bin/env bash
# The quickstart on a real broker: installs and starts the pinned Tansu broker on a free
# loopback port (or uses $KAFKA_BROKERS), builds kafkit, and moves a dataset through it:
# by default the machine's Debian package index (apt-cache dumpavail, ~63,000 records,
# ~50 MB), or the file named as the first argument.
#
#   scripts/quickstart.sh [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ] && [ -z "$(apt-cache dumpavail 2>/dev/null | head -c 1)" ]; then
  echo "quickstart: the package index is empty; refreshing it (apt-get update)" >&2
  apt-get update -qq >/dev/null
fi
cargo build -q --release -p kafkit --example quickstart
pid=""
if [ -z "${KAFKA_BROKERS:-}" ]; then
  read -r port pid < <(scripts/broker.sh start)
  trap 'scripts/broker.sh stop "$pid"' EXIT
  export KAFKA_BROKERS="127.0.0.1:$port"
  echo "quickstart: Tansu broker on $KAFKA_BROKERS" >&2
fi
"${CARGO_TARGET_DIR:-target}"/release/examples/quickstart "$@"
