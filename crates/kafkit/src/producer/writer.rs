//! The `Writer`: batching, partitioning, acks, compression, retries and the idempotent
//! producer (KIP-98).

use super::balancer::{Balancer, RoundRobin};
use super::produce::{partition_result, produce_request, ProduceCall, PRODUCE_BY_ID};
use crate::cluster::{Cluster, ClusterConfig, Workload};
use crate::error::{Error, Result};
use crate::message::{to_millis, Message};
use crate::net::Acks;
use bytes::{Bytes, BytesMut};
use kafkit_protocol::compression::Compression;
use kafkit_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse};
use kafkit_protocol::record::{RecordBatch, RecordBatchBuilder};
use kafkit_protocol::ErrorCode;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{oneshot, Notify};

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

/// Called once per batch when it is acknowledged or has failed for good (kafka-go's
/// `Writer.Completion`), on the writer's task: keep it short and never block in it.
///
/// It gets the batch's outcome — on success where its first message was written (message
/// `i` is at `offset + i`, or every offset is -1 with [`Acks::None`]) — and the batch's
/// messages in the order they were written.
pub type Completion = Arc<dyn Fn(std::result::Result<&Delivered, &Error>, &[Message]) + Send + Sync>;

/// Settings of a [`Writer`] (kafka-go's `Writer` fields, Java producer settings).
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
    /// Most bytes per batch: its records as encoded, before compression (Java `batch.size`,
    /// kafka-go `BatchBytes`); a larger message goes in a batch of its own. Default
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
    /// broker). Default [`DEFAULT_PRODUCE_CONCURRENCY`]; at most 65,535.
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
    /// Most bytes of records written and not yet acknowledged (queued or in flight, as
    /// encoded before compression); `write` waits for room beyond, though a writer holding
    /// nothing always takes one message (Java `buffer.memory`). Default
    /// [`DEFAULT_QUEUE_BYTES`].
    pub queue_bytes: usize,
    /// Most bytes of record batches in one Produce request to a broker; a single larger
    /// batch still goes alone. Default [`DEFAULT_MAX_REQUEST_BYTES`] (Java
    /// `max.request.size`).
    pub max_request_bytes: usize,
    /// Called once per batch with its outcome (see [`Completion`]). Default `None`.
    pub completion: Option<Completion>,
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
    /// Sets [`WriterConfig::cluster`].
    pub fn with_cluster(mut self, c: ClusterConfig) -> Self {
        self.cluster = c;
        self
    }
}

/// Where a message was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset (-1 with [`Acks::None`], or when the broker reported the batch as a
    /// duplicate of one already written without saying where).
    pub offset: i64,
}

/// The outcome of one message of [`Writer::write_messages`] that did not all succeed: one
/// result per message, in input order (kafka-go's `WriteErrors`).
#[derive(Debug)]
pub struct WriteErrors {
    /// One result per message.
    pub results: Vec<Result<Delivered>>,
}

impl WriteErrors {
    /// How many messages failed.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.is_err()).count()
    }
}

