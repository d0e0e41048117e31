//! The `Writer`: batching, partitioning, acks, compression, retries and the idempotent
//! producer (KIP-98).

use super::balancer::{Balancer, RoundRobin};
use crate::cluster::{Cluster, ClusterConfig, Workload};
use crate::error::{Error, Result};
use crate::message::{to_millis, Message};
use crate::net::Acks;
use bytes::{Bytes, BytesMut};
use kafkit_protocol::compression::Compression;
use kafkit_protocol::messages::{produce_request, InitProducerIdRequest, ProduceRequest, ProduceResponse};
use kafkit_protocol::ErrorCode;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};

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
/// Default [`WriterConfig::delivery_timeout`]: 120 s (Java `delivery.timeout.ms`).
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Default [`WriterConfig::queue_capacity`]: 100,000 messages waiting for the writer.
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;

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
    /// Most bytes (keys and values) per batch. Default [`DEFAULT_BATCH_BYTES`].
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
    /// How long a message may wait, retries included, before it fails. Default
    /// [`DEFAULT_DELIVERY_TIMEOUT`].
    pub delivery_timeout: Duration,
    /// Create topics that do not exist, through Metadata's `allow_auto_topic_creation`
    /// (kafka-go `AllowAutoTopicCreation`). Default `false`.
    pub allow_auto_topic_creation: bool,
    /// Most messages waiting to be batched; `write` waits for room beyond. Default
    /// [`DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
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
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            allow_auto_topic_creation: false,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
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

/// The acknowledgement of one message written with [`Writer::write`].
///
/// Resolves once the broker acknowledged the message (or it failed for good). Dropping it
/// does not cancel the write.
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<Delivered>>,
}

impl Future for DeliveryFuture {
    type Output = Result<Delivered>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(Err(Error::Closed)))
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
    /// Messages that failed.
    pub errors: u64,
    /// Batch sends that were retried.
    pub retries: u64,
    /// The largest batch acknowledged, in messages.
    pub max_batch_messages: u64,
    /// Total time from a batch's first send to its acknowledgement, in microseconds.
    pub batch_time_us: u64,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    max_batch: AtomicU64,
    batch_time_us: AtomicU64,
}

type Promise = oneshot::Sender<Result<Delivered>>;

struct Pending {
    /// How many flushes were asked for before this message: flush `g` waits for every
    /// message of generation `g` or lower.
    generation: u64,
    msg: Message,
    timestamp: i64,
    size: usize,
    enqueued: Instant,
    promise: Option<Promise>,
}

// `Write` is nearly every command; boxing it would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Cmd {
    Write { topic: String, partition: i32, pending: Pending },
    Flush(oneshot::Sender<()>),
}

/// Writes messages to Kafka (kafka-go's `Writer`; the Java `KafkaProducer`).
///
/// Messages are partitioned by the balancer, gathered into batches per partition (up to
/// [`WriterConfig::batch_size`] messages or [`WriterConfig::batch_bytes`], waiting at most
/// [`WriterConfig::linger`]), compressed and sent to each partition leader, with up to
/// [`WriterConfig::max_in_flight`] batches in flight per partition. Retriable errors are
/// retried (metadata is refreshed first when a leader moved) until
/// [`WriterConfig::delivery_timeout`].
///
/// With the idempotent producer (the default), each batch carries the producer id, epoch
/// and a sequence number: retries never duplicate a message and never reorder a partition;
/// a batch the broker already has (DUPLICATE_SEQUENCE_NUMBER) counts as written; an
/// UNKNOWN_PRODUCER_ID bumps the epoch (KIP-360) and resends; an OUT_OF_ORDER_SEQUENCE_NUMBER
/// with no earlier batch missing is fatal ([`Error::Fatal`]).
///
/// A cheap `Clone`. [`Writer::close`] flushes; dropping every clone without closing drops
/// what is still buffered, and the futures of those messages fail with [`Error::Closed`].
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<WriterShared>,
}

struct WriterShared {
    config: WriterConfig,
    cluster: Cluster,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("config", &self.shared.config).finish()
    }
}

