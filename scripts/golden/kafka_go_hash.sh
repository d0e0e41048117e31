#!/usr/bin/env bash
# Writes crates/kafkit/tests/golden/kafka_go_hash.json from kafka_go_hash.go.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v go >/dev/null || { apt-get update -qq && apt-get install -y -qq golang-go >/dev/null; }
cd "$(mktemp -d)" && cp "$here/kafka_go_hash.go" main.go && GOFLAGS=-mod=mod GO111MODULE=off go run main.go > "$here/../../crates/kafkit/tests/golden/kafka_go_hash.json"
echo "wrote crates/kafkit/tests/golden/kafka_go_hash.json"
