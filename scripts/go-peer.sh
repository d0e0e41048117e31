#!/usr/bin/env bash
# The Go peers of the side-by-side harness (`kafkit-peers compare`): scripts/go-peer/, one Go
# program with franz-go (v1.22) and segmentio/kafka-go (v0.4.51), pinned by go.mod and go.sum,
# built into $KAFKIT_CACHE/go-peer-HASH/go-peer (HASH: of the Go sources, go.mod, go.sum and
# this script) only when that binary is missing. Go's module cache, build cache and GOPATH are
# kept under $KAFKIT_CACHE too (go-mod/, go-build/, go-path/), so a machine that built once
# builds again offline. Nothing built is committed.
#
#   scripts/go-peer.sh build         # builds when missing; prints the binary's path
#   scripts/go-peer.sh run ARGS...   # builds when missing, then runs the binary with ARGS
#
# ARGS (scripts/go-peer/main.go's header describes them):
#   <franz-go|kafka-go> <produce|consume> TOPIC --brokers B --records N --record-size S
#   --compression none|lz4 --key-size K --payload-text PATH --json
#
# KAFKIT_CACHE: default ~/.cache/kafkit. Needs Go 1.26 or newer on PATH (or /usr/local/go/bin)
# to build; the build runs under nice -n 19, beside whatever is being timed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
SRC=$HERE/go-peer

build() {
  local hash dir go
  hash=$( (cat "$SRC"/*.go "$SRC"/go.mod "$SRC"/go.sum "$0") | sha256sum | cut -c1-16)
  dir=$CACHE/go-peer-$hash
  if [ -x "$dir/go-peer" ]; then echo "$dir/go-peer"; return; fi
  go=$(command -v go || true)
  if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
  [ -n "$go" ] || { echo "go-peer.sh: go is missing: install Go 1.26 or newer and put it on PATH" >&2; exit 1; }
  mkdir -p "$CACHE"
  exec 9>"$CACHE/go-peer.lock"
  flock 9
  if [ -x "$dir/go-peer" ]; then echo "$dir/go-peer"; return; fi
  echo "go-peer.sh: building the Go peer ($("$go" env GOVERSION)) into $dir" >&2
  rm -rf "$dir" && mkdir -p "$dir"
  # The caches under $KAFKIT_CACHE; this machine's Go (no toolchain download); go.sum as
  # committed (-mod=readonly: a build that would change it fails); modules fetched only when
  # missing from the cache.
  (
    cd "$SRC"
    export GOPATH=$CACHE/go-path GOMODCACHE=$CACHE/go-mod GOCACHE=$CACHE/go-build
    export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -modcacherw" CGO_ENABLED=0
    nice -n 19 "$go" mod download >&2
    nice -n 19 "$go" build -trimpath -o "$dir/go-peer.tmp" . >&2
  )
  # The binary appears under its name only once complete.
  mv "$dir/go-peer.tmp" "$dir/go-peer"
  echo "$dir/go-peer"
}

case "${1:-}" in
  build) build ;;
  run)
    shift
    bin=$(build)
    exec "$bin" "$@"
    ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
