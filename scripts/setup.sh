#!/usr/bin/env bash
# Installs what kafkit's tests need that a fresh machine may lack; each step is skipped when
# its result is already there. Caches live in $KAFKIT_CACHE (default ~/.cache/kafkit).
#   - rustfmt (the generator formats its output with it; part of the machine's toolchain)
#   - cargo-fuzz (the fuzz targets)
#   - the pinned Tansu broker (scripts/broker.sh)
#   - confluent-kafka and kafka-python in a venv ($KAFKIT_CACHE/pyenv), for interop tests
#   - stunnel (Debian's stunnel4), the TLS terminator of the TLS tests
#   - Tansu 0.6.0 built from crates.io (scripts/broker.sh install-auth), for the SCRAM tests
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
scripts/protocol-spec.sh >/dev/null
scripts/broker.sh install
scripts/broker.sh install-auth
if ! command -v stunnel >/dev/null 2>&1; then
  echo "setup: installing stunnel4" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq stunnel4 >/dev/null 2>&1 || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq stunnel4 >/dev/null; }
fi
venv="$KAFKIT_CACHE/pyenv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
want=$(grep -vc '^#' scripts/python-clients.txt)
have=$("$venv/bin/pip" freeze 2>/dev/null | grep -cxF -f <(grep -v '^#' scripts/python-clients.txt) || true)
if [ "$have" != "$want" ]; then
  "$venv/bin/pip" install -q -r scripts/python-clients.txt
fi
echo "setup: ok (rustfmt $(rustfmt --version | cut -d' ' -f2), $(cargo fuzz --version), tansu $(scripts/broker.sh path), $(stunnel -version 2>&1 | grep -m1 -o 'stunnel [0-9.]*'))"
