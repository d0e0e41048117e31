//! read_committed (KIP-98) against transactions the Apache Kafka Java client (kafka-clients 4.4)
//! writes on Apache Kafka 4.4: records of aborted transactions are never delivered, whether
//! their batches are compressed or not, with several transactional producers interleaved on
//! one partition; control records are skipped (the reader's position moves past the markers);
//! and a reader (of one partition, or a consumer-group member) stops at the last stable offset
//! while a transaction is open, with its lag measured to that offset, until the transaction
//! commits.
//!
//! The Java side is kafkit-testbed's Java peer (`scripts/java-peer/Peer.java`), one JVM per test.
//! (`kafkit consume` has no isolation option yet, so the CLI is not covered here.)

mod common;
mod peers;

use bytes::Bytes;
use common::unique_topic;
use kafkit::{
    Compression, Dialer, IsolationLevel, Message, Reader, ReaderConfig, StartOffset, TopicConfig, TopicPartition,
};
use peers::Java;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn value(m: &Message) -> String {
    String::from_utf8(m.value.as_deref().expect("a value").to_vec()).expect("utf-8")
}

/// Reads `n` messages, each within 30 s, then checks that no other one comes within 500 ms.
async fn read_exactly(reader: &mut Reader, n: usize, what: &str) -> Vec<Message> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), reader.read_message()).await {
            Ok(m) => got.push(m.expect("read")),
            Err(_) => {
                panic!("{what}: {} of {n} messages arrived: {:?}", got.len(), got.iter().map(value).collect::<Vec<_>>())
            }
        }
    }
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(500), reader.read_message()).await {
        panic!("{what}: one more message than the {n} expected: {m:?}");
    }
    got
}

