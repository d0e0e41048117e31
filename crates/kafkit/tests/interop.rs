//! Interop with two independent clients, confluent-kafka (librdkafka) and kafka-python, on
//! Apache Kafka 4.4: records kafkit writes are read identically by both, with every codec, keys,
//! null keys, null values, headers and a 1 MiB value; records they write, with every codec, are
//! read identically by kafkit; transactions confluent-kafka commits and aborts are read back
//! without their markers, and without the aborted ones under read_committed.
//!
//! The clients run from `scripts/interop/client.py` (see `peers`); the Java client's interop
//! is in java_interop.rs.

mod common;
mod peers;

use common::unique_topic;
use kafkit::{Compression, Dialer, IsolationLevel, Message, PartitionConn, Reader, ReaderConfig, TopicConfig};
use peers::{assert_same_records, from_json, py_client, sample, to_json, BIG_MESSAGES};
use std::time::Duration;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
const CLIENTS: [&str; 2] = ["ck", "kp"];

async fn big_topic(addr: &str, prefix: &str) -> String {
    let topic = unique_topic(prefix);
    common::create_topics(addr, &[TopicConfig::new(&topic, 1).with_config(BIG_MESSAGES.0, BIG_MESSAGES.1)]).await;
    topic
}

async fn read_all(pc: &mut PartitionConn, n: usize) -> Vec<Message> {
    let mut got = Vec::new();
    for _ in 0..50 {
        got.extend(pc.read_batch(1, 8 << 20).await.unwrap().messages);
        if got.len() >= n {
            break;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn what_kafkit_writes_independent_clients_read_identically() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let dialer = Dialer::new();
    let want = sample(true);
    for codec in CODECS {
        let topic = big_topic(&addr, &format!("interop-out-{codec}")).await;
        let mut pc = dialer.dial_leader(&addr, &topic, 0).await.unwrap();
        pc.set_compression(codec);
        pc.write_messages(&want[..6]).await.unwrap();
        pc.write_messages(&want[6..]).await.unwrap();
        for c in CLIENTS {
            let n = want.len().to_string();
            let out = tokio::task::spawn_blocking({
                let (addr, topic) = (addr.clone(), topic.clone());
                move || py_client(&["consume", c, &addr, &topic, &n], None)
            })
            .await
            .unwrap();
            let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let got: Vec<Message> = lines.iter().map(from_json).collect();
            assert_same_records(&got, &want, &format!("{c} reads kafkit {codec}"));
            assert!(got.iter().enumerate().all(|(i, m)| m.offset == i as i64), "{c} {codec}: offsets");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_independent_clients_write_kafkit_reads_identically() {
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let dialer = Dialer::new();
    for c in CLIENTS {
        let mut msgs = sample(true);
        if c == "kp" {
            // kafka-python's producer takes only (str, bytes) headers: no null header value.
            msgs.iter_mut().for_each(|m| m.headers.retain(|h| h.value.is_some()));
        }
        let lines: String = msgs.iter().map(|m| to_json(m).to_string() + "\n").collect();
        for codec in CODECS {
            let topic = big_topic(&addr, &format!("interop-in-{c}-{codec}")).await;
            tokio::task::spawn_blocking({
                let (addr, topic, lines) = (addr.clone(), topic.clone(), lines.clone());
                move || py_client(&["produce", c, &addr, &topic, codec.name()], Some(lines))
            })
            .await
            .unwrap();
            let mut pc = dialer.dial_leader(&addr, &topic, 0).await.unwrap();
            let got = read_all(&mut pc, msgs.len()).await;
            assert_same_records(&got, &msgs, &format!("kafkit reads {c} {codec}"));
            assert!(got.iter().enumerate().all(|(i, m)| m.offset == i as i64), "{c} {codec}: offsets");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_written_by_confluent_kafka_read_back_without_markers_or_aborted_records() {
    // Committed and aborted transactions from confluent-kafka's transactional producer: 11
    // records and 5 markers. Under read_uncommitted every data record arrives and no marker
    // does; under read_committed only the committed records do. Either way the reader moves
    // past all 16 offsets.
    let broker = common::kafka();
    let addr = broker.bootstrap();
    let topic = unique_topic("interop-txn");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    tokio::task::spawn_blocking({
        let (addr, topic) = (addr.clone(), topic.clone());
        move || py_client(&["txn", "ck", &addr, &topic, "c3,a2,c2,a3,c1"], None)
    })
    .await
    .unwrap();
    let all = ["c0", "c1", "c2", "a0", "a1", "c3", "c4", "a2", "a3", "a4", "c5"];
    let committed: Vec<&str> = all.iter().copied().filter(|v| v.starts_with('c')).collect();
    for (isolation, want) in
        [(IsolationLevel::ReadUncommitted, all.to_vec()), (IsolationLevel::ReadCommitted, committed)]
    {
        let mut r = Reader::new(&[&addr], ReaderConfig::new(&topic, 0).with_isolation(isolation)).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let m = tokio::time::timeout(Duration::from_secs(10), r.read_message()).await.unwrap().unwrap();
            got.push(String::from_utf8(m.value.unwrap().to_vec()).unwrap());
        }
        assert_eq!(got, want, "{isolation:?}");
        if let Ok(extra) = tokio::time::timeout(Duration::from_millis(1500), r.read_message()).await {
            panic!("{isolation:?}: a marker came through as a message: {extra:?}");
        }
        assert_eq!(r.offset(), 16, "{isolation:?}");
    }
}
