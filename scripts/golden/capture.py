#!/usr/bin/env python3
"""Captures golden protocol bytes from real, independent clients talking to Apache Kafka.

Starts a single Apache Kafka 4.4 node (scripts/kafka.sh, with a PROXIED listener that
advertises the port of a recording TCP proxy, so that every connection of every client goes
through it), runs the Java client (kafka-clients, through scripts/java-peer.sh), confluent-kafka
(librdkafka) and kafka-python through the proxy, and writes every request/response pair of
interest to crates/kafkit-protocol/tests/golden/ (frame bodies without the size prefix) with an
index.json that says what each scenario sent. kafkit's tests decode these bytes and check field
values; they need no broker. Re-run to refresh:

    scripts/golden/capture.sh
"""
import asyncio, base64, json, os, socket, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates/kafkit-protocol/tests/golden")
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# API keys worth keeping: Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,
# FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, ApiVersions, CreateTopics,
# InitProducerId, AddPartitionsToTxn, EndTxn, ConsumerGroupHeartbeat
KEEP = {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 22, 24, 26, 68}
# The Java transactional scenario: committed (c) and aborted (a) transactions, in order.
TXN_PLAN = "c2,a2,c1"

scenario = {"name": "setup"}
pairs = []  # dicts with scenario, api_key, version, correlation_id, req, resp
requests = []  # every request, answered or not


async def pump_frames(reader, writer, on_frame):
    buf = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
        buf += data
        while len(buf) >= 4:
            (n,) = struct.unpack(">i", buf[:4])
            if len(buf) < 4 + n:
                break
            on_frame(buf[4:4 + n]); buf = buf[4 + n:]
    writer.close()


async def handle(creader, cwriter, upstream):
    host, port = upstream.rsplit(":", 1)
    sreader, swriter = await asyncio.open_connection(host, int(port))
    inflight = {}

    def on_request(frame):
        key, ver, corr = struct.unpack(">hhi", frame[:8])
        inflight[corr] = {"scenario": scenario["name"], "api_key": key, "version": ver,
                          "correlation_id": corr, "req": frame}
        requests.append(inflight[corr])

    def on_response(frame):
        (corr,) = struct.unpack(">i", frame[:4])
        p = inflight.pop(corr, None)
        if p is not None:
            p["resp"] = frame; pairs.append(p)

    await asyncio.gather(pump_frames(creader, swriter, on_request),
                         pump_frames(sreader, cwriter, on_response), return_exceptions=True)


def run_proxy(listen, upstream, ready):
    host, port = listen.rsplit(":", 1)

    async def main():
        server = await asyncio.start_server(lambda r, w: handle(r, w, upstream), host, int(port))
        ready.set()
        async with server:
            await server.serve_forever()
    asyncio.run(main())


def records_for(codec, client):
    # Values long and repetitive enough that every codec shrinks them: clients send a batch
    # uncompressed when compressing would not make it smaller.
    return [(f"key-{i}".encode() if i != 2 else None, (f"{client}-{codec}-value-{i}-" + "abc" * 100).encode(),
             [("h", f"hv{i}".encode())] if i != 1 else []) for i in range(3)]


def txn_values():
    out, n = [], {"c": 0, "a": 0}
    for step in TXN_PLAN.split(","):
        for _ in range(int(step[1:])):
            out.append(f"java-txn-{step[0]}{n[step[0]]}"); n[step[0]] += 1
    return out