impl std::fmt::Display for WriteErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.results.iter().find_map(|r| r.as_ref().err());
        write!(f, "{} of {} messages failed", self.failed(), self.results.len())?;
        if let Some(e) = first {
            write!(f, "; first: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WriteErrors {}

/// Locks `m`, taking the data of a poisoned lock as it is (every critical section here
/// leaves it consistent between statements that can panic).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The outcome of one batch, shared by the [`DeliveryFuture`]s of its messages: one
/// allocation per batch rather than a channel per message.
struct Outcome {
    topic: Arc<str>,
    partition: i32,
    state: Mutex<OutcomeState>,
}

#[derive(Default)]
struct OutcomeState {
    /// The base offset, or the error.
    result: Option<Result<i64>>,
    wakers: Vec<Waker>,
}

impl Outcome {
    fn resolve(&self, r: Result<i64>) {
        let wakers = {
            let mut s = lock(&self.state);
            if s.result.is_some() {
                return;
            }
            s.result = Some(r);
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// Resolves its outcome with [`Error::Closed`] if it is dropped unresolved (the writer's task
/// stopped with the batch unsent).
struct Resolver(Arc<Outcome>);

impl Drop for Resolver {
    fn drop(&mut self) {
        self.0.resolve(Err(Error::Closed));
    }
}

/// The acknowledgement of one message written with [`Writer::write`].
///
/// Resolves once the broker acknowledged the message's batch (or it failed for good).
/// Dropping it does not cancel the write.
pub struct DeliveryFuture {
    outcome: Arc<Outcome>,
    index: u32,
    /// Where this future's waker sits in the outcome's list once registered (`u32::MAX`
    /// before): the future is 16 bytes.
    slot: u32,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.outcome.topic)
            .field("partition", &self.outcome.partition)
            .field("index", &self.index)
            .finish()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<Delivered>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut s = lock(&this.outcome.state);
        match &s.result {
            Some(Ok(base)) => Poll::Ready(Ok(Delivered {
                topic: this.outcome.topic.to_string(),
                partition: this.outcome.partition,
                offset: if *base >= 0 { base + i64::from(this.index) } else { -1 },
            })),
            Some(Err(e)) => Poll::Ready(Err(e.dup())),
            None => {
                let i = this.slot as usize;
                if i < s.wakers.len() {
                    if !s.wakers[i].will_wake(cx.waker()) {
                        s.wakers[i] = cx.waker().clone();
                    }
                } else {
                    this.slot = s.wakers.len() as u32;
                    s.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// Counters of a [`Writer`] since it started (kafka-go `WriterStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Messages acknowledged.
    pub messages: u64,
    /// Key and value bytes acknowledged.
    pub bytes: u64,
    /// Batches acknowledged.
    pub batches: u64,
    /// Produce requests sent (one carries a batch for each of several partitions of a
    /// broker).
    pub requests: u64,
    /// Messages that failed.
    pub errors: u64,
    /// Batch sends that were retried.
    pub retries: u64,
    /// The largest batch acknowledged, in messages.
    pub max_batch_messages: u64,
    /// Total time from a batch's first send to its acknowledgement, in microseconds.
    pub batch_time_us: u64,
    /// Connections the writer has made ([`Cluster::dials`]; kafka-go `Dials`).
    pub dials: u64,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    max_batch: AtomicU64,
    batch_time_us: AtomicU64,
}

/// A batch still taking messages, or full and waiting for its partition's turn.
struct OpenBatch {
    /// The records, encoded as they were appended; taken when the batch is sent.
    records: Option<RecordBatchBuilder>,
    /// The messages, kept only for a [`Completion`]: without one, a message is dropped once
    /// its record is encoded.
    messages: Vec<Message>,
    /// How many messages.
    count: usize,
    /// Their keys' and values' bytes.
    bytes: usize,
    /// Their records' bytes, encoded (counted in `Acc::outstanding_bytes` until finished).
    record_bytes: usize,
    created: Instant,
    /// Flushes asked for before it was opened: flush `g` waits for batches of generation
    /// `g` or lower.
    generation: u64,
    outcome: Resolver,
}

/// The batches of one partition waiting to be sent, oldest first; only the last takes new
/// messages.
#[derive(Default)]
struct PartQueue {
    batches: VecDeque<OpenBatch>,
    /// Records and their encoded bytes in the batch opened last before the open one: a new
    /// batch reserves room for as many, rather than doubling its buffers (and the heap's
    /// fragments) as it fills.
    hint: (usize, usize),
}

/// What the writer knows of one topic: its partitions (for the balancer) and their queues.
struct TopicQueues {
    name: Arc<str>,
    /// The cluster's metadata generation the partitions were read at.
    meta_generation: u64,
    partitions: Vec<i32>,
    /// Queues by partition id (`None` for an id the topic lacks).
    parts: Vec<Option<PartQueue>>,
}

impl TopicQueues {
    fn set_partitions(&mut self, ids: Vec<i32>, generation: u64) {
        let len = ids.iter().map(|&p| p as usize + 1).max().unwrap_or(0).max(self.parts.len());
        self.parts.resize_with(len, || None);
        for &p in &ids {
            self.parts[p as usize].get_or_insert_with(PartQueue::default);
        }
        self.partitions = ids;
        self.meta_generation = generation;
    }
}

/// The accumulator: what `write` appends to and the writer's task drains (the Java
/// producer's `RecordAccumulator`). Guarded by one mutex, held briefly.
#[derive(Default)]
struct Acc {
    topics: HashMap<String, TopicQueues>,
    /// Messages written and not yet acknowledged or failed, queued or in flight (what
    /// [`WriterConfig::queue_capacity`] bounds).
    outstanding: usize,
    /// Their records' bytes, encoded (what [`WriterConfig::queue_bytes`] bounds).
    outstanding_bytes: usize,
    /// Flushes asked for so far (the generation of new batches).
    generation: u64,
    /// Unfinished batches per generation, oldest first.
    live: VecDeque<(u64, usize)>,
    /// Flushes waiting, with their generation.
    flushes: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Every handle is gone: send everything, then stop.
    closed: bool,
    /// Set once the producer cannot go on; new writes fail with it.
    fatal: Option<String>,
}

/// What [`Acc::append`] did with a message.
enum Append {
    /// Appended: its future, and whether the writer's task must look (a queue started or a
    /// batch filled).
    Done(DeliveryFuture, bool),
    /// The balancer chose a partition the topic lacks.
    Refused(Error),
    /// The topic's partitions are unknown or stale; the message comes back.
    Unknown(Message),
}

impl Acc {
    /// Appends `msg` to its partition's open batch, or opens one: the producer's per-message
    /// work (`Writer::write` under the lock, and the produce-path benchmark).
    fn append(
        &mut self,
        cfg: &WriterConfig,
        topic: &str,
        meta_generation: u64,
        msg: Message,
        timestamp: i64,
    ) -> Append {
        let Some(t) = self.topics.get_mut(topic).filter(|t| t.meta_generation == meta_generation) else {
            return Append::Unknown(msg);
        };
        let p = cfg.balancer.balance(&msg, &t.partitions);
        let Some(Some(q)) = usize::try_from(p).ok().and_then(|i| t.parts.get_mut(i)) else {
            return Append::Refused(Error::InvalidArgument(format!(
                "the balancer chose partition {p}, which {} lacks",
                t.name
            )));
        };
        let size = msg.size();
        let (key, value) = (msg.key.as_deref(), msg.value.as_deref());
        let open = q.batches.back().is_some_and(|b| {
            b.generation == self.generation
                && b.count < cfg.batch_size
                && b.records.as_ref().is_some_and(|r| {
                    r.records_len() + r.record_len(timestamp, key, value, &msg.headers) <= cfg.batch_bytes
                })
        });
        // The task is woken when a partition's queue starts (to time its linger) and when a
        // batch fills; not for every message.
        let mut wake = q.batches.is_empty();
        if !open {
            wake |= !q.batches.is_empty();
            if let Some(last) = q.batches.back() {
                q.hint = (last.count, last.records.as_ref().map_or(0, RecordBatchBuilder::records_len));
            }
            match self.live.back_mut() {
                Some((g, n)) if *g == self.generation => *n += 1,
                _ => self.live.push_back((self.generation, 1)),
            }
            q.batches.push_back(OpenBatch {
                // As much as the last batch took and a quarter more (within batch_bytes), so
                // a batch like the last one is never moved as it fills.
                records: Some(
                    RecordBatchBuilder::with_capacity((q.hint.1 + q.hint.1 / 4).min(cfg.batch_bytes))
                        .with_limit(cfg.batch_bytes),
                ),
                messages: if cfg.completion.is_some() { Vec::with_capacity(q.hint.0) } else { Vec::new() },
                count: 0,
                bytes: 0,
                record_bytes: 0,
                created: Instant::now(),
                generation: self.generation,
                outcome: Resolver(Arc::new(Outcome {
                    topic: t.name.clone(),
                    partition: p,
                    state: Mutex::new(OutcomeState::default()),
                })),
            });
        }
        let Some(b) = q.batches.back_mut() else { return Append::Refused(Error::Closed) };
        let index = b.count as u32;
        if let Some(r) = b.records.as_mut() {
            let before = r.records_len();
            r.append(timestamp, key, value, &msg.headers);
            let added = r.records_len() - before;
            b.record_bytes += added;
            self.outstanding_bytes += added;
        }
        let full = b.records.as_ref().is_some_and(|r| r.records_len() >= cfg.batch_bytes);
        if cfg.completion.is_some() {
            b.messages.push(msg);
        }
        b.count += 1;
        b.bytes += size;
        wake |= b.count >= cfg.batch_size || full;
        let outcome = b.outcome.0.clone();
        self.outstanding += 1;
        Append::Done(DeliveryFuture { outcome, index, slot: u32::MAX }, wake)
    }

    fn settle(&mut self, generation: u64) {
        if let Some(e) = self.live.iter_mut().find(|(g, _)| *g == generation) {
            e.1 = e.1.saturating_sub(1);
        }
        while self.live.front().is_some_and(|(_, n)| *n == 0) {
            self.live.pop_front();
        }
        // Answer the flushes whose batches are all finished.
        while let Some((g, _)) = self.flushes.front() {
            if self.live.iter().any(|(lg, n)| lg <= g && *n > 0) {
                break;
            }
            if let Some((_, tx)) = self.flushes.pop_front() {
                let _ = tx.send(());
            }
        }
    }
}

struct Shared {
    config: WriterConfig,
    /// [`WriterConfig::topic`], shared with each write (empty without one).
    topic: Arc<str>,
    cluster: Cluster,
    counters: Counters,
    acc: Mutex<Acc>,
    /// Wakes the writer's task: a batch is ready or a queue started, a flush, or a close.
    wake: Notify,
    /// Wakes writes waiting for room in the queue.
    room: Notify,
}

/// Closes the writer when the last [`Writer`] clone goes.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.0.acc).closed = true;
        self.0.wake.notify_one();
    }
}

/// Writes messages to Kafka (kafka-go's `Writer`; the Java `KafkaProducer`).
///
/// Messages are partitioned by the balancer and encoded into a batch per partition as they
/// are written (up to [`WriterConfig::batch_size`] messages or [`WriterConfig::batch_bytes`],
/// waiting at most [`WriterConfig::linger`]); `write` waits while
/// [`WriterConfig::queue_capacity`] messages or [`WriterConfig::queue_bytes`] are
/// unacknowledged. The writer's task sends ready batches, compressed, in one Produce request
/// per connection to a partition leader (up to [`WriterConfig::produce_concurrency`] per
/// leader, each partition kept to one; a batch per partition, up to
/// [`WriterConfig::max_request_bytes`]), with up to [`WriterConfig::max_in_flight`] batches
/// in flight per partition.
/// Retriable errors are retried (metadata is refreshed first when a leader moved) until
/// [`WriterConfig::delivery_timeout`].
///
/// With the idempotent producer (the default), each batch carries the producer id, epoch
/// and a sequence number: retries never duplicate a message and never reorder a partition;
/// a batch the broker already has (DUPLICATE_SEQUENCE_NUMBER) counts as written; an
/// UNKNOWN_PRODUCER_ID bumps the epoch (KIP-360) and resends; an OUT_OF_ORDER_SEQUENCE_NUMBER
/// with no earlier batch missing is fatal ([`Error::Fatal`]).
///
/// A cheap `Clone`. [`Writer::close`] flushes; when every clone is gone, the writer still
/// sends what it holds, then stops.
#[derive(Clone)]
pub struct Writer {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("config", &self.handle.0.config).finish()
    }
}

impl Writer {
    /// Connects to the cluster through `brokers` and starts the writer (with a producer id
    /// from InitProducerId when idempotent).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for settings that conflict (idempotence without
    /// [`Acks::All`], more than 5 in flight with idempotence, a zero batch size, a
    /// `produce_concurrency` of 0 or above 65,535); as
    /// [`Cluster::connect`]; InitProducerId's error, such as `CLUSTER_AUTHORIZATION_FAILED`
    /// (not retried) when the principal may write no topic at all.
    pub async fn new(brokers: &[&str], config: WriterConfig) -> Result<Writer> {
        if config.idempotent && config.acks != Acks::All {
            return Err(Error::InvalidArgument("the idempotent producer needs acks=all".into()));
        }
        if config.idempotent && config.max_in_flight > 5 {
            return Err(Error::InvalidArgument("the idempotent producer allows at most 5 batches in flight".into()));
        }
        if config.batch_size == 0 || config.batch_bytes == 0 || config.max_in_flight == 0 {
            return Err(Error::InvalidArgument("batch_size, batch_bytes and max_in_flight must be positive".into()));
        }
        if !(1..=usize::from(u16::MAX)).contains(&config.produce_concurrency) {
            return Err(Error::InvalidArgument("produce_concurrency must be from 1 to 65535".into()));
        }
        let cluster = Cluster::connect(brokers, config.cluster.clone()).await?;
        let producer = if config.idempotent { Some(init_producer_id(&cluster).await?) } else { None };
        let shared = Arc::new(Shared {
            topic: Arc::from(config.topic.as_deref().unwrap_or("")),
            config,
            cluster,
            counters: Counters::default(),
            acc: Mutex::new(Acc::default()),
            wake: Notify::new(),
            room: Notify::new(),
        });
        let engine = Engine {
            shared: shared.clone(),
            parts: HashMap::new(),
            producer,
            next_batch_id: 0,
            bump_needed: false,
            next_lane: HashMap::new(),
        };
        tokio::spawn(engine.run());
        Ok(Writer { handle: Arc::new(Handle(shared)) })
    }

    fn shared(&self) -> &Shared {
        &self.handle.0
    }

    /// The cluster this writer talks to.
    pub fn cluster(&self) -> &Cluster {
        &self.shared().cluster
    }

    /// Appends one message to its partition's batch and returns the future of its
    /// acknowledgement (the asynchronous mode; kafka-go's `Async` with a completion). Waits
    /// only for the topic's metadata the first time, and when
    /// [`WriterConfig::queue_capacity`] messages or [`WriterConfig::queue_bytes`] are
    /// already waiting.
    ///
    /// # Cancellation
    /// Dropping this future before it returns leaves the message unqueued; once it returned,
    /// the message is sent whatever happens to the [`DeliveryFuture`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a message without a topic, or a balancer that chose a
    /// partition the topic lacks; the topic's metadata error (such as
    /// `UNKNOWN_TOPIC_OR_PARTITION`); [`Error::Fatal`] once the producer failed for good.
    pub async fn write(&self, mut msg: Message) -> Result<DeliveryFuture> {
        let sh = self.shared();
        let cfg = &sh.config;
        let timestamp = to_millis(*msg.time.get_or_insert_with(SystemTime::now));
        let topic: Arc<str> = match (&cfg.topic, msg.topic.is_empty()) {
            (Some(_), _) => Arc::clone(&sh.topic),
            (None, false) => Arc::clone(&msg.topic),
            (None, true) => return Err(Error::InvalidArgument("a message without a topic".into())),
        };
        let topic = &*topic;
        loop {
            let generation = sh.cluster.metadata_generation();
            let room = sh.room.notified();
            tokio::pin!(room);
            // `Some` to wait for room, `None` to load the topic; the guard is gone before
            // either wait, so the future stays `Send`.
            let load = {
                let mut guard = lock(&sh.acc);
                let acc = &mut *guard;
                if let Some(reason) = &acc.fatal {
                    return Err(Error::Fatal(reason.clone()));
                }
                if acc.outstanding >= cfg.queue_capacity.max(1)
                    || (acc.outstanding > 0 && acc.outstanding_bytes >= cfg.queue_bytes)
                {
                    // Registered under the lock, so the task's wake-up cannot be missed.
                    room.as_mut().enable();
                    Some(())
                } else {
                    match acc.append(cfg, topic, generation, msg, timestamp) {
                        Append::Done(f, wake) => {
                            drop(guard);
                            if wake {
                                sh.wake.notify_one();
                            }
                            return Ok(f);
                        }
                        Append::Refused(e) => return Err(e),
                        Append::Unknown(m) => {
                            msg = m;
                            None
                        }
                    }
                }
            };
            match load {
                // The topic's partitions are unknown or stale: read them, then try again.
                None => self.load_topic(topic, generation).await?,
                Some(()) => room.await,
            }
        }
    }

    /// Reads `topic`'s partitions (creating the topic when allowed) into the accumulator.
    async fn load_topic(&self, topic: &str, generation: u64) -> Result<()> {
        let sh = self.shared();
        let cluster = &sh.cluster;
        let mut lookup = cluster.topic(topic).await;
        let mut retries = 0;
        while retries < sh.config.unknown_topic_retries
            && !sh.config.allow_auto_topic_creation
            && lookup.as_ref().err().and_then(Error::error_code) == Some(ErrorCode::UnknownTopicOrPartition)
        {
            tokio::time::sleep(sh.config.cluster.backoff.delay(retries)).await;
            retries += 1;
            lookup = cluster.topic(topic).await;
        }
        let meta = match lookup {
            Ok(t) => t,
            Err(e)
                if sh.config.allow_auto_topic_creation
                    && e.error_code() == Some(ErrorCode::UnknownTopicOrPartition) =>
            {
                let conn = cluster.any_broker(Workload::Admin).await?;
                conn.metadata_auto_create(&[topic]).await?;
                cluster.retry(|| cluster.topic(topic)).await?
            }
            Err(e) => return Err(e),
        };
        let ids: Vec<i32> = meta.partitions.iter().map(|p| p.id).filter(|&p| p >= 0).collect();
        if ids.is_empty() {
            return Err(Error::Broker {
                code: ErrorCode::UnknownTopicOrPartition,
                context: format!("topic {topic} has no partitions"),
                message: None,
            });
        }
        let mut acc = lock(&sh.acc);
        let t = acc.topics.entry(topic.to_string()).or_insert_with(|| TopicQueues {
            name: Arc::from(topic),
            meta_generation: 0,
            partitions: Vec::new(),
            parts: Vec::new(),
        });
        t.set_partitions(ids, generation);
        Ok(())
    }

    /// Writes `msgs` and waits until every one is acknowledged or has failed (kafka-go
    /// `WriteMessages`): one [`Delivered`] per message in input order, or [`WriteErrors`]
    /// with one result per message in input order when any failed.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; messages already queued are still sent.
    ///
    /// # Errors
    /// [`WriteErrors`], whose results say which messages failed and why.
    pub async fn write_messages(&self, msgs: Vec<Message>) -> std::result::Result<Vec<Delivered>, WriteErrors> {
        let mut futures = Vec::with_capacity(msgs.len());
        for m in msgs {
            futures.push(self.write(m).await);
        }
        let mut results = Vec::with_capacity(futures.len());
        for f in futures {
            results.push(match f {
                Ok(f) => f.await,
                Err(e) => Err(e),
            });
        }
        if results.iter().all(|r| r.is_ok()) {
            Ok(results.into_iter().filter_map(|r| r.ok()).collect())
        } else {
            Err(WriteErrors { results })
        }
    }

    /// Waits until every message queued before the call is acknowledged or has failed.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; the batches it made ready are still sent.
    ///
    /// # Errors
    /// [`Error::Closed`] if the writer stopped.
    pub async fn flush(&self) -> Result<()> {
        let sh = self.shared();
        let (tx, rx) = oneshot::channel();
        {
            let mut acc = lock(&sh.acc);
            let g = acc.generation;
            acc.generation += 1;
            acc.flushes.push_back((g, tx));
            // Answers it at once when nothing is unfinished.
            acc.settle(u64::MAX);
        }
        sh.wake.notify_one();
        rx.await.map_err(|_| Error::Closed)
    }

    /// Flushes, then stops this handle (kafka-go `Close`). The writer stops when the last
    /// clone is closed or dropped.
    ///
    /// # Errors
    /// As [`Writer::flush`].
    pub async fn close(self) -> Result<()> {
        self.flush().await
    }

    /// A health check of the writer's cluster: [`Cluster::ping`] (connect, ApiVersions,
    /// Metadata within `timeout`).
    ///
    /// # Errors
    /// As [`Cluster::ping`].
    pub async fn ping(&self, timeout: Duration) -> Result<crate::cluster::Ping> {
        self.cluster().ping(timeout).await
    }

    /// The counters so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.shared().counters;
        WriterStats {
            messages: c.messages.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            max_batch_messages: c.max_batch.load(Ordering::Relaxed),
            batch_time_us: c.batch_time_us.load(Ordering::Relaxed),
            dials: self.shared().cluster.dials(),
        }
    }
}

/// The producer id and epoch of an idempotent producer.
#[derive(Debug, Clone, Copy)]
struct ProducerId {
    id: i64,
    epoch: i16,
}

/// Asks for a new producer id (InitProducerId without a transactional id).
async fn init_producer_id(cluster: &Cluster) -> Result<ProducerId> {
    cluster
        .retry(|| async {
            let conn = cluster.any_broker(Workload::Produce).await?;
            let v = conn.version_for::<InitProducerIdRequest>()?;
            let req = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(-1);
            let resp = conn.request_version(&req, v).await?;
            Error::check(resp.error_code, None, || match ErrorCode::from_code(resp.error_code) {
                // Kafka 2.8+ (KIP-679) lets a principal with Write on any topic, or
                // IdempotentWrite on the cluster, be an idempotent producer.
                ErrorCode::ClusterAuthorizationFailed => format!(
                    "InitProducerId on {} (the idempotent producer needs Write on some topic or IdempotentWrite \
                     on the cluster; WriterConfig::with_idempotent(false) writes without a producer id)",
                    conn.addr()
                ),
                _ => format!("InitProducerId on {}", conn.addr()),
            })?;
            Ok(ProducerId { id: resp.producer_id, epoch: resp.producer_epoch })
        })
        .await
}

/// A batch taken from its queue to be sent; its encoding is kept so a retry sends the very
/// same bytes (same sequence numbers), as idempotence requires.
struct Batch {
    open: OpenBatch,
    base_sequence: i32,
    encoded: Bytes,
    first_sent: Option<Instant>,
    attempts: u32,
    not_before: Instant,
    /// Its last send went out while an earlier batch of the partition was unanswered.
    sent_behind: bool,
}

/// The writer task's state of one partition.
#[derive(Default)]
struct Part {
    /// Sent and not yet answered, in sequence order.
    inflight: VecDeque<u64>,
    /// Batches by id (in flight or waiting to be resent).
    batches: HashMap<u64, Batch>,
    /// Failed sends to resend, in sequence order, before anything new.
    resend: VecDeque<u64>,
    /// Results that arrived before those of batches sent earlier.
    done: HashMap<u64, Result<i64>>,
    next_sequence: i32,
    /// The broker has acknowledged a batch of this partition in the current epoch, so it
    /// holds the producer's state for it. Until then only one batch is in flight: a broker
    /// with no state for a producer accepts any first sequence (Kafka does, since KIP-360),
    /// so a later batch could land while the first is refused (NOT_LEADER_OR_FOLLOWER right
    /// after a topic is created, say) and be written ahead of it.
    confirmed: bool,
    /// The connection its requests go on.
    lane: Option<Lane>,
}

type PartKey = (Arc<str>, i32);

/// A Produce connection: the partition leader, and which of its
/// `WriterConfig::produce_concurrency` connections (from 0).
type Lane = (i32, u16);

/// The answer to one Produce request: the batches it carried and the response.
type Answer = (Vec<(PartKey, u64)>, Result<ProduceResponse>);

struct Engine {
    shared: Arc<Shared>,
    parts: HashMap<PartKey, Part>,
    producer: Option<ProducerId>,
    next_batch_id: u64,
    /// An epoch bump is waiting for the requests in flight to finish.
    bump_needed: bool,
    /// Per partition leader, the connection the next partition to go to it is given.
    next_lane: HashMap<i32, u16>,
}

impl Engine {
    async fn run(mut self) {
        let shared = self.shared.clone();
        let mut tasks: tokio::task::JoinSet<Answer> = tokio::task::JoinSet::new();
        loop {
            if self.bump_needed && tasks.is_empty() {
                self.bump_epoch().await;
            }
            let (ready, mut wake) = if self.bump_needed { (Vec::new(), None) } else { self.take_ready() };
            if !self.bump_needed {
                self.send(ready, &mut tasks).await;
            }
            if !self.bump_needed {
                wake = earliest(wake, self.resend_due());
            }
            if tasks.is_empty() && self.parts.values().all(|p| p.batches.is_empty()) {
                let acc = lock(&shared.acc);
                if acc.closed && acc.outstanding == 0 && acc.live.is_empty() {
                    return;
                }
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(answer) = done {
                        self.answer(answer);
                    }
                    // Take every other answer already in, before the next round.
                    while let Some(Ok(answer)) = tasks.try_join_next() {
                        self.answer(answer);
                    }
                }
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {}
            }
        }
    }

    /// When a resend's backoff ends on a partition with nothing in flight.
    fn resend_due(&self) -> Option<Instant> {
        self.parts
            .values()
            .filter(|p| p.inflight.is_empty())
            .filter_map(|p| p.resend.front().and_then(|id| p.batches.get(id)).map(|b| b.not_before))
            .min()
    }

    /// Fails batches that waited past the delivery timeout unsent, and takes from the
    /// accumulator every batch that may go now (full, lingered or flushed, within the
    /// partition's in-flight limit, with no resend pending). Returns them with the next time
    /// a queued batch becomes ready or expires.
    fn take_ready(&mut self) -> (Vec<(PartKey, OpenBatch)>, Option<Instant>) {
        let sh = &*self.shared;
        let cfg = &sh.config;
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut expired = Vec::new();
        let mut wake = None;
        {
            let mut guard = lock(&sh.acc);
            let acc = &mut *guard;
            let (generation, closed) = (acc.generation, acc.closed);
            for t in acc.topics.values_mut() {
                for (id, q) in t.parts.iter_mut().enumerate() {
                    let Some(q) = q else { continue };
                    while q.batches.front().is_some_and(|b| now.duration_since(b.created) >= cfg.delivery_timeout) {
                        if let Some(b) = q.batches.pop_front() {
                            expired.push((t.name.clone(), id as i32, b));
                        }
                    }
                    let Some(front) = q.batches.front() else { continue };
                    wake = earliest(wake, Some(front.created + cfg.delivery_timeout));
                    let key = (t.name.clone(), id as i32);
                    let (inflight, resending, confirmed) = self
                        .parts
                        .get(&key)
                        .map_or((0, false, false), |p| (p.inflight.len(), !p.resend.is_empty(), p.confirmed));
                    if resending {
                        continue;
                    }
                    let limit = if self.producer.is_some() && !confirmed { 1 } else { cfg.max_in_flight };
                    let mut room = limit.saturating_sub(inflight);
                    while room > 0 {
                        let Some(b) = q.batches.front() else { break };
                        let due = b.created + cfg.linger;
                        let go = q.batches.len() > 1
                            || b.count >= cfg.batch_size
                            || b.records.as_ref().is_some_and(|r| r.records_len() >= cfg.batch_bytes)
                            || b.generation < generation
                            || closed
                            || due <= now;
                        if !go {
                            wake = earliest(wake, Some(due));
                            break;
                        }
                        let Some(b) = q.batches.pop_front() else { break };
                        ready.push((key.clone(), b));
                        room -= 1;
                    }
                }
            }
        }
        for (topic, partition, b) in expired {
            let e = Error::DeliveryTimeout { topic: topic.to_string(), partition, timeout: cfg.delivery_timeout };
            self.finish(b, Err(e));
        }
        (ready, wake)
    }

    /// Numbers and encodes the batches taken, then sends them with every resend that is
    /// due: one Produce request per partition leader, a batch per partition.
    async fn send(&mut self, ready: Vec<(PartKey, OpenBatch)>, tasks: &mut tokio::task::JoinSet<Answer>) {
        let now = Instant::now();
        let mut go: Vec<(PartKey, u64)> = Vec::new();
        // Resends first: one at a time per partition, with nothing else in flight there.
        for (key, p) in &mut self.parts {
            if let Some(&id) = p.resend.front() {
                if p.inflight.is_empty() && p.batches.get(&id).is_some_and(|b| b.not_before <= now) {
                    p.resend.pop_front();
                    if let Some(b) = p.batches.get_mut(&id) {
                        b.sent_behind = false;
                    }
                    p.inflight.push_back(id);
                    go.push((key.clone(), id));
                }
            }
        }
        let compression = self.shared.config.compression;
        for (key, mut open) in ready {
            let id = self.next_batch_id;
            self.next_batch_id += 1;
            let p = self.parts.entry(key.clone()).or_default();
            let base_sequence = if self.producer.is_some() { p.next_sequence } else { -1 };
            match encode(&mut open, compression, self.producer, base_sequence) {
                Ok(encoded) => {
                    if self.producer.is_some() {
                        p.next_sequence = p.next_sequence.wrapping_add(open.count as i32) & i32::MAX;
                    }
                    let sent_behind = !p.inflight.is_empty();
                    p.batches.insert(
                        id,
                        Batch {
                            open,
                            base_sequence,
                            encoded,
                            first_sent: None,
                            attempts: 0,
                            not_before: now,
                            sent_behind,
                        },
                    );
                    p.inflight.push_back(id);
                    go.push((key, id));
                }
                Err(e) => self.finish(open, Err(e)),
            }
        }
        if go.is_empty() {
            return;
        }
        // Group by partition leader and the connection to it each partition keeps to.
        let meta = self.shared.cluster.metadata();
        let lanes = self.shared.config.produce_concurrency.clamp(1, usize::from(u16::MAX)) as u16;
        let mut by_lane: Vec<(Lane, Vec<(PartKey, u64)>)> = Vec::new();
        for (key, id) in go {
            let leader = match crate::cluster::with_leader(&key.0, key.1, meta.partition(&key.0, key.1)) {
                Ok(p) => p.leader,
                Err(e) => {
                    self.note_attempt(&key, id);
                    tasks.spawn(async move { (vec![(key, id)], Err(e)) });
                    continue;
                }
            };
            let p = self.parts.entry(key.clone()).or_default();
            let lane = match p.lane {
                Some(l) if l.0 == leader => l,
                _ => {
                    let next = self.next_lane.entry(leader).or_default();
                    let l = (leader, *next);
                    *next = (*next + 1) % lanes;
                    p.lane = Some(l);
                    l
                }
            };
            match by_lane.iter_mut().find(|(l, _)| *l == lane) {
                Some((_, v)) => v.push((key, id)),
                None => by_lane.push((lane, vec![(key, id)])),
            }
        }
        for ((leader, lane), mut batches) in by_lane {
            let workload = if lane == 0 { Workload::Produce } else { Workload::ProduceLane(lane) };
            let conn = self.shared.cluster.broker(leader, workload).await;
            // Requests of a batch per partition, in order, up to the request size.
            while !batches.is_empty() {
                let mut this: Vec<(PartKey, u64)> = Vec::new();
                let mut rest = Vec::new();
                let mut bytes = 0;
                for (key, id) in batches {
                    let len = self.parts.get(&key).and_then(|p| p.batches.get(&id)).map_or(0, |b| b.encoded.len());
                    let fits = this.is_empty() || bytes + len <= self.shared.config.max_request_bytes;
                    if fits && !this.iter().any(|(k, _)| *k == key) {
                        bytes += len;
                        this.push((key, id));
                    } else {
                        rest.push((key, id));
                    }
                }
                batches = rest;
                self.send_request(&conn, this, tasks).await;
            }
        }
    }

    fn note_attempt(&mut self, key: &PartKey, id: u64) {
        if let Some(b) = self.parts.get_mut(key).and_then(|p| p.batches.get_mut(&id)) {
            b.attempts += 1;
            if b.attempts > 1 {
                self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            b.first_sent.get_or_insert_with(Instant::now);
        }
    }

    /// Sends one Produce request on the leader's connection, in order; a task awaits the
    /// response.
    async fn send_request(
        &mut self,
        conn: &Result<crate::net::Conn>,
        entries: Vec<(PartKey, u64)>,
        tasks: &mut tokio::task::JoinSet<Answer>,
    ) {
        for (key, id) in &entries {
            self.note_attempt(key, *id);
        }
        let conn = match conn {
            Ok(c) => c.clone(),
            Err(e) => {
                let e = e.dup();
                tasks.spawn(async move { (entries, Err(e)) });
                return;
            }
        };
        let acks = self.shared.config.acks;
        // Produce v13 names topics by id (KIP-516): only when every topic's id is known.
        let meta = self.shared.cluster.metadata();
        let ids_known = entries.iter().all(|(key, _)| crate::topic_ids::known_id(&meta, &key.0).is_some());
        let version = match crate::topic_ids::version_for_topics::<ProduceRequest>(&conn, PRODUCE_BY_ID, ids_known) {
            Ok(v) => v,
            Err(e) => {
                tasks.spawn(async move { (entries, Err(e)) });
                return;
            }
        };
        let ProduceCall { req, size, version, ids } = produce_request(
            acks,
            conn.timeout_ms(),
            version,
            |t| crate::topic_ids::known_id(&meta, t).unwrap_or(kafkit_protocol::Uuid::ZERO),
            entries.iter().filter_map(|(key, id)| {
                let b = self.parts.get(key).and_then(|p| p.batches.get(id))?;
                Some((&*key.0, key.1, &b.encoded))
            }),
        );
        self.shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        if acks == Acks::None {
            let r = conn.send_without_response_version(&req, version).await.map(|_| ProduceResponse::default());
            tasks.spawn(async move { (entries, r) });
            return;
        }
        match conn.send_ordered_sized(&req, version, size).await {
            Ok(fut) => {
                tasks.spawn(async move {
                    let r = fut.await.map(|mut resp| {
                        ProduceCall::name_topics(&ids, &mut resp);
                        resp
                    });
                    (entries, r)
                });
            }
            Err(e) => {
                tasks.spawn(async move { (entries, Err(e)) });
            }
        }
    }

    /// Takes the answer to one request: each batch's own result, handled in the order the
    /// partition's batches were sent.
    fn answer(&mut self, (entries, result): Answer) {
        let acks_none = self.shared.config.acks == Acks::None;
        for (key, id) in entries {
            let r = match &result {
                Err(e) => Err(e.dup()),
                Ok(_) if acks_none => Ok(-1),
                Ok(resp) => partition_result(resp, &key.0, key.1),
            };
            self.complete(&key, id, r);
        }
    }

    /// Takes a finished send. Requests finish in any order, so results are handled strictly
    /// in the order the batches were sent: a later batch's OUT_OF_ORDER_SEQUENCE_NUMBER is
    /// only judged once the earlier batch's failure is known.
    fn complete(&mut self, key: &PartKey, id: u64, result: Result<i64>) {
        if let Some(p) = self.parts.get_mut(key) {
            p.done.insert(id, result);
        }
        loop {
            let next = {
                let Some(p) = self.parts.get_mut(key) else { return };
                match p.inflight.front().copied() {
                    Some(head) if p.done.contains_key(&head) => {
                        p.inflight.pop_front();
                        p.done.remove(&head).map(|r| (head, r))
                    }
                    _ => None,
                }
            };
            match next {
                Some((head, r)) => self.process(key, head, r),
                None => return,
            }
        }
    }

    fn process(&mut self, key: &PartKey, id: u64, outcome: Result<i64>) {
        let idempotent = self.producer.is_some();
        let delivery_timeout = self.shared.config.delivery_timeout;
        let backoff = self.shared.config.cluster.backoff;
        let Some(p) = self.parts.get_mut(key) else { return };
        let Some(mut batch) = p.batches.remove(&id) else { return };
        let e = match outcome {
            Ok(base) => {
                p.confirmed = true;
                let c = &self.shared.counters;
                let n = batch.open.count as u64;
                c.messages.fetch_add(n, Ordering::Relaxed);
                c.bytes.fetch_add(batch.open.bytes as u64, Ordering::Relaxed);
                c.batches.fetch_add(1, Ordering::Relaxed);
                c.max_batch.fetch_max(n, Ordering::Relaxed);
                if let Some(t) = batch.first_sent {
                    c.batch_time_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                self.finish(batch.open, Ok(base));
                return;
            }
            Err(e) => e,
        };
        let code = e.error_code();
        tracing::debug!(topic = %key.0, partition = key.1, base_sequence = batch.base_sequence, attempts = batch.attempts,
            sent_behind = batch.sent_behind, error = %e, "produce failed");
        let earlier_missing =
            p.resend.iter().any(|r| p.batches.get(r).is_some_and(|b| seq_before(b.base_sequence, batch.base_sequence)));
        // An OUT_OF_ORDER_SEQUENCE_NUMBER is retried (same sequence: the broker drops it if
        // it has it) when an earlier batch is to be resent, or when this one went out behind
        // an earlier batch still unanswered: a broker that checks a connection's requests
        // concurrently (Tansu does; Kafka never) may have seen it first. Sent with nothing
        // before it outstanding, it means the broker lost a batch: fatal.
        let ooo_retriable = earlier_missing || batch.sent_behind;
        let retriable = e.is_retriable()
            || (idempotent && code == Some(ErrorCode::OutOfOrderSequenceNumber) && ooo_retriable)
            || code == Some(ErrorCode::UnknownProducerId);
        let expired = batch.first_sent.is_some_and(|t| t.elapsed() >= delivery_timeout);
        if code == Some(ErrorCode::OutOfOrderSequenceNumber) && !ooo_retriable {
            let reason = format!("{e}: a batch was lost with nothing before it missing");
            lock(&self.shared.acc).fatal = Some(reason.clone());
            self.finish(batch.open, Err(Error::Fatal(reason)));
            return;
        }
        if retriable && !expired {
            if code == Some(ErrorCode::UnknownProducerId) {
                self.bump_needed = true;
            }
            batch.not_before = Instant::now() + backoff.delay(batch.attempts.saturating_sub(1));
            // Keep resends in sequence (batch id) order.
            let pos = p.resend.iter().position(|r| *r > id).unwrap_or(p.resend.len());
            p.resend.insert(pos, id);
            p.batches.insert(id, batch);
            let cluster = self.shared.cluster.clone();
            tokio::spawn(async move {
                let _ = cluster.refresh_metadata(None).await;
            });
            return;
        }
        let err = if expired {
            Error::DeliveryTimeout { topic: key.0.to_string(), partition: key.1, timeout: delivery_timeout }
        } else {
            e
        };
        self.finish(batch.open, Err(err));
        if idempotent {
            // A failed batch leaves a gap in the sequence: start a new epoch (KIP-360).
            self.bump_needed = true;
        }
    }

    /// Settles a batch for good: its futures, the completion, the counters and flushes.
    fn finish(&self, b: OpenBatch, r: Result<i64>) {
        let sh = &*self.shared;
        if r.is_err() {
            sh.counters.errors.fetch_add(b.count as u64, Ordering::Relaxed);
        }
        if let Some(f) = &sh.config.completion {
            let o = &b.outcome.0;
            match &r {
                Ok(base) => {
                    f(Ok(&Delivered { topic: o.topic.to_string(), partition: o.partition, offset: *base }), &b.messages)
                }
                Err(e) => f(Err(e), &b.messages),
            }
        }
        b.outcome.0.resolve(r);
        {
            let mut acc = lock(&sh.acc);
            acc.outstanding -= b.count;
            acc.outstanding_bytes -= b.record_bytes;
            acc.settle(b.generation);
        }
        sh.room.notify_waiters();
    }

    /// A new epoch (KIP-360): an idempotent producer without a transactional id has no
    /// coordinator and bumps its epoch itself; only when the epoch would overflow does it ask
    /// InitProducerId for a new producer id. Every unacknowledged batch is then renumbered
    /// from sequence 0 per partition, in order, its header rewritten in place.
    async fn bump_epoch(&mut self) {
        let next = match self.producer {
            Some(p) if p.epoch < i16::MAX - 1 => Ok(ProducerId { id: p.id, epoch: p.epoch + 1 }),
            _ => init_producer_id(&self.shared.cluster).await,
        };
        match next {
            Ok(pid) => {
                self.producer = Some(pid);
                for p in self.parts.values_mut() {
                    p.confirmed = false;
                    let mut seq = 0i32;
                    for id in &p.resend {
                        if let Some(b) = p.batches.get_mut(id) {
                            b.base_sequence = seq;
                            seq += b.open.count as i32;
                            let mut buf = BytesMut::from(&b.encoded[..]);
                            match RecordBatch::set_producer_state(&mut buf, pid.id, pid.epoch, b.base_sequence) {
                                Ok(()) => b.encoded = buf.freeze(),
                                Err(e) => tracing::warn!(error = %e, "rewriting a batch's producer state failed"),
                            }
                        }
                    }
                    p.next_sequence = seq;
                }
                self.bump_needed = false;
            }
            Err(e) => {
                let reason = format!("bumping the producer epoch failed: {e}");
                lock(&self.shared.acc).fatal = Some(reason.clone());
                let failed: Vec<Batch> = self
                    .parts
                    .values_mut()
                    .flat_map(|p| {
                        p.resend.clear();
                        p.batches.drain().map(|(_, b)| b).collect::<Vec<_>>()
                    })
                    .collect();
                for b in failed {
                    self.finish(b.open, Err(Error::Fatal(reason.clone())));
                }
                self.bump_needed = false;
            }
        }
    }
}

/// The produce path without I/O, for `benches/produce_path.rs`; not a stable API.
///
/// Appends `messages` to a topic of `partitions` partitions as [`Writer::write`] does (the
/// balancer, the accumulator, one shared outcome per batch), then takes every batch, numbers
/// and encodes it as an idempotent producer does, and encodes the Produce request frames
/// (ProduceRequest v9, a batch per partition per request, as the writer's task sends them
/// to one broker). Returns the frame bytes.
///
/// # Errors
/// What the append or the encoding refuses.
#[doc(hidden)]
pub fn bench_produce_path(config: &WriterConfig, partitions: i32, messages: Vec<Message>) -> Result<usize> {
    let name = "bench";
    let mut acc = Acc::default();
    let mut t = TopicQueues { name: Arc::from(name), meta_generation: 0, partitions: Vec::new(), parts: Vec::new() };
    t.set_partitions((0..partitions).collect(), 0);
    acc.topics.insert(name.to_string(), t);
    let mut futures = Vec::with_capacity(messages.len());
    for mut m in messages {
        let timestamp = to_millis(*m.time.get_or_insert_with(SystemTime::now));
        match acc.append(config, name, 0, m, timestamp) {
            Append::Done(f, _) => futures.push(f),
            Append::Refused(e) => return Err(e),
            Append::Unknown(_) => return Err(Error::Closed),
        }
    }
    let producer = Some(ProducerId { id: 1, epoch: 0 });
    let mut sequences = vec![0i32; partitions as usize];
    let mut total = 0;
    let Some(t) = acc.topics.get_mut(name) else { return Err(Error::Closed) };
    loop {
        let mut round = Vec::new();
        for (p, q) in t.parts.iter_mut().enumerate() {
            let Some(mut b) = q.as_mut().and_then(|q| q.batches.pop_front()) else { continue };
            let encoded = encode(&mut b, config.compression, producer, sequences[p])?;
            sequences[p] += b.count as i32;
            round.push((p as i32, encoded));
        }
        if round.is_empty() {
            break;
        }
        let v = kafkit_protocol::ApiVersion(9);
        let ProduceCall { req, size, .. } = produce_request(
            config.acks,
            30_000,
            v,
            |_| kafkit_protocol::Uuid::ZERO,
            round.iter().map(|(p, e)| (name, *p, e)),
        );
        let mut frame = BytesMut::with_capacity(size);
        kafkit_protocol::frame::encode_request(&mut frame, 1, Some("kafkit"), &req, v)
            .map_err(|source| Error::Encode { addr: String::new(), source })?;
        total += frame.len();
    }
    drop(futures);
    Ok(total)
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether sequence `a` comes before `b` (sequences wrap at `i32::MAX`).
fn seq_before(a: i32, b: i32) -> bool {
    a != b && (b.wrapping_sub(a) & i32::MAX) < (1 << 30)
}

/// The batch's records as one record batch, taken from it (retries resend these bytes, and
/// an epoch bump rewrites their header in place).
fn encode(
    b: &mut OpenBatch,
    compression: Compression,
    producer: Option<ProducerId>,
    base_sequence: i32,
) -> Result<Bytes> {
    let records = b.records.take().ok_or(Error::InvalidArgument("a batch encoded twice".into()))?;
    let (id, epoch) = producer.map_or((-1, -1), |p| (p.id, p.epoch));
    records
        .finish(compression, id, epoch, base_sequence)
        .map_err(|source| Error::Encode { addr: String::new(), source })
}

#[cfg(test)]
mod tests {
    use super::{seq_before, Message, Writer};

    /// Fails to compile if a writer's futures stop being `Send` (a lock guard held across an
    /// await once made them so): they must run in spawned tasks.
    #[allow(dead_code)]
    fn futures_are_send(w: &Writer) {
        fn send<T: Send>(_: T) {}
        send(w.write(Message::default()));
        send(w.write_messages(Vec::new()));
        send(w.flush());
    }

    #[test]
    fn sequences_compare_across_the_wrap() {
        assert!(seq_before(1, 2));
        assert!(!seq_before(2, 1));
        assert!(!seq_before(5, 5));
        assert!(seq_before(i32::MAX - 1, 3));
    }
}