impl Writer {
    /// Connects to the cluster through `brokers` and starts the writer (with a producer id
    /// from InitProducerId when idempotent).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for settings that conflict (idempotence without
    /// [`Acks::All`], more than 5 in flight with idempotence, a zero batch size); as
    /// [`Cluster::connect`]; InitProducerId's error.
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
        let cluster = Cluster::connect(brokers, config.cluster.clone()).await?;
        let producer = if config.idempotent { Some(init_producer_id(&cluster).await?) } else { None };
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let engine = Engine {
            config: config.clone(),
            cluster: cluster.clone(),
            counters: counters.clone(),
            parts: BTreeMap::new(),
            producer,
            next_batch_id: 0,
            bump_needed: false,
            fatal: None,
            flushes: VecDeque::new(),
            generation: 0,
            live: BTreeMap::new(),
        };
        tokio::spawn(engine.run(rx));
        Ok(Writer { tx, shared: Arc::new(WriterShared { config, cluster, counters }) })
    }

    /// The cluster this writer talks to.
    pub fn cluster(&self) -> &Cluster {
        &self.shared.cluster
    }

    /// Queues one message and returns the future of its acknowledgement (the asynchronous
    /// mode; kafka-go's `Async` with a completion). Waits only when
    /// [`WriterConfig::queue_capacity`] messages are already waiting.
    ///
    /// # Cancellation
    /// Dropping this future before it returns leaves the message unqueued; once it returned,
    /// the message is sent whatever happens to the [`DeliveryFuture`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a message without a topic; the topic's metadata error
    /// (such as `UNKNOWN_TOPIC_OR_PARTITION`); [`Error::Closed`].
    pub async fn write(&self, msg: Message) -> Result<DeliveryFuture> {
        let (topic, partition) = self.route(&msg).await?;
        let (promise, rx) = oneshot::channel();
        let size = msg.key.as_ref().map_or(0, |k| k.len()) + msg.value.as_ref().map_or(0, |v| v.len());
        let timestamp = to_millis(msg.time.unwrap_or_else(SystemTime::now));
        let pending = Pending { generation: 0, msg, timestamp, size, enqueued: Instant::now(), promise: Some(promise) };
        self.tx.send(Cmd::Write { topic, partition, pending }).await.map_err(|_| Error::Closed)?;
        Ok(DeliveryFuture { rx })
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
    /// # Errors
    /// [`Error::Closed`] if the writer stopped.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Flush(tx)).await.map_err(|_| Error::Closed)?;
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

    /// The counters so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.shared.counters;
        WriterStats {
            messages: c.messages.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            max_batch_messages: c.max_batch.load(Ordering::Relaxed),
            batch_time_us: c.batch_time_us.load(Ordering::Relaxed),
        }
    }

    /// The topic and partition for `msg`.
    async fn route(&self, msg: &Message) -> Result<(String, i32)> {
        let cfg = &self.shared.config;
        let topic = match (&cfg.topic, msg.topic.is_empty()) {
            (Some(t), _) => t.clone(),
            (None, false) => msg.topic.clone(),
            (None, true) => return Err(Error::InvalidArgument("a message without a topic".into())),
        };
        let cluster = &self.shared.cluster;
        let meta = match cluster.topic(&topic).await {
            Ok(t) => t,
            Err(e) if cfg.allow_auto_topic_creation && e.error_code() == Some(ErrorCode::UnknownTopicOrPartition) => {
                let conn = cluster.any_broker(Workload::Admin).await?;
                conn.metadata_auto_create(&[&topic]).await?;
                cluster.retry(|| cluster.topic(&topic)).await?
            }
            Err(e) => return Err(e),
        };
        let partitions: Vec<i32> = meta.partitions.iter().map(|p| p.id).collect();
        if partitions.is_empty() {
            return Err(Error::Broker {
                code: ErrorCode::UnknownTopicOrPartition,
                context: format!("topic {topic} has no partitions"),
                message: None,
            });
        }
        let p = cfg.balancer.balance(msg, &partitions);
        if !partitions.contains(&p) {
            return Err(Error::InvalidArgument(format!("the balancer chose partition {p}, which {topic} lacks")));
        }
        Ok((topic, p))
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
            Error::check(resp.error_code, None, || format!("InitProducerId on {}", conn.addr()))?;
            Ok(ProducerId { id: resp.producer_id, epoch: resp.producer_epoch })
        })
        .await
}

/// A batch cut from a partition's queue; its encoding is kept so a retry sends the very
/// same bytes (same sequence numbers), as idempotence requires.
struct Batch {
    records: Vec<Pending>,
    base_sequence: i32,
    encoded: Bytes,
    first_sent: Option<Instant>,
    attempts: u32,
    not_before: Instant,
}

