//! Producers and transactions as the admin `Client` sees them on Apache Kafka (the shared
//! node): DescribeProducers after kafkit's idempotent `Writer`, and DescribeTransactions of a
//! transaction held open by confluent-kafka's transactional producer
//! (`scripts/interop/open_txn.py`; kafkit has no transactional producer yet), with the
//! last stable offset that open transaction holds back.

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::admin::{Client, OffsetSpec, ProducerState};
use kafkit::protocol::messages::{fetch_request, FetchRequest};
use kafkit::protocol::record::{DecodeOptions, RecordBatch, RecordSet};
use kafkit::protocol::ErrorCode;
use kafkit::{
    ClusterConfig, Dialer, IsolationLevel, Message, Reader, ReaderConfig, TopicConfig, TopicPartition, Writer,
    WriterConfig,
};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn admin(addr: &str) -> Client {
    Client::new(&[addr], ClusterConfig::default()).await.unwrap()
}

/// The record batches of `topic`/`partition` as stored (producer ids and sequences).
async fn raw_batches(addr: &str, topic: &str, partition: i32) -> Vec<RecordBatch> {
    let pc = Dialer::new().dial_leader(addr, topic, partition).await.unwrap();
    let conn = pc.conn();
    let meta = conn.metadata(Some(&[topic])).await.unwrap();
    let v = conn.version_for::<FetchRequest>().unwrap();
    let ft = fetch_request::FetchTopic::default().with_partitions(vec![fetch_request::FetchPartition::default()
        .with_partition(partition)
        .with_partition_max_bytes(8 << 20)]);
    let ft = if v.0 >= 13 { ft.with_topic_id(meta.topics[0].topic_id) } else { ft.with_topic(topic.into()) };
    let req = FetchRequest::default().with_max_wait_ms(100).with_min_bytes(1).with_max_bytes(8 << 20);
    let resp = conn.request(&req.with_topics(vec![ft])).await.unwrap();
    let data = resp.responses[0].partitions[0].records.clone().unwrap();
    RecordSet::new(data, DecodeOptions::default()).collect::<Result<_, _>>().unwrap()
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn describe_producers_shows_the_idempotent_writers_state() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = unique_topic("adm-prod");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 2)]).await;
    let admin = admin(&addr).await;
    let (p0, p1) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1));
    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic).with_balancer(|_: &Message, _: &[i32]| 0))
        .await
        .unwrap();
    let value = |i: usize| Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}"))));
    // Three writes, so at least three batches: sequences 0-3, 4-5, 6-8.
    for range in [0..4, 4..6, 6..9] {
        w.write_messages(range.map(value).collect()).await.unwrap();
    }
    let batches = raw_batches(&addr, &topic, 0).await;
    let last = batches.last().unwrap();
    let last_sequence = last.base_sequence + last.records.len() as i32 - 1;
    assert_eq!(last_sequence, 8, "{batches:?}");
    assert!(batches.len() >= 3);
    assert!(batches.iter().all(|b| (b.producer_id, b.producer_epoch) == (last.producer_id, last.producer_epoch)));

    let got = admin.describe_producers(&[p0.clone(), p1.clone()]).await.unwrap();
    let want = ProducerState {
        producer_id: last.producer_id,
        producer_epoch: i32::from(last.producer_epoch),
        last_sequence,
        last_timestamp: last.max_timestamp,
        current_txn_start_offset: -1,
    };
    assert_eq!(got[&p0].as_ref().unwrap(), &[want]);
    assert!(got[&p1].as_ref().unwrap().is_empty(), "nothing was written to partition 1");
    assert!(last.producer_id >= 0 && last.producer_epoch == 0);

    // A writer that is not idempotent leaves no producer state.
    let plain = unique_topic("adm-prod-plain");
    common::create_topics(&addr, &[TopicConfig::new(&plain, 1)]).await;
    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&plain).with_idempotent(false)).await.unwrap();
    w.write_messages(vec![value(0)]).await.unwrap();
    let tp = TopicPartition::new(&plain, 0);
    let missing = TopicPartition::new(&plain, 4);
    let got = admin.describe_producers(&[tp.clone(), missing.clone()]).await.unwrap();
    assert!(got[&tp].as_ref().unwrap().is_empty(), "{got:?}");
    assert_eq!(got[&missing].as_ref().unwrap_err().error_code(), Some(ErrorCode::UnknownTopicOrPartition));
}

