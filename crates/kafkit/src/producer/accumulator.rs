//! The accumulator (the Java producer's `RecordAccumulator`): what `Writer::write` appends
//! to, a queue of batches per partition, and the sender drains.

use super::config::WriterConfig;
use super::delivery::{DeliveryFuture, Outcome, OutcomeState, Resolver};
use super::produce::{produce_request, ProduceCall};
use super::sender::ProducerId;
use crate::error::{Error, Result};
use crate::message::{to_millis, Message};
use bytes::{Bytes, BytesMut};
use kafkit_protocol::compression::Compression;
use kafkit_protocol::record::RecordBatchBuilder;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tokio::sync::oneshot;

/// A batch still taking messages, or full and waiting for its partition's turn.
pub(crate) struct OpenBatch {
    /// The records, encoded as they were appended; taken when the batch is sent.
    pub(crate) records: Option<RecordBatchBuilder>,
    /// The messages, kept only for a [`Completion`]: without one, a message is dropped once
    /// its record is encoded.
    pub(crate) messages: Vec<Message>,
    /// How many messages.
    pub(crate) count: usize,
    /// Their keys' and values' bytes.
    pub(crate) bytes: usize,
    /// The bytes its records' buffer holds, used or not (counted in `Acc::outstanding_bytes`
    /// until the batch is finished; what [`WriterConfig::queue_bytes`] bounds).
    pub(crate) held_bytes: usize,
    pub(crate) created: Instant,
    /// Flushes asked for before it was opened: flush `g` waits for batches of generation
    /// `g` or lower.
    pub(crate) generation: u64,
    pub(crate) outcome: Resolver,
}

/// The batches of one partition waiting to be sent, oldest first; only the last takes new
/// messages.
#[derive(Default)]
pub(crate) struct PartQueue {
    pub(crate) batches: VecDeque<OpenBatch>,
    /// Records and their encoded bytes in the batch opened last before the open one: a new
    /// batch reserves room for as many, rather than doubling its buffers (and the heap's
    /// fragments) as it fills.
    pub(crate) hint: (usize, usize),
}

/// What the writer knows of one topic: its partitions (for the balancer) and their queues.
pub(crate) struct TopicQueues {
    pub(crate) name: Arc<str>,
    /// The cluster's metadata generation the partitions were read at.
    pub(crate) meta_generation: u64,
    /// The partition ids of the metadata, ascending (what the balancer chooses from).
    pub(crate) partitions: Vec<i32>,
    /// Every partition id that has a queue, ascending: those of `partitions` and any a
    /// later metadata no longer lists (their batches still go, or expire).
    pub(crate) ids: Vec<i32>,
    /// The queues, by position in `ids` (never by the raw id: a broker chooses ids).
    pub(crate) parts: Vec<PartQueue>,
}

impl TopicQueues {
    pub(crate) fn new(name: &str) -> TopicQueues {
        TopicQueues {
            name: Arc::from(name),
            meta_generation: 0,
            partitions: Vec::new(),
            ids: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Takes the partition ids of a new metadata snapshot (any ids, in any order); queues
    /// of ids no longer listed are kept.
    pub(crate) fn set_partitions(&mut self, mut ids: Vec<i32>, generation: u64) {
        ids.sort_unstable();
        ids.dedup();
        if ids.iter().any(|p| self.ids.binary_search(p).is_err()) {
            let mut old: std::collections::BTreeMap<i32, PartQueue> =
                self.ids.drain(..).zip(self.parts.drain(..)).collect();
            let mut all: Vec<i32> = old.keys().copied().chain(ids.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            self.parts = all.iter().map(|p| old.remove(p).unwrap_or_default()).collect();
            self.ids = all;
        }
        self.partitions = ids;
        self.meta_generation = generation;
    }

    /// The position of partition `id` in `ids`: at once where ids are 0 to n-1 (as the
    /// cluster's metadata checks), else by binary search.
    #[inline]
    pub(crate) fn index(&self, id: i32) -> Option<usize> {
        if let Ok(i) = usize::try_from(id) {
            if self.ids.get(i) == Some(&id) {
                return Some(i);
            }
        }
        self.ids.binary_search(&id).ok()
    }
}

/// The accumulator: what `write` appends to and the writer's task drains (the Java
/// producer's `RecordAccumulator`). Guarded by one mutex, held briefly.
#[derive(Default)]
pub(crate) struct Acc {
    pub(crate) topics: HashMap<String, TopicQueues>,
    /// Messages written and not yet acknowledged or failed, queued or in flight (what
    /// [`WriterConfig::queue_capacity`] bounds).
    pub(crate) outstanding: usize,
    /// Their records' bytes, encoded (what [`WriterConfig::queue_bytes`] bounds).
    pub(crate) outstanding_bytes: usize,
    /// Flushes asked for so far (the generation of new batches).
    pub(crate) generation: u64,
    /// Unfinished batches per generation, oldest first.
    pub(crate) live: VecDeque<(u64, usize)>,
    /// Flushes waiting, with their generation.
    pub(crate) flushes: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Every handle is gone: send everything, then stop.
    pub(crate) closed: bool,
    /// Set once the producer cannot go on; new writes fail with it.
    pub(crate) fatal: Option<String>,
}

/// What [`Acc::append`] did with a message.
pub(crate) enum Append {
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
    pub(crate) fn append(
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
        let Some(q) = t.index(p).and_then(|i| t.parts.get_mut(i)) else {
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
                    r.records_len() + r.record_len(timestamp, key, value, &msg.headers) <= cfg.batch_records_bytes()
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
                // a batch like the last one is never moved as it fills; but no more than the
                // queue has room for, since the room reserved counts against queue_bytes (a
                // small queue would otherwise hold one nearly empty batch at a time).
                records: Some(
                    RecordBatchBuilder::with_capacity(
                        (q.hint.1 + q.hint.1 / 4)
                            .min(cfg.batch_records_bytes())
                            .min(cfg.queue_bytes.saturating_sub(self.outstanding_bytes)),
                    )
                    .with_limit(cfg.batch_records_bytes()),
                ),
                messages: if cfg.completion.is_some() { Vec::with_capacity(q.hint.0) } else { Vec::new() },
                count: 0,
                bytes: 0,
                held_bytes: 0,
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
            r.append(timestamp, key, value, &msg.headers);
            // The buffer's growth (all of it for a batch's first record), not the record's
            // bytes: a batch reserves room ahead, and that room is memory too.
            let added = r.capacity().saturating_sub(b.held_bytes);
            b.held_bytes += added;
            self.outstanding_bytes += added;
        }
        let full = b.records.as_ref().is_some_and(|r| r.records_len() >= cfg.batch_records_bytes());
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

    pub(crate) fn settle(&mut self, generation: u64) {
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
    let mut t = TopicQueues::new(name);
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
    let mut sequences = vec![0i32; usize::try_from(partitions).unwrap_or(0)];
    let mut total = 0;
    let Some(t) = acc.topics.get_mut(name) else { return Err(Error::Closed) };
    loop {
        let mut round = Vec::new();
        for ((p, q), seq) in t.ids.iter().zip(t.parts.iter_mut()).zip(sequences.iter_mut()) {
            let Some(mut b) = q.batches.pop_front() else { continue };
            let encoded = encode(&mut b, config.compression, producer, *seq)?;
            *seq += b.count as i32;
            round.push((*p, encoded));
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

/// The batch's records as one record batch, taken from it (retries resend these bytes, and
/// an epoch bump rewrites their header in place).
pub(crate) fn encode(
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
