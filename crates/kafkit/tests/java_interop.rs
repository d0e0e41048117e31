//! Interop with the Apache Kafka Java client (kafka-clients 4.4, the reference client) on Apache
//! Kafka 4.4, both ways: what kafkit's `Writer` writes the Java consumer reads identically, and
//! what the Java producer writes kafkit's `Reader` reads identically, with every codec, keys,
//! null keys, null values, headers (empty, binary and null values), a 1 MiB value, idempotent
//! and plain producers on both sides, and transactional producers both ways (aborted
//! transactions invisible to read_committed either way); and for 2,400 keys
//! `Murmur2Balancer` puts each record on the partition the Java producer's default partitioner
//! puts it on, as read back from the broker.
//!
//! The Java side is kafkit-testbed's Java peer (`scripts/java-peer/Peer.java`), one JVM per test.

mod common;
mod peers;

use bytes::Bytes;
use common::unique_topic;
use kafkit::{
    Acks, Compression, IsolationLevel, Message, Murmur2Balancer, Reader, ReaderConfig, TopicConfig, TopicPartition,
    Writer, WriterConfig,
};
use peers::{assert_same_records, from_json, millis, sample, to_json, Java, BIG_MESSAGES};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

/// Reads `n` messages from `reader`, each within 30 s.
async fn read_n(reader: &mut Reader, n: usize) -> Vec<Message> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), reader.read_message()).await {
            Ok(m) => got.push(m.expect("read")),
            Err(_) => panic!("{} of {n} messages arrived within 30 s of each other", got.len()),
        }
    }
    got
}

