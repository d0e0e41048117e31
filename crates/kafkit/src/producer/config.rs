//! The settings of a [`super::Writer`] and their defaults.

use super::balancer::{Balancer, RoundRobin};
use super::delivery::{Completion, Delivered};
use crate::cluster::ClusterConfig;
use crate::error::Error;
use crate::message::Message;
use crate::net::Acks;
use kafkit_protocol::compression::Compression;
use std::sync::Arc;
use std::time::Duration;

/// Default [`WriterConfig::batch_size`]: 100 messages (kafka-go `BatchSize`).
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Default [`WriterConfig::batch_bytes`]: 1 MiB (kafka-go `BatchBytes`).
pub const DEFAULT_BATCH_BYTES: usize = 1 << 20;
/// Default [`WriterConfig::linger`]: 5 ms (Java `linger.ms` since Kafka 4.0, KIP-1030).
///
/// kafka-go's `BatchTimeout` defaults to 1 s, so every synchronous write of a lone message
/// waits a second; 5 ms keeps batches forming under load without that wait.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);
/// Default [`WriterConfig::max_in_flight`]: 5 batches per partition (Java
/// `max.in.flight.requests.per.connection`, the most idempotence allows).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 5;
/// Default [`WriterConfig::produce_concurrency`]: 2 Produce connections per partition
/// leader.
pub const DEFAULT_PRODUCE_CONCURRENCY: usize = 2;
/// Default [`WriterConfig::delivery_timeout`]: 120 s (Java `delivery.timeout.ms`).
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Default [`WriterConfig::queue_capacity`]: 100,000 messages not yet acknowledged
/// (librdkafka's `queue.buffering.max.messages` default).
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;
/// Default [`WriterConfig::queue_bytes`]: 32 MiB of records not yet acknowledged (Java
/// `buffer.memory`).
pub const DEFAULT_QUEUE_BYTES: usize = 32 << 20;
/// Default [`WriterConfig::max_request_bytes`]: 1 MiB (Java `max.request.size`).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
/// Default [`WriterConfig::unknown_topic_retries`]: 4 (franz-go's `UnknownTopicRetries`).
pub const DEFAULT_UNKNOWN_TOPIC_RETRIES: u32 = 4;