/// Waits (up to 10 s) until `reader` stands at `offset`.
async fn wait_offset(reader: &Reader, offset: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.offset() != offset {
        assert!(Instant::now() < deadline, "{what}: the reader stands at {}, not {offset}", reader.offset());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `values` (keyed by the producer's name) to partition 0 through open producer `name`;
/// returns (offset, value) of each as the broker acknowledged it.
fn send(java: &mut Java, name: &str, topic: &str, values: &[&str]) -> Vec<(i64, String)> {
    let records: Vec<Value> = values
        .iter()
        .map(|v| json!({"key": peers::b64(&Some(Bytes::from(name.to_string()))), "value": peers::b64(&Some(Bytes::from(v.to_string()))), "headers": []}))
        .collect();
    let (acks, _) = java.call(json!({"cmd": "send", "name": name, "topic": topic, "partition": 0, "records": records}));
    acks.iter().zip(values).map(|(a, v)| (a["offset"].as_i64().unwrap(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn aborted_transactions_of_interleaved_java_producers_are_never_delivered() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let mut java = Java::start(&addr);
    for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let topic = unique_topic(&format!("rc-interleaved-{codec}"));
        common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
        for p in ["p0", "p1", "p2"] {
            let id = unique_topic(&format!("rc-{p}"));
            java.call(json!({"cmd": "open", "name": p, "transactional_id": id, "codec": codec.name(), "linger_ms": 5}));
        }
        // Values say what becomes of them: c- committed, a- aborted. Three producers'
        // transactions overlap on the one partition; the last abort is a transaction alone.
        let mut log: Vec<(i64, String)> = Vec::new();
        let mut markers = 0;
        let steps: &[(&str, &str, &[&str])] = &[
            ("begin", "p0", &[]),
            ("begin", "p1", &[]),
            ("begin", "p2", &[]),
            ("send", "p0", &["c-0-0", "c-0-1", "c-0-2"]),
            ("send", "p1", &["a-1-0", "a-1-1"]),
            ("send", "p2", &["c-2-0"]),
            ("send", "p0", &["c-0-3"]),
            ("send", "p1", &["a-1-2"]),
            ("abort", "p1", &[]),
            ("send", "p2", &["c-2-1", "c-2-2"]),
            ("commit", "p0", &[]),
            ("begin", "p1", &[]),
            ("send", "p1", &["c-1-3"]),
            ("send", "p2", &["c-2-3"]),
            ("begin", "p0", &[]),
            ("send", "p0", &["a-0-4", "a-0-5", "a-0-6", "a-0-7"]),
            ("commit", "p1", &[]),
            ("abort", "p0", &[]),
            ("send", "p2", &["c-2-4"]),
            ("commit", "p2", &[]),
            ("begin", "p0", &[]),
            ("send", "p0", &["a-0-8"]),
            ("abort", "p0", &[]),
        ];
        for (cmd, p, values) in steps {
            match *cmd {
                "send" => log.extend(send(&mut java, p, &topic, values)),
                _ => {
                    java.call(json!({"cmd": cmd, "name": p}));
                    markers += i64::from(*cmd != "begin");
                }
            }
        }
        for p in ["p0", "p1", "p2"] {
            java.call(json!({"cmd": "close", "name": p}));
        }
        log.sort();
        let end = log.len() as i64 + markers;
        // The coordinator writes the markers after it answers EndTxn: wait for the last one.
        let pc = Dialer::new().dial_leader(&addr, &topic, 0).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, hwm) = pc.read_offsets().await.unwrap();
            if hwm == end {
                break;
            }
            assert!(
                hwm < end && Instant::now() < deadline,
                "{codec}: {} records, {markers} markers, log end {hwm}",
                log.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let committed: Vec<(i64, String)> = log.iter().filter(|(_, v)| v.starts_with("c-")).cloned().collect();
        assert_eq!((committed.len(), log.len() - committed.len()), (10, 8));

        for (isolation, want) in [(IsolationLevel::ReadCommitted, &committed), (IsolationLevel::ReadUncommitted, &log)]
        {
            let what = format!("{codec} {isolation:?}");
            let mut r = Reader::new(&[&addr], ReaderConfig::new(&topic, 0).with_isolation(isolation)).await.unwrap();
            let got = read_exactly(&mut r, want.len(), &what).await;
            let got: Vec<(i64, String)> = got.iter().map(|m| (m.offset, value(m))).collect();
            assert_eq!(&got, want, "{what}");
            // Past the last marker: the position is the log end, though no record was there.
            wait_offset(&r, end, &what).await;
            assert_eq!(r.read_lag().await.unwrap(), 0, "{what}");

            // The same through a PartitionConn.
            let mut pc = Dialer::new().dial_leader(&addr, &topic, 0).await.unwrap();
            pc.set_isolation_level(isolation);
            let mut got = Vec::new();
            while pc.offset() < end {
                got.extend(pc.read_batch(1, 1 << 20).await.unwrap().messages.iter().map(|m| (m.offset, value(m))));
            }
            assert_eq!(&got, want, "{what}: PartitionConn");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_stops_at_the_last_stable_offset_while_a_java_transaction_is_open() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let topic = unique_topic("rc-lso");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    let tp = TopicPartition::new(&topic, 0);
    let mut java = Java::start(&addr);
    let records = |vals: &[&str]| -> Value {
        json!(vals
            .iter()
            .map(|v| json!({"key": null, "value": peers::b64(&Some(Bytes::from(v.to_string()))), "headers": []}))
            .collect::<Vec<_>>())
    };
    // Offsets 0-4 committed, their marker at 5; a transaction left open at 6-8; then two
    // records of a plain idempotent producer at 9-10. The last stable offset is 6.
    java.call(json!({"cmd": "produce", "topic": topic, "partition": 0, "transactional_id": unique_topic("rc-lso-t0"),
        "records": records(&["c0", "c1", "c2", "c3", "c4"])}));
    java.call(json!({"cmd": "open", "name": "open", "transactional_id": unique_topic("rc-lso-t1")}));
    java.call(json!({"cmd": "begin", "name": "open"}));
    let open = send(&mut java, "open", &topic, &["o0", "o1", "o2"]);
    assert_eq!(open.iter().map(|(o, _)| *o).collect::<Vec<_>>(), [6, 7, 8]);
    let (acks, _) =
        java.call(json!({"cmd": "produce", "topic": topic, "partition": 0, "records": records(&["p0", "p1"])}));
    assert_eq!(acks.iter().map(|a| a["offset"].as_i64().unwrap()).collect::<Vec<_>>(), [9, 10]);

    let committed = ReaderConfig::new(&topic, 0).with_isolation(IsolationLevel::ReadCommitted);
    let mut rc = Reader::new(&[&addr], committed.clone()).await.unwrap();
    let mut ru = Reader::new(&[&addr], ReaderConfig::new(&topic, 0)).await.unwrap();
    let got = read_exactly(&mut rc, 5, "read_committed, transaction open").await;
    assert_eq!(got.iter().map(value).collect::<Vec<_>>(), ["c0", "c1", "c2", "c3", "c4"]);
    // Past the commit marker, up to the last stable offset, and no further.
    wait_offset(&rc, 6, "read_committed").await;
    assert_eq!(rc.read_lag().await.unwrap(), 0, "read_lag: to the last stable offset");
    assert_eq!(rc.lag(), 0, "lag: to the last stable offset");
    assert_eq!(rc.stats().lag, 0);
    let state = &rc.partitions()[&tp];
    assert_eq!((state.position, state.lag, state.high_watermark), (6, 0, 11));
    // Under read_committed the end of the partition is the last stable offset.
    let at_end = Reader::new(&[&addr], committed.clone().with_start(StartOffset::Last)).await.unwrap();
    assert_eq!(at_end.offset(), 6);
    // A consumer-group member stops there too, its per-partition lag measured to it.
    let group = ReaderConfig::group(unique_topic("rc-lso-group"), [topic.clone()])
        .with_isolation(IsolationLevel::ReadCommitted)
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_secs(1));
    let mut member = Reader::new(&[&addr], group).await.unwrap();
    let got = read_exactly(&mut member, 5, "read_committed group member, transaction open").await;
    assert_eq!(got.last().map(|m| m.offset), Some(4));
    let deadline = Instant::now() + Duration::from_secs(10);
    while member.partitions().get(&tp).map(|s| s.position) != Some(6) {
        assert!(Instant::now() < deadline, "the member stands at {:?}", member.partitions().get(&tp));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((member.partitions()[&tp].lag, member.lag()), (0, 0));

    let got = read_exactly(&mut ru, 10, "read_uncommitted").await;
    let values: Vec<String> = got.iter().map(value).collect();
    assert_eq!(values, ["c0", "c1", "c2", "c3", "c4", "o0", "o1", "o2", "p0", "p1"]);
    assert_eq!((ru.offset(), ru.lag(), ru.read_lag().await.unwrap()), (11, 0, 0));

    java.call(json!({"cmd": "commit", "name": "open"}));
    // The commit marker at 11 moves the last stable offset to 12.
    let got = read_exactly(&mut rc, 5, "read_committed, after the commit").await;
    let offsets: BTreeMap<i64, String> = got.iter().map(|m| (m.offset, value(m))).collect();
    assert_eq!(
        offsets.into_iter().collect::<Vec<_>>(),
        [(6, "o0"), (7, "o1"), (8, "o2"), (9, "p0"), (10, "p1")].map(|(o, v)| (o, v.to_string()))
    );
    wait_offset(&rc, 12, "read_committed").await;
    assert_eq!((rc.lag(), rc.read_lag().await.unwrap()), (0, 0));
    wait_offset(&ru, 12, "read_uncommitted").await;
    let mut at_end = at_end;
    let got = read_exactly(&mut at_end, 5, "read_committed from the last stable offset").await;
    assert_eq!(got.first().map(|m| m.offset), Some(6));
    let got = read_exactly(&mut member, 5, "read_committed group member, after the commit").await;
    assert_eq!(got.iter().map(|m| m.offset).collect::<Vec<_>>(), [6, 7, 8, 9, 10]);
    member.close().await.unwrap();
}