class JavaPeer:
    """One JVM of scripts/java-peer.sh in session mode: a command per line, answered by its
    output lines and a done line."""

    def __init__(self, bootstrap):
        cmd = subprocess.run([os.path.join(ROOT, "scripts/java-peer.sh"), "command"], check=True,
                             capture_output=True, text=True).stdout.splitlines()
        self.p = subprocess.Popen(cmd + ["session", "--bootstrap", bootstrap], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def call(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n"); self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit(f"the Java peer exited during {cmd['cmd']}")
            out = json.loads(line)
            if "error" in out:
                raise SystemExit(f"the Java peer failed: {out['error']}")
            if "done" in out:
                return lines
            lines.append(out)

    def close(self):
        self.p.stdin.close(); self.p.wait(30)


def java(bootstrap):
    b64 = lambda b: None if b is None else base64.b64encode(b).decode()
    peer = JavaPeer(bootstrap)
    try:
        scenario["name"] = "java-create-topics"
        peer.call(cmd="create_topics", topics=[f"golden-java-{c}" for c in CODECS] + ["golden-java-txn"])
        for codec in CODECS:
            scenario["name"] = f"java-produce-{codec}"
            recs = [{"key": b64(k), "value": b64(v), "headers": [[hk, b64(hv)] for hk, hv in h]}
                    for k, v, h in records_for(codec, "java")]
            peer.call(cmd="produce", topic=f"golden-java-{codec}", codec=codec, partition=0, linger_ms=50,
                      records=recs)
        for codec in CODECS:
            scenario["name"] = f"java-consume-{codec}"
            got = peer.call(cmd="consume", topic=f"golden-java-{codec}", group=f"golden-java-{codec}",
                            session_timeout_ms=6000, count=3, commit="true")
            assert len(got) == 3, f"java consumed {len(got)}"
        # KIP-848: the consumer group protocol (ConsumerGroupHeartbeat) instead of JoinGroup.
        scenario["name"] = "java-kip848"
        got = peer.call(cmd="consume", topic="golden-java-none", group="golden-java-kip848",
                        group_protocol="consumer", count=3, commit="true")
        assert len(got) == 3, f"java (KIP-848) consumed {len(got)}"
        # Transactions, committed and aborted, then read back under read_committed: the Fetch
        # response lists the aborted transaction and carries the markers.
        scenario["name"] = "java-txn"
        recs = [{"key": None, "value": b64(v.encode()), "headers": []} for v in txn_values()]
        peer.call(cmd="produce", topic="golden-java-txn", partition=0, transactional_id="golden-java-txn",
                  txn=TXN_PLAN, records=recs)
        scenario["name"] = "java-txn-read-committed"
        got = peer.call(cmd="consume", topic="golden-java-txn", partitions=[0], isolation="read_committed",
                        count=3, idle_ms=3000)
        assert len(got) == 3, f"java read_committed got {len(got)}"
    finally:
        peer.close()


def ck_read_committed(bootstrap):
    """confluent-kafka reads the Java client's transactions under read_committed."""
    from confluent_kafka import Consumer, TopicPartition
    scenario["name"] = "ck-txn-read-committed"
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "golden-ck-txn", "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("golden-java-txn", 0, 0)])
    got, deadline = [], time.time() + 30
    while len(got) < 3 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    assert got == [v for v in txn_values() if "-c" in v], f"ck read_committed got {got}"
    c.close()


def ck(bootstrap):
    from confluent_kafka import Producer, Consumer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    scenario["name"] = "ck-create-topics"
    fs = admin.create_topics([NewTopic(f"golden-{cl}-{c}", 1, 1) for cl in ("ck", "kp") for c in CODECS])
    for f in fs.values():
        f.result(10)
    time.sleep(1)  # the new partitions' leaders answer NOT_LEADER_OR_FOLLOWER for a moment
    for codec in CODECS:
        scenario["name"] = f"ck-produce-{codec}"
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 50})
        for k, v, h in records_for(codec, "ck"):
            p.produce(f"golden-ck-{codec}", value=v, key=k, headers=h or None, partition=0)
        assert p.flush(10) == 0
    for codec in CODECS:
        scenario["name"] = f"ck-consume-{codec}"
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"golden-ck-{codec}",
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                      "heartbeat.interval.ms": 500, "enable.auto.commit": False})
        c.subscribe([f"golden-ck-{codec}"])
        got, deadline = [], time.time() + 30
        while len(got) < 3 and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m)
        assert len(got) == 3, f"ck consumed {len(got)}"
        c.commit(asynchronous=False)
        c.close()


def kp(bootstrap):
    from kafka import KafkaProducer, KafkaConsumer
    for codec in CODECS:
        scenario["name"] = f"kp-produce-{codec}"
        p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec,
                          linger_ms=50)
        for k, v, h in records_for(codec, "kp"):
            p.send(f"golden-kp-{codec}", value=v, key=k, headers=h, partition=0)
        p.flush(10); p.close()
    for codec in CODECS:
        scenario["name"] = f"kp-consume-{codec}"
        c = KafkaConsumer(f"golden-kp-{codec}", bootstrap_servers=bootstrap, group_id=f"golden-kp-{codec}",
                          auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
                          consumer_timeout_ms=20000, enable_auto_commit=False)
        got = []
        for m in c:
            got.append(m)
            if len(got) == 3:
                break
        assert len(got) == 3, f"kp consumed {len(got)}"
        c.commit(); c.close()