/// Waits (up to 10 s) until `reader` stands at `offset`: it moves past control records
/// without handing anything out.
async fn wait_offset(reader: &Reader, offset: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.offset() != offset {
        assert!(Instant::now() < deadline, "the reader stands at {}, not {offset}", reader.offset());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_kafkit_writes_the_java_client_reads_identically() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let want = sample(true);
    let mut written = Vec::new();
    for (i, codec) in CODECS.into_iter().enumerate() {
        let topic = unique_topic(&format!("java-from-kafkit-{codec}"));
        common::create_topics(&addr, &[TopicConfig::new(&topic, 1).with_config(BIG_MESSAGES.0, BIG_MESSAGES.1)]).await;
        // Idempotent (the default: acks=all) for none, snappy and zstd; a plain acks=1 writer
        // for gzip and lz4.
        let idempotent = i % 2 == 0;
        let mut cfg = WriterConfig::default().with_topic(&topic).with_compression(codec).with_idempotent(idempotent);
        if !idempotent {
            cfg = cfg.with_acks(Acks::Leader);
        }
        let w = Writer::new(&[&addr], cfg).await.unwrap();
        // Two writes: the small records in batches of their own, then the 1 MiB one.
        let mut delivered = w.write_messages(want[..6].to_vec()).await.unwrap();
        delivered.extend(w.write_messages(want[6..].to_vec()).await.unwrap());
        w.close().await.unwrap();
        let offsets: Vec<i64> = delivered.iter().map(|d| d.offset).collect();
        assert_eq!(offsets, (0..want.len() as i64).collect::<Vec<_>>(), "{codec}");
        written.push((codec, topic, idempotent));
    }

    let mut java = Java::start(&addr);
    for (codec, topic, idempotent) in &written {
        let (lines, done) = java.call(json!({"cmd": "consume", "topic": topic, "count": want.len()}));
        let what = format!("Java consumer, kafkit {codec} (idempotent: {idempotent})");
        let got: Vec<Message> = lines.iter().map(from_json).collect();
        assert_same_records(&got, &want, &what);
        for (i, (m, l)) in got.iter().zip(&lines).enumerate() {
            assert_eq!((m.partition, m.offset), (0, i as i64), "{what}");
            assert_eq!(l["timestamp_type"], "CreateTime", "{what}");
        }
        assert_eq!(done["positions"]["0"], want.len(), "{what}");
    }
}

/// Java producer settings per codec: idempotent (the Java default), plain acks=1, and
/// transactional (one committed transaction).
fn java_producer(codec: Compression, topic: &str) -> Value {
    let mut cmd = json!({"cmd": "produce", "topic": topic, "codec": codec.name(), "partition": 0, "linger_ms": 5});
    match codec {
        Compression::Gzip => {
            cmd["idempotence"] = json!("false");
            cmd["acks"] = json!("1");
        }
        Compression::Lz4 | Compression::Zstd => cmd["transactional_id"] = json!(unique_topic("java-txn")),
        _ => {}
    }
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_java_client_writes_kafkit_reads_identically() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let want = sample(true);
    let records: Vec<Value> = want.iter().map(to_json).collect();
    let mut java = Java::start(&addr);
    for codec in CODECS {
        let topic = unique_topic(&format!("kafkit-from-java-{codec}"));
        common::create_topics(&addr, &[TopicConfig::new(&topic, 1).with_config(BIG_MESSAGES.0, BIG_MESSAGES.1)]).await;
        let mut cmd = java_producer(codec, &topic);
        cmd["records"] = json!(records);
        let transactional = cmd.get("transactional_id").is_some();
        let (acks, done) = java.call(cmd);
        assert_eq!(done["records"], want.len());
        let what = format!("Java {codec} producer (transactional: {transactional}), kafkit reader");

        let isolation = if transactional { IsolationLevel::ReadCommitted } else { IsolationLevel::ReadUncommitted };
        let mut r = Reader::new(&[&addr], ReaderConfig::new(&topic, 0).with_isolation(isolation)).await.unwrap();
        let got = read_n(&mut r, want.len()).await;
        assert_same_records(&got, &want, &what);
        for (m, a) in got.iter().zip(&acks) {
            // Where and when the Java producer was told each record was written.
            assert_eq!(
                (m.partition as i64, m.offset),
                (a["partition"].as_i64().unwrap(), a["offset"].as_i64().unwrap())
            );
            assert_eq!(millis(m.time.unwrap()), a["timestamp"].as_i64().unwrap(), "{what}");
        }
        assert_eq!(got.iter().map(|m| m.offset).collect::<Vec<_>>(), (0..want.len() as i64).collect::<Vec<_>>());
        // A transaction ends with its commit marker: the reader moves past it.
        wait_offset(&r, want.len() as i64 + i64::from(transactional)).await;
        assert!(tokio::time::timeout(Duration::from_millis(500), r.read_message()).await.is_err(), "{what}: more");
    }
}

/// 1,200 keys of many shapes: text, binary of lengths 1-64, 8-byte big-endian numbers, and
/// the empty key (which the Java partitioner hashes like any other key).
fn keys() -> Vec<Bytes> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..1200u64)
        .map(|i| match i % 4 {
            _ if i == 0 => Bytes::new(),
            0 => Bytes::from(format!("user-{i}")),
            1 => Bytes::from((0..1 + next() % 64).map(|_| next() as u8).collect::<Vec<u8>>()),
            2 => Bytes::from(format!("{:016x}-{:08x}", next(), i)),
            _ => Bytes::copy_from_slice(&(next() ^ i).to_be_bytes()),
        })
        .collect()
}

/// Reads `n` messages of every partition of `topic` back: partition by value (the record's
/// index).
async fn partitions_of(addr: &str, topic: &str, partitions: i32, n: usize) -> BTreeMap<usize, i32> {
    let parts = (0..partitions).map(|p| TopicPartition::new(topic, p));
    let mut r = Reader::new(&[addr], ReaderConfig::assign(parts)).await.unwrap();
    let got = read_n(&mut r, n).await;
    let by_index: BTreeMap<usize, i32> = got
        .iter()
        .map(|m| (std::str::from_utf8(m.value.as_deref().unwrap()).unwrap().parse::<usize>().unwrap(), m.partition))
        .collect();
    assert_eq!(by_index.len(), n, "{topic}: each record once");
    by_index
}

