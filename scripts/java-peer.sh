#!/usr/bin/env bash
# The Java client as an interop peer: scripts/java-peer/*.java, compiled with javac against
# kafka-clients (and its runtime dependencies, and Jackson for JSON) from `scripts/kafka.sh libs`,
# into $KAFKIT_CACHE/java-peer-HASH/ (HASH: of the sources, this script and the Kafka version),
# only when that directory is incomplete. Nothing built is committed.
#
#   scripts/java-peer.sh build [VERSION]     # builds when missing; prints the directory
#   scripts/java-peer.sh command [VERSION]   # builds when missing; prints the command, one
#                                            # argument per line (java, its flags, the class)
#   scripts/java-peer.sh run ARGS...         # runs the peer (VERSION from KAFKIT_KAFKA_VERSION)
#   scripts/java-peer.sh perf-command [VERSION]  # as command, on the JVM's default flags
#   scripts/java-peer.sh perf ARGS...        # runs the peer on the JVM's default flags: the load
#                                            # tests perf_produce and perf_consume (Perf.java)
#
# VERSION: the kafka-clients version, default KAFKIT_KAFKA_VERSION, else 4.4.0. Peer.java's
# header describes its commands. The build also records a class-data-sharing archive (AppCDS)
# of a dry run, which shortens every later JVM start.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
SRC=$HERE/java-peer
# Short-lived JVMs: the client compiler only, the serial collector.
FLAGS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k)
# Load tests (perf): the JVM's defaults (both JIT compilers; the collector and heap its
# ergonomics pick for the machine), as the Java client runs when nobody tunes it.
PERF_FLAGS=()

version() { echo "${1:-${KAFKIT_KAFKA_VERSION:-4.4.0}}"; }

# The jars of the classpath, from the broker's libs directory: kafka-clients and its runtime
# dependencies (zstd-jni, lz4-java, snappy-java, slf4j-api: no slf4j binding, so the client
# logs nothing), and Jackson.
classpath() {
  local libs=$1 v=$2 cp="" pat f hits
  for pat in "kafka-clients-$v.jar" 'zstd-jni-*.jar' 'lz4-java-*.jar' 'snappy-java-*.jar' 'slf4j-api-*.jar' \
    'jackson-core-*.jar' 'jackson-databind-*.jar' 'jackson-annotations-*.jar'; do
    # shellcheck disable=SC2206
    hits=($libs/$pat)
    [ -f "${hits[0]}" ] || { echo "java-peer.sh: no $pat in $libs" >&2; exit 1; }
    for f in "${hits[@]}"; do cp+="${cp:+:}$f"; done
  done
  echo "$cp"
}

build() {
  local v hash dir libs cp
  v=$(version "${1:-}")
  hash=$( (cat "$SRC"/*.java "$0"; echo "$v") | sha256sum | cut -c1-16)
  dir=$CACHE/java-peer-$hash
  if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
  libs=$("$HERE/kafka.sh" libs "$v")
  command -v javac >/dev/null || {
    echo "java-peer.sh: javac is missing: apt-get install openjdk-17-jdk-headless" >&2
    exit 1
  }
  cp=$(classpath "$libs" "$v")
  mkdir -p "$CACHE"
  exec 9>"$CACHE/java-peer.lock"
  flock 9
  if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
  echo "java-peer.sh: building the Java peer against kafka-clients $v into $dir" >&2
  rm -rf "$dir" && mkdir -p "$dir/classes"
  javac -Xlint:all -Werror -d "$dir/classes" -cp "$cp" "$SRC"/*.java >&2
  # A jar, not a directory: class-data sharing archives classes from jars only.
  jar --create --file "$dir/peer.jar" -C "$dir/classes" .
  echo "$cp:$dir/peer.jar" >"$dir/classpath"
  # A dry run that loads the producer's, consumer's and admin's classes (nothing listens on
  # port 9): the archive of what it loaded starts later JVMs faster. Optional: without it
  # (say the JVM refuses to write one) the peer just starts slower.
  java -XX:ArchiveClassesAtExit="$dir/peer.jsa" "${FLAGS[@]}" -cp "$cp:$dir/peer.jar" Peer session \
    --bootstrap 127.0.0.1:9 >/dev/null 2>&1 <<'EOF' || rm -f "$dir/peer.jsa"
{"cmd": "version"}
{"cmd": "open", "name": "warm", "codec": "zstd", "idempotence": "false"}
{"cmd": "close", "name": "warm"}
{"cmd": "consume", "topic": "warm", "partitions": [0], "timeout_ms": 1, "positions": false}
EOF
  touch "$dir/.complete"
  echo "$dir"
}

# command_lines VERSION FLAGS...: java, the class-data archive, FLAGS, the classpath, the class.
command_lines() {
  local dir
  dir=$(build "${1:-}")
  shift
  echo java
  if [ -f "$dir/peer.jsa" ]; then printf '%s\n' "-XX:SharedArchiveFile=$dir/peer.jsa" -Xshare:auto; fi
  if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
  printf '%s\n' -cp "$(cat "$dir/classpath")" Peer
}

case "${1:-}" in
  build) build "${2:-}" ;;
  command) command_lines "${2:-}" "${FLAGS[@]}" ;;
  perf-command) command_lines "${2:-}" "${PERF_FLAGS[@]}" ;;
  run | perf)
    if [ "$1" = run ]; then flags=("${FLAGS[@]}"); else flags=("${PERF_FLAGS[@]}"); fi
    shift
    mapfile -t cmd < <(command_lines "" "${flags[@]}")
    exec "${cmd[@]}" "$@"
    ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
