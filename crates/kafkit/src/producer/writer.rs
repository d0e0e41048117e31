//! The `Writer`: batching, partitioning, acks, compression, retries and the idempotent
//! producer (KIP-98).

use super::accumulator::{Acc, Append, TopicQueues};
use super::config::WriterConfig;
use super::delivery::{lock, Delivered, DeliveryFuture, WriteErrors};
use super::sender::{init_producer_id, Engine};
use crate::cluster::{Cluster, Workload};
use crate::error::{Error, Result};
use crate::message::{to_millis, Message};
use crate::net::Acks;
use kafkit_protocol::ErrorCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, Notify};

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
pub(crate) struct Counters {
    pub(crate) messages: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) max_batch: AtomicU64,
    pub(crate) batch_time_us: AtomicU64,
}

pub(crate) struct Shared {
    pub(crate) config: WriterConfig,
    /// [`WriterConfig::topic`], shared with each write (empty without one).
    pub(crate) topic: Arc<str>,
    pub(crate) cluster: Cluster,
    pub(crate) counters: Counters,
    pub(crate) acc: Mutex<Acc>,
    /// Wakes the writer's task: a batch is ready or a queue started, a flush, or a close.
    pub(crate) wake: Notify,
    /// Wakes writes waiting for room in the queue.
    pub(crate) room: Notify,
    /// The transactional producer's state, with a transactional id.
    pub(crate) txn: Option<Arc<super::txn::TxnShared>>,
}

/// Closes the writer when the last [`Writer`] clone goes.
pub(crate) struct Handle(pub(crate) Arc<Shared>);

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
    pub(crate) handle: Arc<Handle>,
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
        if config.transactional_id.as_deref().is_some_and(str::is_empty) {
            return Err(Error::InvalidArgument("an empty transactional id".into()));
        }
        if config.transactional_id.is_some() && !config.idempotent {
            return Err(Error::InvalidArgument("a transactional producer must be idempotent".into()));
        }
        let txn = config.transactional_id.clone().map(|id| Arc::new(super::txn::TxnShared::new(id)));
        let cluster = Cluster::connect(brokers, config.cluster.clone()).await?;
        // A transactional producer gets its producer id in `init_transactions`.
        let producer = if config.idempotent && txn.is_none() { Some(init_producer_id(&cluster).await?) } else { None };
        let shared = Arc::new(Shared {
            topic: Arc::from(config.topic.as_deref().unwrap_or("")),
            config,
            cluster,
            counters: Counters::default(),
            acc: Mutex::new(Acc::default()),
            wake: Notify::new(),
            room: Notify::new(),
            txn,
        });
        let engine = Engine {
            shared: shared.clone(),
            parts: HashMap::new(),
            producer,
            next_batch_id: 0,
            bump_needed: false,
            next_lane: HashMap::new(),
            txn_gen: 0,
            watch: Default::default(),
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
    /// `UNKNOWN_TOPIC_OR_PARTITION`); [`Error::Malformed`] when the broker's metadata of the
    /// topic is unusable (partition ids not 0 to n-1, each once; other topics are written as
    /// usual); [`Error::Fatal`] once the producer failed for good.
    pub async fn write(&self, mut msg: Message) -> Result<DeliveryFuture> {
        let sh = self.shared();
        if let Some(t) = &sh.txn {
            t.check_write()?;
        }
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
        let t = acc.topics.entry(topic.to_string()).or_insert_with(|| TopicQueues::new(topic));
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

#[cfg(test)]
mod tests {
    use super::{Message, Writer};

    /// Fails to compile if a writer's futures stop being `Send` (a lock guard held across an
    /// await once made them so): they must run in spawned tasks.
    #[allow(dead_code)]
    fn futures_are_send(w: &Writer) {
        fn send<T: Send>(_: T) {}
        send(w.write(Message::default()));
        send(w.write_messages(Vec::new()));
        send(w.flush());
    }
}
