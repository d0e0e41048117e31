#!/usr/bin/env bash
# Installs what kafkit's tests need that a fresh machine may lack; each step is skipped when
# its result is already there. Caches live in $KAFKIT_CACHE (default ~/.cache/kafkit).
#   - rustfmt (the generator formats its output with it; part of the machine's toolchain)
#   - cargo-fuzz (the fuzz targets)
#   - Apache Kafka 4.4.0 and 3.9.2 from Maven Central (scripts/kafka.sh install), with Java 17
#     and Maven from Debian when the machine lacks them
#   - the Java client peer of the interop tests (scripts/java-peer.sh: javac against
#     kafka-clients 4.4.0)
#   - the Go peers of the side-by-side harness (scripts/go-peer.sh: franz-go and kafka-go from
#     the Go module proxy, built with the machine's Go)
#   - the pinned Tansu broker (scripts/broker.sh), for kafkit-peers' side-by-side runs
#   - confluent-kafka and kafka-python in a venv ($KAFKIT_CACHE/pyenv), for interop tests
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKIT_CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
mkdir -p "$KAFKIT_CACHE"

if ! command -v rustfmt >/dev/null 2>&1; then
  rustup component add rustfmt
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version 0.13.2 -q
fi
scripts/kafka.sh install 4.4.0
scripts/kafka.sh install 3.9.2
scripts/java-peer.sh build 4.4.0 >/dev/null
scripts/go-peer.sh build >/dev/null
scripts/protocol-spec.sh >/dev/null
scripts/broker.sh install
venv="$KAFKIT_CACHE/pyenv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
want=$(grep -vc '^#' scripts/python-clients.txt)
have=$("$venv/bin/pip" freeze 2>/dev/null | grep -cxF -f <(grep -v '^#' scripts/python-clients.txt) || true)
if [ "$have" != "$want" ]; then
  "$venv/bin/pip" install -q -r scripts/python-clients.txt
fi
echo "setup: ok (rustfmt $(rustfmt --version | cut -d' ' -f2), $(cargo fuzz --version), $(java -version 2>&1 | head -n 1), Kafka in $(dirname "$(scripts/kafka.sh libs 4.4.0)") and $(dirname "$(scripts/kafka.sh libs 3.9.2)"), tansu $(scripts/broker.sh path))"