#[derive(Default)]
struct Part {
    queue: VecDeque<Pending>,
    queued_bytes: usize,
    /// Sent and not yet answered, in sequence order.
    inflight: VecDeque<u64>,
    /// Batches by id (in flight or waiting to be resent).
    batches: HashMap<u64, Batch>,
    /// Failed sends to resend, in sequence order, before anything new.
    resend: VecDeque<u64>,
    /// Results that arrived before those of batches sent earlier.
    done: HashMap<u64, Result<ProduceResponse>>,
    next_sequence: i32,
}

type Completion = (String, i32, u64, Result<ProduceResponse>);

struct Engine {
    config: WriterConfig,
    cluster: Cluster,
    counters: Arc<Counters>,
    parts: BTreeMap<(String, i32), Part>,
    producer: Option<ProducerId>,
    next_batch_id: u64,
    /// An epoch bump is waiting for the requests in flight to finish.
    bump_needed: bool,
    fatal: Option<String>,
    /// Flushes waiting, with their generation.
    flushes: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Flushes asked for so far (the generation of the next message).
    generation: u64,
    /// Unfinished messages per generation.
    live: BTreeMap<u64, usize>,
}

impl Engine {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut tasks: tokio::task::JoinSet<Completion> = tokio::task::JoinSet::new();
        let mut open = true;
        loop {
            // Take what has arrived.
            let mut flushing = !self.flushes.is_empty();
            if open {
                loop {
                    match rx.try_recv() {
                        Ok(cmd) => flushing |= self.accept(cmd),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            open = false;
                            flushing = true;
                            break;
                        }
                    }
                }
            }
            self.expire();
            if self.bump_needed && tasks.is_empty() {
                self.bump_epoch().await;
            }
            if !self.bump_needed {
                self.send_ready(&mut tasks, flushing || !open).await;
            }
            self.answer_flushes();
            if !open && self.idle() {
                return;
            }
            let wake = self.next_wake(flushing || !open);
            tokio::select! {
                cmd = rx.recv(), if open => match cmd {
                    Some(cmd) => { self.accept(cmd); }
                    None => open = false,
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok((topic, partition, id, result)) = done {
                        self.complete(&topic, partition, id, result);
                    }
                }
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {}
                // Every handle is gone and nothing is in flight or due: look again shortly
                // rather than leave `select!` with no branch.
                else => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Answers the flushes whose messages are all finished.
    fn answer_flushes(&mut self) {
        while let Some((g, _)) = self.flushes.front() {
            if self.live.keys().next().is_some_and(|oldest| oldest <= g) {
                break;
            }
            if let Some((_, tx)) = self.flushes.pop_front() {
                let _ = tx.send(());
            }
        }
    }

    /// Queues a command; returns whether it asks for a flush.
    fn accept(&mut self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Write { topic, partition, mut pending } => {
                if let Some(reason) = &self.fatal {
                    if let Some(p) = pending.promise.take() {
                        let _ = p.send(Err(Error::Fatal(reason.clone())));
                    }
                    return false;
                }
                pending.generation = self.generation;
                *self.live.entry(self.generation).or_insert(0) += 1;
                let part = self.parts.entry((topic, partition)).or_default();
                part.queued_bytes += pending.size;
                part.queue.push_back(pending);
                false
            }
            Cmd::Flush(tx) => {
                self.flushes.push_back((self.generation, tx));
                self.generation += 1;
                true
            }
        }
    }

    fn idle(&self) -> bool {
        self.parts.values().all(|p| p.queue.is_empty() && p.batches.is_empty())
    }

    /// When something next becomes actionable: a resend's backoff ends (with nothing in
    /// flight on its partition), a queue's linger ends (when it may send), or a queued
    /// message's delivery timeout passes. `None` when only a response or a command can
    /// change anything.
    fn next_wake(&self, flushing: bool) -> Option<Instant> {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        for p in self.parts.values() {
            if let Some(first) = p.queue.front() {
                at(first.enqueued + self.config.delivery_timeout);
            }
            if self.bump_needed {
                continue;
            }
            if let Some(id) = p.resend.front() {
                if p.inflight.is_empty() {
                    if let Some(b) = p.batches.get(id) {
                        at(b.not_before);
                    }
                }
                // Nothing new goes out before the resends.
                continue;
            }
            if let Some(first) = p.queue.front() {
                if p.inflight.len() < self.config.max_in_flight {
                    let full = p.queue.len() >= self.config.batch_size || p.queued_bytes >= self.config.batch_bytes;
                    at(if full || flushing { now } else { first.enqueued + self.config.linger });
                }
            }
        }
        wake
    }