def kp_legacy(bootstrap):
    """kafka-python pinned to old protocol versions writes legacy message sets: magic 1
    (api_version 0.10) and magic 0 (0.9), plain and in compressed wrappers. Kafka 4 removed
    those Produce versions (KIP-896) and closes the connection: the request is what we keep."""
    from kafka import KafkaProducer
    for magic, api in ((1, (0, 10, 1)), (0, (0, 9))):
        for codec in ("none", "gzip", "snappy"):
            scenario["name"] = f"kp-legacy{magic}-{codec}"
            try:
                p = KafkaProducer(bootstrap_servers=bootstrap, api_version=api, linger_ms=50,
                                  compression_type=None if codec == "none" else codec, max_block_ms=5000,
                                  request_timeout_ms=3000, retries=0)
                for k, v, _ in records_for(codec, f"kp-legacy{magic}"):
                    p.send(f"golden-kp-legacy{magic}-{codec}", value=v, key=k, partition=0)
                p.flush(5)
            except Exception as e:
                print("legacy produce:", e)
            try:
                p.close(timeout=2)
            except Exception as e:
                print("legacy close:", e)


def kafka_env(path):
    return dict(l.strip().split("=", 1) for l in open(path) if "=" in l)


def main():
    cluster = tempfile.mkdtemp(prefix="kafkit-golden-")
    env_file = subprocess.run([os.path.join(ROOT, "scripts/kafka.sh"), "start", cluster, "--proxied",
                               "--owner", str(os.getpid())], check=True, capture_output=True,
                              text=True).stdout.split()[-1]
    env = kafka_env(env_file)
    upstream, listen = env["NODE1_PROXIED"], env["NODE1_PROXIED_ADVERTISED"]
    ready = threading.Event()
    threading.Thread(target=run_proxy, args=(listen, upstream, ready), daemon=True).start()
    ready.wait(5)
    try:
        ck(listen)
        kp(listen)
        java(listen)
        ck_read_committed(listen)
        kp_legacy(listen)
        time.sleep(0.5)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts/kafka.sh"), "stop", cluster], check=False)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".bin") or f == "index.json":
            os.remove(os.path.join(OUT, f))
    seen, index = set(), []
    answered_produce = {p["scenario"] for p in pairs if p["api_key"] == 0}
    unanswered, seen_scen = [], set()
    for r in requests:
        if ("resp" not in r and "legacy" in r["scenario"] and r["api_key"] == 0
                and r["scenario"] not in answered_produce and r["scenario"] not in seen_scen):
            seen_scen.add(r["scenario"]); unanswered.append(r)
    for p in pairs + unanswered:
        if p["api_key"] not in KEEP:
            continue
        k = (p["scenario"], p["api_key"], p["version"])
        if k in seen and (p["api_key"] not in (0, 1, 26) or "legacy" in p["scenario"]):
            continue
        if p["api_key"] == 1 and len(p["resp"]) < 120:
            continue  # an empty long-poll fetch: nothing to check
        seen.add(k)
        name = f"{p['scenario']}-k{p['api_key']}-v{p['version']}-c{p['correlation_id']}"
        for part in ("req", "resp"):
            if part not in p:
                continue
            with open(os.path.join(OUT, f"{name}.{part}.bin"), "wb") as f:
                f.write(p[part])
        index.append({"name": name, "scenario": p["scenario"], "api_key": p["api_key"],
                      "version": p["version"], "correlation_id": p["correlation_id"], "answered": "resp" in p})
    meta = {"broker": f"Apache Kafka {env['KAFKA_VERSION']} (scripts/kafka.sh, one KRaft node)",
            "advertised_port": int(listen.rsplit(":", 1)[1]), "node_id": 1,
            "clients": {"java": "kafka-clients " + env["KAFKA_VERSION"],
                        "confluent-kafka": __import__("confluent_kafka").version()[0],
                        "librdkafka": __import__("confluent_kafka").libversion()[0],
                        "kafka-python": __import__("kafka").__version__},
            "records": {c: {cl: [[k.decode() if k else None, v.decode(), [[hk, hv.decode()] for hk, hv in h]]
                                 for k, v, h in records_for(c, cl)]
                            for cl in ("ck", "kp", "java", "kp-legacy1", "kp-legacy0")} for c in CODECS},
            "txn": {"plan": TXN_PLAN, "values": txn_values()},
            "pairs": index}
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{len(index)} pairs written to {OUT}")


if __name__ == "__main__":
    main()