/// `scripts/interop/open_txn.py`, holding a transaction open until told to end it.
struct OpenTxn {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl OpenTxn {
    async fn start(brokers: &str, txn_id: &str, topic: &str, partitions: i32, timeout_ms: i32) -> OpenTxn {
        let python = kafkit_testbed::cache_dir().join("pyenv/bin/python");
        assert!(python.exists(), "{} is missing: make the venv (scripts/python-clients.txt)", python.display());
        let script = kafkit_testbed::repo_root().join("scripts/interop/open_txn.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args([brokers, txn_id, topic, &partitions.to_string(), &timeout_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start open_txn.py");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut t = OpenTxn { child, lines };
        let ready = t.line().await;
        assert_eq!(ready["ready"], true, "{ready}");
        t
    }

    async fn line(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("open_txn.py answers within 60 s")
            .unwrap()
            .expect("open_txn.py exited early");
        serde_json::from_str(&line).unwrap()
    }

    async fn end(mut self, how: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{how}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        assert_eq!(self.line().await["done"], how);
        assert!(self.child.wait().await.unwrap().success());
    }
}

#[tokio::test]
async fn describe_transactions_of_an_open_then_committed_transaction() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = unique_topic("adm-txn");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 3)]).await;
    let admin = admin(&addr).await;
    let txn_id = unique_topic("adm-txn-id");
    let before = SystemTime::now() - Duration::from_secs(1);
    let txn = OpenTxn::start(&addr, &txn_id, &topic, 2, 30_000).await;

    let got = admin.describe_transactions(&[&txn_id, "no-such-txn-kafkit"]).await.unwrap();
    assert_eq!(got["no-such-txn-kafkit"].as_ref().unwrap_err().error_code(), Some(ErrorCode::TransactionalIdNotFound));
    let d = got[&txn_id].as_ref().unwrap();
    assert_eq!((d.state.as_str(), d.timeout_ms), ("Ongoing", 30_000));
    let mut parts = d.partitions.clone();
    parts.sort();
    assert_eq!(parts, [TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1)]);
    assert!(d.producer_id >= 0, "{d:?}");
    assert!(ms(before) <= d.start_time_ms && d.start_time_ms <= ms(SystemTime::now()), "{d:?}");

    // The partition leader knows the open transaction: its producer and first offset.
    let (p0, p2) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 2));
    let producers = admin.describe_producers(std::slice::from_ref(&p0)).await.unwrap();
    let state = &producers[&p0].as_ref().unwrap()[0];
    assert_eq!(
        (state.producer_id, state.producer_epoch, state.current_txn_start_offset),
        (d.producer_id, i32::from(d.producer_epoch), 0)
    );
    // The open transaction holds the last stable offset back: read_committed sees 0, the
    // high watermark is 1.
    let end = |iso| {
        let admin = admin.clone();
        let p0 = p0.clone();
        async move {
            admin.list_offsets(&[(p0.clone(), OffsetSpec::Latest)], iso).await.unwrap()[&p0].as_ref().unwrap().offset
        }
    };
    assert_eq!((end(IsolationLevel::ReadUncommitted).await, end(IsolationLevel::ReadCommitted).await), (1, 0));
    let committed_reader = ReaderConfig::new(&topic, 0)
        .with_isolation(IsolationLevel::ReadCommitted)
        .with_max_wait(Duration::from_millis(100));
    let mut rc = Reader::new(&[&addr], committed_reader).await.unwrap();
    let mut ru = Reader::new(&[&addr], ReaderConfig::new(&topic, 0)).await.unwrap();
    assert_eq!((ru.read_lag().await.unwrap(), rc.read_lag().await.unwrap()), (1, 0));
    assert_eq!(ru.read_message().await.unwrap().value.as_deref(), Some(&b"txn-0"[..]));
    assert!(tokio::time::timeout(Duration::from_millis(700), rc.read_message()).await.is_err());

    txn.end("commit").await;
    // The coordinator writes the markers, then completes: CompleteCommit, no partitions.
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        let got = admin.describe_transactions(&[&txn_id]).await.unwrap();
        let d = got[&txn_id].as_ref().unwrap().clone();
        if d.state != "Ongoing" && d.state != "PrepareCommit" || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(d.state, "CompleteCommit", "{d:?}");
    assert!(d.partitions.is_empty(), "{d:?}");
    // The commit marker follows the record: offset 2 is the end for both isolation levels,
    // and the read_committed reader gets the record.
    assert_eq!((end(IsolationLevel::ReadUncommitted).await, end(IsolationLevel::ReadCommitted).await), (2, 2));
    let m = tokio::time::timeout(Duration::from_secs(10), rc.read_message()).await.unwrap().unwrap();
    assert_eq!((m.offset, m.value.as_deref()), (0, Some(&b"txn-0"[..])));
    let producers = admin.describe_producers(&[p0.clone(), p2.clone()]).await.unwrap();
    assert_eq!(producers[&p0].as_ref().unwrap()[0].current_txn_start_offset, -1);
    assert!(producers[&p2].as_ref().unwrap().is_empty(), "no record of the transaction went to partition 2");
}
