//! Messages and the cluster's shapes, as applications see them.

use bytes::Bytes;
pub use kafkit_protocol::record::Header;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One record, as written and read (kafka-go's `Message`).
///
/// To write, set `key`, `value` and optionally `headers` and `time`; `topic` and
/// `partition` are chosen by the writer. A read message carries all fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The topic: when writing, empty for the writer's own
    /// ([`crate::WriterConfig::topic`]); when read, shared by the messages of a fetch (an
    /// `Arc`, so reading allocates no topic string per message).
    pub topic: std::sync::Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset (set when read).
    pub offset: i64,
    /// The partition's high watermark when the message was fetched: the offset after the
    /// last record every in-sync replica has (set when read).
    pub high_watermark: i64,
    /// The key (`None` is a null key).
    pub key: Option<Bytes>,
    /// The value (`None` is a null value, a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order (KIP-82).
    pub headers: Vec<Header>,
    /// The record's timestamp; when writing, `None` means "now". Read messages from
    /// magic 0 topics have none.
    pub time: Option<SystemTime>,
}

impl Message {
    /// A message with this key and value.
    pub fn new(key: impl Into<Option<Bytes>>, value: impl Into<Option<Bytes>>) -> Self {
        Message { key: key.into(), value: value.into(), ..Message::default() }
    }
    /// Key and value bytes: what batch limits, `LeastBytes` and the byte counters count.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, |k| k.len()) + self.value.as_ref().map_or(0, |v| v.len())
    }
    /// Sets the topic (for a writer without [`crate::WriterConfig::topic`]).
    #[must_use]
    pub fn with_topic(mut self, topic: impl Into<std::sync::Arc<str>>) -> Self {
        self.topic = topic.into();
        self
    }
    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Option<Bytes>>) -> Self {
        self.headers.push(Header { key: key.into(), value: value.into() });
        self
    }
    /// Sets the timestamp.
    #[must_use]
    pub fn with_time(mut self, t: SystemTime) -> Self {
        self.time = Some(t);
        self
    }
}

/// A v2 record batch of `messages`, each with its timestamp in milliseconds, offsets from 0;
/// not idempotent (the writer sets producer id, epoch and sequence).
pub(crate) fn record_batch<'a>(
    messages: impl Iterator<Item = (&'a Message, i64)> + Clone,
    compression: kafkit_protocol::compression::Compression,
) -> kafkit_protocol::record::RecordBatch {
    let base = messages.clone().next().map_or(0, |(_, t)| t);
    let mut batch = kafkit_protocol::record::RecordBatch::new(base);
    batch.compression = compression;
    batch.max_timestamp = messages.clone().map(|(_, t)| t).max().unwrap_or(base);
    batch.records = messages
        .enumerate()
        .map(|(i, (m, t))| kafkit_protocol::record::Record {
            attributes: 0,
            timestamp_delta: t - base,
            offset_delta: i as i32,
            key: m.key.clone(),
            value: m.value.clone(),
            headers: m.headers.clone(),
        })
        .collect();
    batch
}

/// Milliseconds since the Unix epoch (Kafka's timestamp unit); times before it clamp to 0.
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The time of a Kafka timestamp, `None` for a negative one (no timestamp).
pub(crate) fn from_millis(ms: i64) -> Option<SystemTime> {
    (ms >= 0).then(|| UNIX_EPOCH + Duration::from_millis(ms as u64))
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Broker {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack (`broker.rack`), if set.
    pub rack: Option<String>,
}

impl Broker {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A partition of a topic, from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The topic.
    pub topic: String,
    /// The partition id.
    pub id: i32,
    /// The partition leader, if there is one now.
    pub leader: Option<Broker>,
    /// The partition leader's epoch (-1 if unknown).
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Offline replica node ids.
    pub offline_replicas: Vec<i32>,
}

/// A topic to create (kafka-go's `TopicConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// The name.
    pub topic: String,
    /// Partitions; -1 for the broker's `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor; -1 for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: Vec<(String, String)>,
    /// Replicas of each partition, chosen by hand (kafka-go `ReplicaAssignments`): when
    /// given, the partition count and replication factor follow from it.
    pub replica_assignment: Vec<(i32, Vec<i32>)>,
}

impl TopicConfig {
    /// A topic with this many partitions and the broker's default replication factor.
    pub fn new(topic: impl Into<String>, num_partitions: i32) -> Self {
        TopicConfig {
            topic: topic.into(),
            num_partitions,
            replication_factor: -1,
            configs: Vec::new(),
            replica_assignment: Vec::new(),
        }
    }
    /// Sets the replication factor.
    #[must_use]
    pub fn with_replication_factor(mut self, r: i16) -> Self {
        self.replication_factor = r;
        self
    }
    /// Places partition `partition` on `brokers` (the first is the preferred leader).
    #[must_use]
    pub fn with_replica_assignment(mut self, partition: i32, brokers: Vec<i32>) -> Self {
        self.replica_assignment.push((partition, brokers));
        self
    }
    /// Adds a topic config.
    #[must_use]
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}