    /// Fails messages that waited past the delivery timeout without being sent.
    fn expire(&mut self) {
        let timeout = self.config.delivery_timeout;
        let now = Instant::now();
        for ((topic, partition), p) in &mut self.parts {
            while p.queue.front().is_some_and(|m| now.duration_since(m.enqueued) >= timeout) {
                if let Some(mut m) = p.queue.pop_front() {
                    p.queued_bytes -= m.size;
                    settle(&mut self.live, m.generation);
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(pr) = m.promise.take() {
                        let _ = pr.send(Err(Error::DeliveryTimeout {
                            topic: topic.clone(),
                            partition: *partition,
                            timeout,
                        }));
                    }
                }
            }
        }
    }

    async fn send_ready(&mut self, tasks: &mut tokio::task::JoinSet<Completion>, flushing: bool) {
        let now = Instant::now();
        let keys: Vec<(String, i32)> = self.parts.keys().cloned().collect();
        for key in keys {
            while let Some(p) = self.parts.get_mut(&key) {
                // Resends go first, one at a time, so the partition stays in order.
                let id = if let Some(&id) = p.resend.front() {
                    if !p.inflight.is_empty() || p.batches.get(&id).is_some_and(|b| b.not_before > now) {
                        break;
                    }
                    p.resend.pop_front();
                    id
                } else {
                    if p.inflight.len() >= self.config.max_in_flight || p.queue.is_empty() {
                        break;
                    }
                    let full = p.queue.len() >= self.config.batch_size || p.queued_bytes >= self.config.batch_bytes;
                    let lingered =
                        p.queue.front().is_some_and(|m| now.duration_since(m.enqueued) >= self.config.linger);
                    if !(full || lingered || flushing) {
                        break;
                    }
                    match self.cut_batch(&key) {
                        Ok(id) => id,
                        Err(e) => {
                            self.fail_queue(&key, &e);
                            break;
                        }
                    }
                };
                if !self.send(&key, id, tasks).await {
                    break;
                }
            }
        }
    }

    /// Takes up to a batch's worth from the queue and encodes it.
    fn cut_batch(&mut self, key: &(String, i32)) -> Result<u64> {
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let producer = self.producer;
        let compression = self.config.compression;
        let (batch_size, batch_bytes) = (self.config.batch_size, self.config.batch_bytes);
        let Some(p) = self.parts.get_mut(key) else { return Err(Error::Closed) };
        let mut records = Vec::new();
        let mut bytes = 0;
        while let Some(m) = p.queue.front() {
            if !records.is_empty() && (records.len() >= batch_size || bytes + m.size > batch_bytes) {
                break;
            }
            bytes += m.size;
            p.queued_bytes -= m.size;
            if let Some(m) = p.queue.pop_front() {
                records.push(m);
            }
        }
        let base_sequence = if producer.is_some() { p.next_sequence } else { -1 };
        if producer.is_some() {
            p.next_sequence = p.next_sequence.wrapping_add(records.len() as i32) & i32::MAX;
        }
        let encoded = encode(&records, compression, producer, base_sequence)?;
        p.batches.insert(
            id,
            Batch { records, base_sequence, encoded, first_sent: None, attempts: 0, not_before: Instant::now() },
        );
        Ok(id)
    }

