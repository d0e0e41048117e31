#!/usr/bin/env python3
"""Holds a transaction open for kafkit's admin tests (kafkit has no transactional producer
yet): confluent-kafka's (librdkafka's) transactional Producer.

    open_txn.py BROKERS TRANSACTIONAL_ID TOPIC PARTITIONS TIMEOUT_MS

Begins a transaction (transaction.timeout.ms = TIMEOUT_MS), writes one record, value
"txn-P", to each partition P in 0..PARTITIONS-1 of TOPIC, waits for their delivery, and
prints {"ready": true, "offsets": {P: offset}} on stdout. Then it reads one line from stdin:
"commit" or "abort" ends the transaction and prints {"done": "commit"|"abort"}; end of input
exits with the transaction still open (left to the coordinator's timeout).
"""
import json, sys

from confluent_kafka import Producer


def main():
    brokers, txn_id, topic, partitions, timeout_ms = sys.argv[1:6]
    p = Producer({"bootstrap.servers": brokers, "transactional.id": txn_id,
                  "transaction.timeout.ms": int(timeout_ms), "linger.ms": 0})
    p.init_transactions(30)
    p.begin_transaction()
    offsets = {}

    def delivered(err, msg):
        if err is not None:
            raise SystemExit(f"delivery failed: {err}")
        offsets[msg.partition()] = msg.offset()

    for part in range(int(partitions)):
        p.produce(topic, value=f"txn-{part}".encode(), partition=part, on_delivery=delivered)
    assert p.flush(30) == 0, "records not delivered"
    print(json.dumps({"ready": True, "offsets": offsets}), flush=True)
    line = sys.stdin.readline().strip()
    if line == "commit":
        p.commit_transaction(30)
    elif line == "abort":
        p.abort_transaction(30)
    else:
        return
    print(json.dumps({"done": line}), flush=True)


if __name__ == "__main__":
    main()