/// Default [`WriterConfig::transaction_timeout`]: 60 s (Java `transaction.timeout.ms`).
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of a [`Writer`](super::Writer) (kafka-go's `Writer` fields, Java producer settings).
#[derive(Clone)]
#[must_use]
pub struct WriterConfig {
    /// Connections, metadata refresh, retry backoff (its `retry_timeout` is not used; see
    /// `delivery_timeout`).
    pub cluster: ClusterConfig,
    /// The topic of every message; `None` to take each message's own `topic` (kafka-go
    /// `Writer.Topic`). Default `None`.
    pub topic: Option<String>,
    /// Chooses partitions. Default [`RoundRobin`] (kafka-go's default; use
    /// [`super::Murmur2Balancer`] to place keys as the Java client does).
    pub balancer: Arc<dyn Balancer>,
    /// Most messages per batch. Default [`DEFAULT_BATCH_SIZE`].
    pub batch_size: usize,
    /// Most bytes per batch as encoded before compression, its 61-byte header included (Java
    /// `batch.size`, kafka-go `BatchBytes`), so the default batch fits the broker's default
    /// `max.message.bytes` (1,048,588); a larger message goes in a batch of its own. Default
    /// [`DEFAULT_BATCH_BYTES`].
    pub batch_bytes: usize,
    /// How long a message may wait for its batch to fill. Default [`DEFAULT_LINGER`].
    pub linger: Duration,
    /// Acknowledgements to wait for. Default [`Acks::All`].
    pub acks: Acks,
    /// Batch compression. Default [`Compression::None`].
    pub compression: Compression,
    /// The idempotent producer (KIP-98; Java `enable.idempotence`): a producer id, and a
    /// sequence number on every batch so the broker drops duplicates from retries and keeps
    /// order. Default `true`; needs [`Acks::All`].
    pub idempotent: bool,
    /// Most batches in flight per partition. Default [`DEFAULT_MAX_IN_FLIGHT`] (at most 5
    /// with idempotence).
    pub max_in_flight: usize,
    /// Connections per partition leader that carry Produce requests. Each partition keeps
    /// to one of them (chosen round-robin when it first goes to that leader, again only
    /// when its leader changes), so its requests still arrive in order and idempotence's
    /// sequences stay in step; the leader's partitions are spread over them.
    ///
    /// A Kafka broker handles one connection's requests one at a time, so a second
    /// connection lets it work on a second partition's batches meanwhile: on the test
    /// broker, 200k records of 1 KiB went through 30% faster with 2 than with 1 (see
    /// DESIGN.md). 1 is the Java producer's and librdkafka's way (one connection per
    /// broker). A transactional writer ([`WriterConfig::transactional_id`]) uses 1 whatever
    /// this says: a Kafka broker verifies a transaction's partitions per transactional id
    /// and fails the older of two Produce requests of one transaction it handles at once
    /// (NOT_ENOUGH_REPLICAS), so a second connection costs resends. Default
    /// [`DEFAULT_PRODUCE_CONCURRENCY`]; at most 65,535.
    pub produce_concurrency: usize,
    /// How long a message may wait, retries included, before it fails. Default
    /// [`DEFAULT_DELIVERY_TIMEOUT`].
    pub delivery_timeout: Duration,
    /// Create topics that do not exist, through Metadata's `allow_auto_topic_creation`
    /// (kafka-go `AllowAutoTopicCreation`). Default `false`.
    pub allow_auto_topic_creation: bool,
    /// How many more times a write looks a topic up, after the cluster's backoff, while the
    /// metadata answers UNKNOWN_TOPIC_OR_PARTITION, before the write fails with it (franz-go
    /// `UnknownTopicRetries`; the Java producer waits up to `max.block.ms`, 60 s). A topic
    /// just created takes a moment to reach every broker's metadata; with the default
    /// backoff the default 4 retries wait about 1.5 s. Default
    /// [`DEFAULT_UNKNOWN_TOPIC_RETRIES`].
    pub unknown_topic_retries: u32,
    /// Most messages written and not yet acknowledged (queued or in flight); `write` waits
    /// for room beyond (librdkafka `queue.buffering.max.messages`). Default
    /// [`DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
    /// Most bytes of record batches written and not yet acknowledged (queued or in flight):
    /// the memory of their buffers, records encoded before compression plus the room a batch
    /// reserves as it opens (a quarter more than its partition's last batch, within
    /// `batch_bytes`). `write` waits for room beyond, though a writer holding nothing always
    /// takes one message (Java `buffer.memory`, which also counts the batches' buffers).
    /// Beyond it each connection holds the one Produce request it is writing (at most
    /// `max_request_bytes`). Measured (`kafkit perf produce`, 1 KiB records), the process's
    /// peak RSS was this plus 18-31 MiB at 1, 8 and 32 MiB (DESIGN.md, "Measured").
    /// Default [`DEFAULT_QUEUE_BYTES`].
    pub queue_bytes: usize,
    /// Most bytes of record batches in one Produce request to a broker; a single larger
    /// batch still goes alone. Default [`DEFAULT_MAX_REQUEST_BYTES`] (Java
    /// `max.request.size`).
    pub max_request_bytes: usize,
    /// Called once per batch with its outcome (see [`Completion`]). Default `None`.
    pub completion: Option<Completion>,
    /// The transactional id (Java `transactional.id`; KIP-98): makes the writer a
    /// transactional producer. Its writes then go only into transactions
    /// ([`Writer::init_transactions`](super::Writer::init_transactions), then
    /// `begin_transaction` ... `commit_transaction`), and a newer writer with the same id
    /// fences this one. Needs [`WriterConfig::idempotent`]. Default `None`.
    pub transactional_id: Option<String>,
    /// How long the transaction coordinator lets a transaction stay open before it aborts it
    /// (InitProducerId's `transaction_timeout_ms`; Java `transaction.timeout.ms`); at most the
    /// broker's `transaction.max.timeout.ms` (15 min by default). Only with a
    /// [`WriterConfig::transactional_id`]. Default [`DEFAULT_TRANSACTION_TIMEOUT`].
    pub transaction_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            cluster: ClusterConfig::default(),
            topic: None,
            balancer: Arc::new(RoundRobin::new()),
            batch_size: DEFAULT_BATCH_SIZE,
            batch_bytes: DEFAULT_BATCH_BYTES,
            linger: DEFAULT_LINGER,
            acks: Acks::All,
            compression: Compression::None,
            idempotent: true,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            produce_concurrency: DEFAULT_PRODUCE_CONCURRENCY,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            allow_auto_topic_creation: false,
            unknown_topic_retries: DEFAULT_UNKNOWN_TOPIC_RETRIES,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            completion: None,
            transactional_id: None,
            transaction_timeout: DEFAULT_TRANSACTION_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("topic", &self.topic)
            .field("batch_size", &self.batch_size)
            .field("batch_bytes", &self.batch_bytes)
            .field("linger", &self.linger)
            .field("acks", &self.acks)
            .field("compression", &self.compression)
            .field("idempotent", &self.idempotent)
            .field("transactional_id", &self.transactional_id)
            .finish_non_exhaustive()
    }
}