    /// Queues the batch on the partition leader's produce connection, in order; the response
    /// is awaited by a task. Returns false when nothing could be sent now.
    async fn send(&mut self, key: &(String, i32), id: u64, tasks: &mut tokio::task::JoinSet<Completion>) -> bool {
        let (topic, partition) = key.clone();
        let leader = self.cluster.leader(&topic, partition, Workload::Produce).await;
        let acks = self.config.acks;
        // Without a leader nothing is sent, so the timeout then does not matter.
        let timeout_ms = leader.as_ref().map_or(0, |(conn, _)| conn.timeout_ms());
        let Some(p) = self.parts.get_mut(key) else { return false };
        let Some(batch) = p.batches.get_mut(&id) else { return false };
        batch.attempts += 1;
        if batch.attempts > 1 {
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        batch.first_sent.get_or_insert_with(Instant::now);
        let req = ProduceRequest::default().with_acks(acks.code()).with_timeout_ms(timeout_ms).with_topic_data(vec![
            produce_request::TopicProduceData::default().with_name(topic.clone()).with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch.encoded.clone())),
            ]),
        ]);
        p.inflight.push_back(id);
        let conn = match leader {
            Ok((conn, _)) => conn,
            Err(e) => {
                tasks.spawn(async move { (topic, partition, id, Err(e)) });
                return false;
            }
        };
        if acks == Acks::None {
            let r = conn.send_without_response(&req).await.map(|_| ProduceResponse::default());
            tasks.spawn(async move { (topic, partition, id, r) });
            return true;
        }
        let sent = match conn.version_for::<ProduceRequest>() {
            Ok(v) => conn.send_ordered(&req, v).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(fut) => {
                tasks.spawn(async move { (topic, partition, id, fut.await) });
                true
            }
            Err(e) => {
                tasks.spawn(async move { (topic, partition, id, Err(e)) });
                false
            }
        }
    }

    /// Takes a finished send. Tasks finish in any order, so results are handled strictly in
    /// the order the batches were sent: a later batch's OUT_OF_ORDER_SEQUENCE_NUMBER is only
    /// judged once the earlier batch's failure is known.
    fn complete(&mut self, topic: &str, partition: i32, id: u64, result: Result<ProduceResponse>) {
        let key = (topic.to_string(), partition);
        if let Some(p) = self.parts.get_mut(&key) {
            p.done.insert(id, result);
        }
        loop {
            let next = {
                let Some(p) = self.parts.get_mut(&key) else { return };
                match p.inflight.front().copied() {
                    Some(head) if p.done.contains_key(&head) => {
                        p.inflight.pop_front();
                        p.done.remove(&head).map(|r| (head, r))
                    }
                    _ => None,
                }
            };
            match next {
                Some((head, r)) => self.process(topic, partition, head, r),
                None => return,
            }
        }
    }

    fn process(&mut self, topic: &str, partition: i32, id: u64, result: Result<ProduceResponse>) {
        let key = (topic.to_string(), partition);
        let acks_none = self.config.acks == Acks::None;
        let idempotent = self.producer.is_some();
        let delivery_timeout = self.config.delivery_timeout;
        let backoff = self.config.cluster.backoff;
        let Some(p) = self.parts.get_mut(&key) else { return };
        let outcome = result.and_then(|resp| {
            if acks_none {
                return Ok(-1);
            }
            let pr = resp
                .responses
                .iter()
                .flat_map(|t| t.partition_responses.iter())
                .find(|r| r.index == partition)
                .ok_or_else(|| Error::Broker {
                    code: ErrorCode::UnknownServerError,
                    context: format!("produce response lacks {topic}/{partition}"),
                    message: None,
                })?;
            match ErrorCode::from_code(pr.error_code) {
                ErrorCode::None => Ok(pr.base_offset),
                // Already written by an earlier try of this very batch.
                ErrorCode::DuplicateSequenceNumber => Ok(pr.base_offset),
                code => Err(Error::Broker {
                    code,
                    context: format!("producing to {topic}/{partition}"),
                    message: pr.error_message.clone(),
                }),
            }
        });
        let Some(mut batch) = p.batches.remove(&id) else { return };
        match outcome {
            Ok(base) => {
                let n = batch.records.len() as u64;
                let bytes: usize = batch.records.iter().map(|r| r.size).sum();
                self.counters.messages.fetch_add(n, Ordering::Relaxed);
                self.counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                self.counters.max_batch.fetch_max(n, Ordering::Relaxed);
                if let Some(t) = batch.first_sent {
                    self.counters.batch_time_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                for (i, r) in batch.records.iter_mut().enumerate() {
                    settle(&mut self.live, r.generation);
                    if let Some(pr) = r.promise.take() {
                        let offset = if base >= 0 { base + i as i64 } else { -1 };
                        let _ = pr.send(Ok(Delivered { topic: topic.to_string(), partition, offset }));
                    }
                }
            }
            Err(e) => {
                let code = e.error_code();
                let earlier_missing = p
                    .resend
                    .iter()
                    .any(|r| p.batches.get(r).is_some_and(|b| seq_before(b.base_sequence, batch.base_sequence)));
                let retriable = e.is_retriable()
                    || (idempotent && code == Some(ErrorCode::OutOfOrderSequenceNumber) && earlier_missing)
                    || code == Some(ErrorCode::UnknownProducerId);
                let expired = batch.first_sent.is_some_and(|t| t.elapsed() >= delivery_timeout);
                if code == Some(ErrorCode::OutOfOrderSequenceNumber) && !earlier_missing {
                    let reason = format!("{e}: a batch was lost with nothing before it missing");
                    self.fatal = Some(reason.clone());
                    fail_batch(&mut batch, &Error::Fatal(reason), &self.counters, &mut self.live);
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
                    let cluster = self.cluster.clone();
                    tokio::spawn(async move {
                        let _ = cluster.refresh_metadata(None).await;
                    });
                    return;
                }
                let err = if expired {
                    Error::DeliveryTimeout { topic: topic.to_string(), partition, timeout: delivery_timeout }
                } else {
                    e
                };
                fail_batch(&mut batch, &err, &self.counters, &mut self.live);
                if idempotent {
                    // A failed batch leaves a gap in the sequence: start a new epoch (KIP-360).
                    self.bump_needed = true;
                }
            }
        }
    }

    fn fail_queue(&mut self, key: &(String, i32), e: &Error) {
        if let Some(p) = self.parts.get_mut(key) {
            for mut m in p.queue.drain(..) {
                settle(&mut self.live, m.generation);
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(pr) = m.promise.take() {
                    let _ = pr.send(Err(e.dup()));
                }
            }
            p.queued_bytes = 0;
        }
    }

    /// A new epoch (KIP-360): an idempotent producer without a transactional id has no
    /// coordinator and bumps its epoch itself; only when the epoch would overflow does it ask
    /// InitProducerId for a new producer id. Every unacknowledged batch is then renumbered
    /// from sequence 0 per partition, in order, and re-encoded.
    async fn bump_epoch(&mut self) {
        let next = match self.producer {
            Some(p) if p.epoch < i16::MAX - 1 => Ok(ProducerId { id: p.id, epoch: p.epoch + 1 }),
            _ => init_producer_id(&self.cluster).await,
        };
        match next {
            Ok(pid) => {
                self.producer = Some(pid);
                let compression = self.config.compression;
                for p in self.parts.values_mut() {
                    let mut seq = 0i32;
                    let ids: Vec<u64> = p.resend.iter().copied().collect();
                    for id in ids {
                        if let Some(b) = p.batches.get_mut(&id) {
                            b.base_sequence = seq;
                            seq += b.records.len() as i32;
                            match encode(&b.records, compression, Some(pid), b.base_sequence) {
                                Ok(e) => b.encoded = e,
                                Err(e) => tracing::warn!(error = %e, "re-encoding a batch failed"),
                            }
                        }
                    }
                    p.next_sequence = seq;
                }
                self.bump_needed = false;
            }
            Err(e) => {
                let reason = format!("bumping the producer epoch failed: {e}");
                self.fatal = Some(reason.clone());
                for p in self.parts.values_mut() {
                    for (_, mut b) in p.batches.drain() {
                        fail_batch(&mut b, &Error::Fatal(reason.clone()), &self.counters, &mut self.live);
                    }
                    p.resend.clear();
                }
                self.bump_needed = false;
            }
        }
    }
}