#[tokio::test(flavor = "multi_thread")]
async fn murmur2_balancer_picks_the_partition_the_java_producer_picks() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let keys = keys();
    let mut java = Java::start(&addr);
    let mut compared = 0;
    for partitions in [6, 17] {
        let (java_topic, kafkit_topic) = (unique_topic("murmur2-java"), unique_topic("murmur2-kafkit"));
        common::create_topics(
            &addr,
            &[TopicConfig::new(&java_topic, partitions), TopicConfig::new(&kafkit_topic, partitions)],
        )
        .await;
        // The Java producer with its default partitioner (no partition given; keyed records are
        // placed by murmur2 of the key over the topic's partition count).
        let records: Vec<Value> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                to_json(
                    &Message::new(Some(k.clone()), Some(Bytes::from(i.to_string())))
                        .with_time(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                )
            })
            .collect();
        let (acks, _) = java.call(json!({"cmd": "produce", "topic": java_topic, "records": records, "linger_ms": 5}));
        let w = Writer::new(
            &[&addr],
            WriterConfig::default().with_topic(&kafkit_topic).with_balancer(Murmur2Balancer::new()),
        )
        .await
        .unwrap();
        let msgs =
            keys.iter().enumerate().map(|(i, k)| Message::new(Some(k.clone()), Some(Bytes::from(i.to_string()))));
        w.write_messages(msgs.collect()).await.unwrap();
        w.close().await.unwrap();

        let java_placed = partitions_of(&addr, &java_topic, partitions, keys.len()).await;
        let kafkit_placed = partitions_of(&addr, &kafkit_topic, partitions, keys.len()).await;
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(acks[i]["partition"].as_i64().unwrap() as i32, java_placed[&i], "the Java producer's report");
            assert_eq!(kafkit_placed[&i], java_placed[&i], "key {k:?} on {partitions} partitions");
            compared += 1;
        }
        let used: std::collections::BTreeSet<i32> = java_placed.values().copied().collect();
        assert_eq!(used.len(), partitions as usize, "the keys spread over every partition");
    }
    assert_eq!(compared, 2400);
}

/// kafkit's transactions as the Java client sees them: a transactional `Writer` commits one
/// transaction, aborts the next and commits a third (lz4). Java's read_committed consumer reads
/// exactly the committed records, in order; its read_uncommitted consumer reads all of them.
#[tokio::test]
async fn kafkits_transactions_as_the_java_client_reads_them() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let topic = unique_topic("java-from-kafkit-txn");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    let cfg = WriterConfig::default()
        .with_topic(&topic)
        .with_compression(Compression::Lz4)
        .with_transactional_id(unique_topic("kafkit-txn"));
    let w = Writer::new(&[&addr], cfg).await.unwrap();
    w.init_transactions().await.unwrap();
    let batch = |tag: &str| -> Vec<Message> {
        (0..20)
            .map(|i| Message::new(Some(Bytes::from(format!("k{i}"))), Some(Bytes::from(format!("{tag}-{i}")))))
            .collect()
    };
    let mut committed = Vec::new();
    let mut every = Vec::new();
    for (tag, commit) in [("first", true), ("aborted", false), ("second", true)] {
        w.begin_transaction().await.unwrap();
        let b = batch(tag);
        w.write_messages(b.clone()).await.unwrap();
        if commit {
            w.commit_transaction().await.unwrap();
            committed.extend(b.clone());
        } else {
            w.abort_transaction().await.unwrap();
        }
        every.extend(b);
    }
    w.close().await.unwrap();

    let value = |l: &Value| from_json(l).value.map(|v| String::from_utf8(v.to_vec()).unwrap());
    let values = |ms: &[Message]| {
        ms.iter().map(|m| m.value.as_ref().map(|v| String::from_utf8(v.to_vec()).unwrap())).collect::<Vec<_>>()
    };
    let mut java = Java::start(&addr);
    let (lines, _) =
        java.call(json!({"cmd": "consume", "topic": topic, "count": committed.len(), "isolation": "read_committed"}));
    assert_eq!(lines.iter().map(value).collect::<Vec<_>>(), values(&committed), "Java read_committed");
    let (lines, _) = java.call(json!({"cmd": "consume", "topic": topic, "count": every.len()}));
    assert_eq!(lines.iter().map(value).collect::<Vec<_>>(), values(&every), "Java read_uncommitted");
}
