#!/usr/bin/env bash
# Transactional produce throughput and client CPU: kafkit (`kafkit perf produce
# --transactional-id`, release build) beside the Java client (scripts/java-peer's `txn_perf`,
# kafka-clients of KAFKIT_KAFKA_VERSION, default 4.4.0), on one Apache Kafka node of its own.
#
#   scripts/txn-bench.sh [REPS] [CELLS]
#
# REPS: repetitions [3]. CELLS: "RECORDS_PER_TXN:RECORDS ..." ["1:1500 100:30000 10000:600000"].
# Every run: a fresh 6-partition topic, 100-byte values of random text (the same bytes from
# both clients), 16-byte keys (the record's number; murmur2 partitioning in both), acks=all,
# linger 5 ms, batch size 1 MiB. The two clients alternate which goes first (by repetition and
# cell) so that other load on the machine falls on both alike. Prints each run as a JSON line
# (also into $OUT, default /tmp/txn-bench.jsonl), then a Markdown table of the medians.
# The client CPU is that of the timed part (after initTransactions), every thread included.
# The JVM runs with its defaults (a real application's: C2, the default collector).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
REPS=${1:-3}
CELLS=${2:-"1:1500 100:30000 10000:600000"}
OUT=${OUT:-/tmp/txn-bench.jsonl}
export KAFKIT_CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
VERSION=${KAFKIT_KAFKA_VERSION:-4.4.0}

(cd "$ROOT" && cargo build --release -q -p kafkit-cli --bin kafkit)
KAFKIT=${CARGO_TARGET_DIR:-$ROOT/target}/release/kafkit
PEER=$("$HERE/java-peer.sh" build "$VERSION")
CP=$(cat "$PEER/classpath")

DIR=$(mktemp -d /tmp/txn-bench-broker.XXXXXX)
trap '"$HERE/kafka.sh" stop "$DIR" KILL >/dev/null 2>&1 || true' EXIT
ENV=$("$HERE/kafka.sh" start "$DIR" --version "$VERSION" | tail -1)
B=$(sed -n 's/^BOOTSTRAP_PLAINTEXT=//p' "$ENV")

: >"$OUT"
run() { # CLIENT PER_TXN RECORDS REP
  local client=$1 per=$2 n=$3 rep=$4 t line
  t=txn-bench-$client-$per-$rep-$RANDOM
  "$KAFKIT" --brokers "$B" topics create "$t" --partitions 6 >/dev/null
  if [ "$client" = kafkit ]; then
    line=$("$KAFKIT" --brokers "$B" perf produce "$t" --records "$n" --record-size 100 --key-size 16 \
      --random-values --linger 5ms --batch-size 1048576 --acks all \
      --transactional-id "$t" --transaction-records "$per" --json)
  else
    line=$(java -cp "$CP" Peer txn_perf --bootstrap "$B" --topic "$t" --transactional-id "$t" \
      --records "$n" --txn-records "$per" --record-size 100 --key-size 16 --linger-ms 5 \
      --batch-size 1048576 2>/dev/null | grep '"done"')
  fi
  echo "{\"client\":\"$client\",\"per_txn\":$per,\"rep\":$rep,\"load1\":$(cut -d' ' -f1 /proc/loadavg),\"run\":$line}" | tee -a "$OUT"
}

i=0
for rep in $(seq 1 "$REPS"); do
  for cell in $CELLS; do
    per=${cell%%:*} n=${cell##*:}
    if [ $((i % 2)) = 0 ]; then run kafkit "$per" "$n" "$rep"; run java "$per" "$n" "$rep"
    else run java "$per" "$n" "$rep"; run kafkit "$per" "$n" "$rep"; fi
    i=$((i + 1))
  done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cells = {}
for r in rows:
    cells.setdefault((r["per_txn"], r["client"]), []).append(r)
print("| records/txn | client | records | records/s | transactions/s | µs client CPU/record | runs | load (1-min) |")
print("|---:|---|---:|---:|---:|---:|---:|---|")
for (per, client) in sorted(cells, key=lambda k: (k[0], k[1] != "kafkit")):
    rs = cells[(per, client)]
    med = lambda f: statistics.median(f(r["run"]) for r in rs)
    rps = med(lambda x: x["records_per_sec"])
    tps = med(lambda x: x.get("transactions_per_sec", 0))
    cpu = med(lambda x: x["cpu_us_per_record"])
    loads = "–".join(f"{x:.1f}" for x in (min(r["load1"] for r in rs), max(r["load1"] for r in rs)))
    print(f"| {per} | {client} | {rs[0]['run']['records']} | {rps:,.0f} | {tps:,.1f} | {cpu:.1f} | {len(rs)} | {loads} |")
PY
