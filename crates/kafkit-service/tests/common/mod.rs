//! What the service tests share: kafkit's test helpers (the Apache Kafka clusters of
//! kafkit-testbed, unique names, topic creation), settings for fast tests, and ways to
//! produce, read back and inspect commits.
#![allow(dead_code, unused_imports)]

#[path = "../../../kafkit/tests/common/mod.rs"]
mod kafkit_common;

pub use kafkit_common::*;

use bytes::Bytes;
use kafkit::{
    ClusterConfig, Message, Murmur2Balancer, Reader, ReaderConfig, TopicConfig, TopicPartition, Writer, WriterConfig,
};
use kafkit_service::Settings;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Settings for a test on the shared node: group `group`, quick heartbeats, commits every
/// 100 ms, no signal handling (the test process is shared).
pub fn settings(group: &str) -> Settings {
    let mut s = Settings { brokers: vec![kafka().addr()], ..Settings::default() };
    s.reader.group_id = Some(group.to_string());
    s.reader.session_timeout = Duration::from_secs(6);
    s.reader.heartbeat_interval = Duration::from_millis(500);
    s.reader.rebalance_timeout = Duration::from_secs(10);
    s.reader.max_wait = Duration::from_millis(100);
    s.consumer.commit_interval = Duration::from_millis(100);
    s.consumer.retry.backoff.min = Duration::from_millis(20);
    s.consumer.retry.backoff.max = Duration::from_millis(100);
    s.consumer.dead_letter.retry_backoff.min = Duration::from_millis(100);
    s.consumer.dead_letter.retry_backoff.max = Duration::from_millis(500);
    s.shutdown.signals = false;
    s.writer.linger = Duration::from_millis(1);
    s
}

/// Creates `topics` (name, partitions) on the shared node and waits until they serve.
pub async fn topics(list: &[(&str, i32)]) {
    let cfgs: Vec<TopicConfig> = list.iter().map(|(t, p)| TopicConfig::new(*t, *p)).collect();
    create_topics(&kafka().addr(), &cfgs).await;
}

/// Writes `msgs` (each with its topic) through a murmur2 writer: a key always lands on
/// the same partition.
pub async fn produce(msgs: Vec<Message>) {
    let w =
        Writer::new(&[&kafka().addr()], WriterConfig::default().with_balancer(Murmur2Balancer::new())).await.unwrap();
    w.write_messages(msgs).await.unwrap();
}

pub fn msg(topic: &str, key: &str, value: &str) -> Message {
    Message::new(Some(Bytes::from(key.to_string())), Some(Bytes::from(value.to_string()))).with_topic(topic)
}

/// Every record of `topic` (its `partitions`) now in the log, in partition then offset
/// order.
pub async fn read_all(topic: &str, partitions: i32) -> Vec<Message> {
    let addr = kafka().addr();
    let admin = kafkit::admin::Client::new(&[&addr], ClusterConfig::default()).await.unwrap();
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    let specs: Vec<_> = tps.iter().map(|tp| (tp.clone(), kafkit::admin::OffsetSpec::Latest)).collect();
    let ends = admin.list_offsets(&specs, kafkit::IsolationLevel::ReadUncommitted).await.unwrap();
    let total: i64 = ends.values().map(|r| r.as_ref().unwrap().offset).sum();
    let mut out = Vec::new();
    if total == 0 {
        return out;
    }
    let mut r =
        Reader::new(&[&addr], ReaderConfig::assign(tps).with_max_wait(Duration::from_millis(50))).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (out.len() as i64) < total {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, r.read_message()).await {
            Ok(m) => out.push(m.unwrap()),
            Err(_) => panic!("read {} of {total} records of {topic} within 30 s", out.len()),
        }
    }
    out.sort_by_key(|m| (m.partition, m.offset));
    out
}

/// The group's committed offsets.
pub async fn committed(group: &str) -> BTreeMap<TopicPartition, i64> {
    let admin = kafkit::admin::Client::new(&[&kafka().addr()], ClusterConfig::default()).await.unwrap();
    admin.fetch_offsets(group, None).await.unwrap()
}

/// Polls `cond` every 20 ms until it holds or `within` passes (then panics with `what`).
pub async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// As [`wait_for`], with an async condition.
pub async fn wait_for_async<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn text(b: &Option<Bytes>) -> String {
    String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned()
}