impl WriterConfig {
    /// Sets [`WriterConfig::topic`].
    pub fn with_topic(mut self, t: impl Into<String>) -> Self {
        self.topic = Some(t.into());
        self
    }
    /// Sets [`WriterConfig::balancer`].
    pub fn with_balancer(mut self, b: impl Balancer + 'static) -> Self {
        self.balancer = Arc::new(b);
        self
    }
    /// Sets [`WriterConfig::batch_size`].
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// The bytes of records a batch may hold: [`WriterConfig::batch_bytes`] less the record
    /// batch header.
    pub(crate) fn batch_records_bytes(&self) -> usize {
        self.batch_bytes.saturating_sub(kafkit_protocol::record::RECORD_BATCH_OVERHEAD).max(1)
    }

    /// Sets [`WriterConfig::batch_bytes`].
    pub fn with_batch_bytes(mut self, n: usize) -> Self {
        self.batch_bytes = n;
        self
    }
    /// Sets [`WriterConfig::linger`].
    pub fn with_linger(mut self, d: Duration) -> Self {
        self.linger = d;
        self
    }
    /// Sets [`WriterConfig::acks`].
    pub fn with_acks(mut self, a: Acks) -> Self {
        self.acks = a;
        self
    }
    /// Sets [`WriterConfig::compression`].
    pub fn with_compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    /// Sets [`WriterConfig::idempotent`].
    pub fn with_idempotent(mut self, on: bool) -> Self {
        self.idempotent = on;
        self
    }
    /// Sets [`WriterConfig::produce_concurrency`].
    pub fn with_produce_concurrency(mut self, n: usize) -> Self {
        self.produce_concurrency = n;
        self
    }
    /// Sets [`WriterConfig::max_in_flight`].
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }
    /// Sets [`WriterConfig::delivery_timeout`].
    pub fn with_delivery_timeout(mut self, d: Duration) -> Self {
        self.delivery_timeout = d;
        self
    }
    /// Sets [`WriterConfig::allow_auto_topic_creation`].
    pub fn with_allow_auto_topic_creation(mut self, on: bool) -> Self {
        self.allow_auto_topic_creation = on;
        self
    }
    /// Sets [`WriterConfig::unknown_topic_retries`].
    pub fn with_unknown_topic_retries(mut self, n: u32) -> Self {
        self.unknown_topic_retries = n;
        self
    }
    /// Sets [`WriterConfig::queue_bytes`].
    pub fn with_queue_bytes(mut self, n: usize) -> Self {
        self.queue_bytes = n;
        self
    }
    /// Sets [`WriterConfig::queue_capacity`].
    pub fn with_queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }
    /// Sets [`WriterConfig::max_request_bytes`].
    pub fn with_max_request_bytes(mut self, n: usize) -> Self {
        self.max_request_bytes = n;
        self
    }
    /// Sets [`WriterConfig::completion`].
    pub fn with_completion(
        mut self,
        f: impl Fn(std::result::Result<&Delivered, &Error>, &[Message]) + Send + Sync + 'static,
    ) -> Self {
        self.completion = Some(Arc::new(f));
        self
    }
    /// Sets [`WriterConfig::transactional_id`].
    pub fn with_transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = Some(id.into());
        self
    }
    /// Sets [`WriterConfig::transaction_timeout`].
    pub fn with_transaction_timeout(mut self, d: Duration) -> Self {
        self.transaction_timeout = d;
        self
    }
    /// Sets [`WriterConfig::cluster`].
    pub fn with_cluster(mut self, c: ClusterConfig) -> Self {
        self.cluster = c;
        self
    }
}
