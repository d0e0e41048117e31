#!/usr/bin/env bash
# Runs every test: the generated code is up to date and formatted, unit and doc tests,
# property tests (every message at every version), golden bytes from real clients, the
# differential check against the kafka-protocol crate, the integration tests against Apache
# Kafka 4.4 (a shared single node for the run, started here; tests that kill or freeze brokers
# start their own), the declared subset again against Apache Kafka 3.9, then the fuzz targets
# (the committed corpus replayed, and each target run for $FUZZ_SECONDS, default 60, seconds),
# and last the quickstart against a real broker. Ends with one line: "tests: N passed, N failed".
#
#   scripts/setup.sh && scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

step() { printf '\n== %s\n' "$*"; }
# Every cargo test's output also goes to this log; the last line sums them.
counts=$(mktemp)

step "generated code is up to date (kafkit-codegen --check)"
cargo run -q -p kafkit-codegen -- --check

step "formatting"
cargo fmt --all -- --check
(cd crates/kafkit-protocol/fuzz && cargo fmt -- --check)

step "API docs build without warnings (broken links included)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --workspace --no-deps

# The run's shared Apache Kafka nodes (kafkit-testbed's Cluster::shared), stopped on exit.
export KAFKIT_CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
run="$KAFKIT_CACHE/run/test-$$"
trap 'rm -f "$counts"; scripts/kafka.sh stop "$run-4.4.0" KILL; scripts/kafka.sh stop "$run-3.9.2" KILL' EXIT

step "unit, doc, property, golden, differential and integration tests (Apache Kafka 4.4.0)"
export KAFKIT_TEST_CLUSTER
# --jmx: kafkit-peers' comparison test counts the requests the node handles.
KAFKIT_TEST_CLUSTER=$(scripts/kafka.sh start "$run-4.4.0" --version 4.4.0 --jmx --owner $$)
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee -a "$counts"
scripts/kafka.sh stop "$run-4.4.0" KILL

# The older line many users still run: produce, fetch, groups, offsets, admin and security.
# Tests whose expectations differ between versions say so (Cluster::version()).
step "the Apache Kafka 3.9 subset: ${KAFKA_39_TESTS:=writer reader group cluster conn offsets admin admin_acl tls sasl_kafka read_committed}"
KAFKIT_TEST_CLUSTER=$(scripts/kafka.sh start "$run-3.9.2" --version 3.9.2 --owner $$)
KAFKIT_KAFKA_VERSION=3.9.2 cargo test --no-fail-fast -p kafkit $(printf -- '--test %s ' $KAFKA_39_TESTS) 2>&1 | tee -a "$counts"
scripts/kafka.sh stop "$run-3.9.2" KILL

step "fuzz: corpus replay, then ${FUZZ_SECONDS}s per target"
(
  cd crates/kafkit-protocol/fuzz
  cargo test -q 2>&1 | tee -a "$counts"
  export RUSTC_BOOTSTRAP=1 # cargo-fuzz passes -Z flags; the machine's toolchain is stable
  for t in decode_message record_batch; do
    cargo fuzz build -O "$t"
    log=$(mktemp)
    # Replay: every committed seed runs once and must pass.
    if ! cargo fuzz run -O "$t" corpus/"$t" -- -runs=0 -rss_limit_mb=2048 >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "fuzz: $t failed on its committed corpus" >&2
      exit 1
    fi
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" | tail -n 1 || true
    mkdir -p corpus-run/"$t"
    # New inputs go to the scratch corpus-run/ (ignored by git); the seeds are read only.
    if ! cargo fuzz run -O "$t" corpus-run/"$t" corpus/"$t" -- \
      -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 >"$log" 2>&1; then
      tail -n 60 "$log" >&2
      echo "fuzz: $t found a failing input (see fuzz/artifacts/$t)" >&2
      exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    rm -f "$log"
  done
)

step "quickstart against a real broker"
scripts/quickstart.sh

# The 2 fuzz targets and the quickstart count as one test each.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p + 3, f }' "$counts"
