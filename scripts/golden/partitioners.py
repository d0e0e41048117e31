#!/usr/bin/env python3
"""Records which partition librdkafka's partitioners pick for 1,200 keys, as the reference
for kafkit's Murmur2Balancer (= the Java client's default partitioner; librdkafka
`murmur2_random`) and CRC32Balancer (librdkafka `consistent_random`).

Produces each key through confluent-kafka into topics of 7 and 64 partitions on a single
Apache Kafka node (scripts/kafka.sh), reads back where each landed, and writes
crates/kafkit/tests/golden/partitioners.json. Run with the venv of capture.sh:

    ~/.cache/kafkit/pyenv/bin/python scripts/golden/partitioners.py
"""
import json, os, subprocess, tempfile, time
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates/kafkit/tests/golden/partitioners.json")

def keys():
    ks = [f"key-{i}" for i in range(1000)]
    ks += [f"user:{i * 7919}" for i in range(100)]
    ks += ["", "a", "ab", "abc", "abcd", "21", "foobar", "日本語のキー", "a-little-bit-long-string"]
    ks += [("x" * n) for n in range(1, 92)]
    return ks

def main():
    cluster = tempfile.mkdtemp(prefix="kafkit-partitioners-")
    env_file = subprocess.run([os.path.join(ROOT, "scripts/kafka.sh"), "start", cluster, "--owner", str(os.getpid())],
                              check=True, capture_output=True, text=True).stdout.split()[-1]
    env = dict(l.strip().split("=", 1) for l in open(env_file) if "=" in l)
    b = env["BOOTSTRAP_PLAINTEXT"]
    out = {"client": "confluent-kafka " + __import__("confluent_kafka").version()[0],
           "librdkafka": __import__("confluent_kafka").libversion()[0], "cases": []}
    try:
        admin = AdminClient({"bootstrap.servers": b})
        for parts in (7, 64):
            for partitioner in ("murmur2_random", "consistent_random"):
                topic = f"part-{partitioner}-{parts}"
                admin.create_topics([NewTopic(topic, parts, 1)])[topic].result(10)
                time.sleep(1)  # new partitions' leaders answer NOT_LEADER_OR_FOLLOWER for a moment
                p = Producer({"bootstrap.servers": b, "partitioner": partitioner, "linger.ms": 5})
                for k in keys():
                    p.produce(topic, key=k.encode(), value=k.encode())
                assert p.flush(20) == 0
                c = Consumer({"bootstrap.servers": b, "group.id": topic, "enable.auto.commit": False})
                c.assign([TopicPartition(topic, i, 0) for i in range(parts)])
                seen, deadline = {}, time.time() + 60
                while len(seen) < len(set(keys())) and time.time() < deadline:
                    m = c.poll(0.5)
                    if m is not None and not m.error():
                        seen[m.value().decode()] = m.partition()
                c.close()
                assert len(seen) == len(set(keys())), (topic, len(seen))
                out["cases"].append({"partitioner": partitioner, "partitions": parts, "picks": seen})
    finally:
        subprocess.run([os.path.join(ROOT, "scripts/kafka.sh"), "stop", cluster], check=False)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=0, ensure_ascii=False, sort_keys=True)
    print(f"{sum(len(c['picks']) for c in out['cases'])} picks written to {OUT}")

if __name__ == "__main__":
    main()