/// Marks a message of generation `g` finished.
fn settle(live: &mut BTreeMap<u64, usize>, g: u64) {
    if let Some(n) = live.get_mut(&g) {
        *n -= 1;
        if *n == 0 {
            live.remove(&g);
        }
    }
}

/// Whether sequence `a` comes before `b` (sequences wrap at `i32::MAX`).
fn seq_before(a: i32, b: i32) -> bool {
    a != b && (b.wrapping_sub(a) & i32::MAX) < (1 << 30)
}

fn fail_batch(batch: &mut Batch, e: &Error, counters: &Counters, live: &mut BTreeMap<u64, usize>) {
    for r in &mut batch.records {
        settle(live, r.generation);
        counters.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(pr) = r.promise.take() {
            let _ = pr.send(Err(e.dup()));
        }
    }
}

fn encode(
    records: &[Pending],
    compression: Compression,
    producer: Option<ProducerId>,
    base_sequence: i32,
) -> Result<Bytes> {
    let mut batch = crate::message::record_batch(records.iter().map(|r| (&r.msg, r.timestamp)), compression);
    if let Some(p) = producer {
        batch.producer_id = p.id;
        batch.producer_epoch = p.epoch;
        batch.base_sequence = base_sequence;
    }
    let mut buf = BytesMut::with_capacity(batch.uncompressed_len());
    batch.encode(&mut buf).map_err(|source| Error::Encode { addr: String::new(), source })?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::seq_before;

    #[test]
    fn sequences_compare_across_the_wrap() {
        assert!(seq_before(1, 2));
        assert!(!seq_before(2, 1));
        assert!(!seq_before(5, 5));
        assert!(seq_before(i32::MAX - 1, 3));
    }
}
