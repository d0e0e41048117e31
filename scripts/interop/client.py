#!/usr/bin/env python3
"""An independent Kafka client for kafkit's interop tests: confluent-kafka (librdkafka) or
kafka-python, producing records given as JSON lines on stdin, or consuming a partition and
printing its records as JSON lines. Bytes are base64; null is null.

    client.py produce ck|kp BROKERS TOPIC CODEC  < records.jsonl
    client.py consume ck|kp BROKERS TOPIC COUNT  > records.jsonl
    client.py txn ck BROKERS TOPIC PLAN          # PLAN like c3,a2,c3: commit 3, abort 2, ...

A record: {"key": b64|null, "value": b64|null, "headers": [[name, b64|null], ...],
"timestamp": ms}; consume adds "offset".
"""
import base64, json, logging, sys, time

# The clients' own warnings (a failed fetch, a codec error) go to stderr, which the tests show
# when a command fails.
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

def b64(b):
    return None if b is None else base64.b64encode(b).decode()

def unb64(s):
    return None if s is None else base64.b64decode(s)

def produce(client, brokers, topic, codec):
    recs = [json.loads(l) for l in sys.stdin if l.strip()]
    if client == "ck":
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": brokers, "compression.type": codec, "linger.ms": 20,
                      "message.max.bytes": 16 << 20})
        for r in recs:
            p.produce(topic, key=unb64(r["key"]), value=unb64(r["value"]), partition=0,
                      headers=[(k, unb64(v)) for k, v in r["headers"]] or None, timestamp=r["timestamp"])
        assert p.flush(30) == 0, "confluent-kafka did not deliver everything"
    else:
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=brokers, compression_type=None if codec == "none" else codec,
                          linger_ms=20, max_request_size=16 << 20)
        futs = [p.send(topic, key=unb64(r["key"]), value=unb64(r["value"]), partition=0,
                       headers=[(k, unb64(v)) for k, v in r["headers"]], timestamp_ms=r["timestamp"])
                for r in recs]
        for f in futs:
            f.get(timeout=30)
        p.close()

def consume(client, brokers, topic, count):
    out, deadline = [], time.time() + 60
    if client == "ck":
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": brokers, "group.id": "interop-" + topic, "enable.auto.commit": False,
                      "fetch.message.max.bytes": 16 << 20, "receive.message.max.bytes": 64 << 20})
        c.assign([TopicPartition(topic, 0, 0)])
        while len(out) < count and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise SystemExit(f"consume error: {m.error()}")
            out.append({"offset": m.offset(), "key": b64(m.key()), "value": b64(m.value()),
                        "headers": [[k, b64(v)] for k, v in (m.headers() or [])], "timestamp": m.timestamp()[1]})
        c.close()
    else:
        from kafka import KafkaConsumer, TopicPartition
        c = KafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, max_partition_fetch_bytes=16 << 20,
                          fetch_max_bytes=64 << 20, consumer_timeout_ms=60000)
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        for m in c:
            out.append({"offset": m.offset, "key": b64(m.key), "value": b64(m.value),
                        "headers": [[k, b64(v)] for k, v in (m.headers or [])], "timestamp": m.timestamp})
            if len(out) >= count:
                break
        c.close()
    if len(out) < count:
        raise SystemExit(f"{client} read {len(out)} of {count} records of {topic} within 60 s")
    for r in out:
        print(json.dumps(r))

def txn(brokers, topic, plan):
    """Transactions with confluent-kafka: values c0, c1, ... in committed ones and a0, a1, ...
    in aborted ones, in plan order, on partition 0."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": brokers, "transactional.id": "kafkit-interop-" + topic})
    p.init_transactions(30)
    n = {"c": 0, "a": 0}
    for step in plan.split(","):
        kind, count = step[0], int(step[1:])
        p.begin_transaction()
        for _ in range(count):
            p.produce(topic, value=f"{kind}{n[kind]}".encode(), partition=0)
            n[kind] += 1
        p.flush(30)
        if kind == "c":
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)

if __name__ == "__main__":
    cmd, client, brokers, topic, arg = sys.argv[1:6]
    if cmd == "txn":
        txn(brokers, topic, arg)
    elif cmd == "produce":
        produce(client, brokers, topic, arg)
    else:
        consume(client, brokers, topic, int(arg))
