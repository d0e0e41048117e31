//! The writer's task: takes ready batches from the accumulator, numbers them (the
//! idempotent producer's sequences), sends them to their partition leaders, and settles
//! their outcomes in order (retries, epoch bumps, delivery timeouts).

use super::accumulator::{encode, OpenBatch};
use super::delivery::{lock, Delivered};
use super::produce::{batch_result, produce_request, ProduceCall, PRODUCE_BY_ID};
use super::writer::Shared;
use crate::cluster::{Cluster, Workload};
use crate::error::{Error, Result};
use crate::net::Acks;
use bytes::{Bytes, BytesMut};
use kafkit_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse};
use kafkit_protocol::record::RecordBatch;
use kafkit_protocol::{ApiKey, ErrorCode};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The producer id and epoch of an idempotent producer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducerId {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
}

/// Asks for a new producer id (InitProducerId without a transactional id), of the brokers
/// that have been answering first, each given 5 s.
pub(crate) async fn init_producer_id(cluster: &Cluster) -> Result<ProducerId> {
    cluster
        .retry(|| {
            cluster.on_any_broker(Workload::Produce, ApiKey::InitProducerId, |conn| async move {
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
        })
        .await
}

/// A batch taken from its queue to be sent; its encoding is kept so a retry sends the very
/// same bytes (same sequence numbers), as idempotence requires.
pub(crate) struct Batch {
    pub(crate) open: OpenBatch,
    pub(crate) base_sequence: i32,
    pub(crate) encoded: Bytes,
    pub(crate) first_sent: Option<Instant>,
    pub(crate) attempts: u32,
    pub(crate) not_before: Instant,
    /// Its last send went out while an earlier batch of the partition was unanswered.
    pub(crate) sent_behind: bool,
}

/// The writer task's state of one partition.
#[derive(Default)]
pub(crate) struct Part {
    /// Sent and not yet answered, in sequence order.
    pub(crate) inflight: VecDeque<u64>,
    /// Batches by id (in flight or waiting to be resent).
    pub(crate) batches: HashMap<u64, Batch>,
    /// Failed sends to resend, in sequence order, before anything new.
    pub(crate) resend: VecDeque<u64>,
    /// Results that arrived before those of batches sent earlier.
    pub(crate) done: HashMap<u64, Result<i64>>,
    pub(crate) next_sequence: i32,
    /// The broker has acknowledged a batch of this partition in the current epoch, so it
    /// holds the producer's state for it. Until then only one batch is in flight: a broker
    /// with no state for a producer accepts any first sequence (Kafka does, since KIP-360),
    /// so a later batch could land while the first is refused (NOT_LEADER_OR_FOLLOWER right
    /// after a topic is created, say) and be written ahead of it.
    pub(crate) confirmed: bool,
    /// The connection its requests go on.
    pub(crate) lane: Option<Lane>,
}

pub(crate) type PartKey = (Arc<str>, i32);

/// A Produce connection: the partition leader, and which of its
/// `WriterConfig::produce_concurrency` connections (from 0).
pub(crate) type Lane = (i32, u16);

/// The answer to one Produce request: the batches it carried and the response.
pub(crate) type Answer = (Vec<(PartKey, u64)>, Result<ProduceResponse>);

pub(crate) struct Engine {
    pub(crate) shared: Arc<Shared>,
    pub(crate) parts: HashMap<PartKey, Part>,
    pub(crate) producer: Option<ProducerId>,
    pub(crate) next_batch_id: u64,
    /// An epoch bump is waiting for the requests in flight to finish.
    pub(crate) bump_needed: bool,
    /// Per partition leader, the connection the next partition to go to it is given.
    pub(crate) next_lane: HashMap<i32, u16>,
    /// The transactional producer's id generation last taken (see `txn_sync`).
    pub(crate) txn_gen: u64,
    /// Silent connections and the leaders that replace them (`stall.rs`).
    pub(crate) watch: super::stall::Watch,
}

impl Engine {
    pub(crate) async fn run(mut self) {
        let shared = self.shared.clone();
        let mut tasks: tokio::task::JoinSet<Answer> = tokio::task::JoinSet::new();
        let mut watch = tokio::time::interval(crate::cluster::SILENT / 2);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                _ = watch.tick(), if !tasks.is_empty() => self.watch_leaders(),
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
        let shared = Arc::clone(&self.shared);
        let sh = &*shared;
        let cfg = &sh.config;
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut expired = Vec::new();
        let mut wake = None;
        {
            let mut guard = lock(&sh.acc);
            // A transaction's records reach the accumulator only after the EndTxn before it
            // gave the new epoch, so with the accumulator locked the epoch read now is
            // theirs. Read before the lock, it could be the previous transaction's: its
            // batches would go out with a stale epoch and meet INVALID_PRODUCER_EPOCH.
            self.txn_sync();
            let acc = &mut *guard;
            let (generation, closed) = (acc.generation, acc.closed);
            for t in acc.topics.values_mut() {
                for (&id, q) in t.ids.iter().zip(t.parts.iter_mut()) {
                    while q.batches.front().is_some_and(|b| now.duration_since(b.created) >= cfg.delivery_timeout) {
                        if let Some(b) = q.batches.pop_front() {
                            expired.push((t.name.clone(), id, b));
                        }
                    }
                    let Some(front) = q.batches.front() else { continue };
                    wake = earliest(wake, Some(front.created + cfg.delivery_timeout));
                    let key = (t.name.clone(), id);
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
                            || b.records.as_ref().is_some_and(|r| r.records_len() >= cfg.batch_records_bytes())
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
    async fn send(&mut self, mut ready: Vec<(PartKey, OpenBatch)>, tasks: &mut tokio::task::JoinSet<Answer>) {
        if self.shared.txn.is_some() && !ready.is_empty() {
            // Partitions join the transaction before their first batch (v1); a transaction
            // that must be aborted sends nothing more.
            let keys: Vec<PartKey> = ready.iter().map(|(k, _)| k.clone()).collect();
            let added = match self.txn_new_partitions(&keys) {
                Ok(new) => self.txn_add_partitions(new).await,
                Err(e) => Err(e),
            };
            if let Err(e) = added {
                for (_, open) in std::mem::take(&mut ready) {
                    self.finish(open, Err(e.dup()));
                }
            }
        }
        self.dials_done();
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
                Ok(mut encoded) => {
                    if self.shared.txn.is_some() {
                        // The transactional attribute (KIP-98).
                        let mut buf = encoded.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
                        if let Err(e) = RecordBatch::set_transactional(&mut buf) {
                            tracing::warn!(error = %e, "marking a batch transactional failed");
                        }
                        encoded = buf.freeze();
                    }
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
        // A transactional writer keeps to one connection per leader: the broker verifies a
        // transaction's partitions per transactional id, and of two Produce requests of one
        // transaction it handles at once it fails the older (NOT_ENOUGH_REPLICAS, "unable to
        // verify ... NETWORK_EXCEPTION"), which cost a resend in most small transactions.
        let lanes = match self.shared.txn {
            Some(_) => 1,
            None => self.shared.config.produce_concurrency.clamp(1, usize::from(u16::MAX)) as u16,
        };
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
            // Never dial here: a dial toward a frozen broker can take the whole connect and
            // request timeouts, and would hold back every other broker's batches.
            let Some(c) = self.shared.cluster.connected(leader, workload) else {
                self.defer_for_dial((leader, lane), workload, batches);
                continue;
            };
            self.watch.sent_on((leader, lane), &c);
            let conn = Ok(c);
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

    pub(crate) fn note_attempt(&mut self, key: &PartKey, id: u64) {
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
            Ok(v) => self.txn_produce_version(v),
            Err(e) => {
                tasks.spawn(async move { (entries, Err(e)) });
                return;
            }
        };
        let ProduceCall { mut req, size, version, ids } = produce_request(
            acks,
            conn.timeout_ms(),
            version,
            |t| crate::topic_ids::known_id(&meta, t).unwrap_or(kafkit_protocol::Uuid::ZERO),
            entries.iter().filter_map(|(key, id)| {
                let b = self.parts.get(key).and_then(|p| p.batches.get(id))?;
                Some((&*key.0, key.1, &b.encoded))
            }),
        );
        if let Some(t) = &self.shared.txn {
            req.transactional_id = Some(t.id.clone());
        }
        self.shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        if acks == Acks::None {
            let r = conn.send_without_response_version(&req, version).await.map(|_| ProduceResponse::default());
            tasks.spawn(async move { (entries, r) });
            return;
        }
        match conn.send_ordered_owned(req, version, size).await {
            Ok(fut) => {
                tasks.spawn(async move {
                    // A Produce unanswered for the whole request timeout closes the
                    // connection: the others waiting on it fail now, not one by one.
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
                Ok(resp) => {
                    let count = self.parts.get(&key).and_then(|p| p.batches.get(&id)).map_or(0, |b| b.open.count);
                    batch_result(resp, &key.0, key.1, count, || self.leader_addr(&key))
                }
            };
            self.complete(&key, id, r);
        }
    }

    /// The address of `key`'s partition leader in the metadata now, to name in an error.
    fn leader_addr(&self, key: &PartKey) -> String {
        let meta = self.shared.cluster.metadata();
        let leader = meta.partition(&key.0, key.1).map_or(-1, |p| p.leader);
        meta.brokers.get(&leader).map_or_else(|| format!("the partition leader of {}/{}", key.0, key.1), |b| b.addr())
    }

    /// Takes a finished send. Requests finish in any order, so results are handled strictly
    /// in the order the batches were sent: a later batch's OUT_OF_ORDER_SEQUENCE_NUMBER is
    /// only judged once the earlier batch's failure is known.
    pub(crate) fn complete(&mut self, key: &PartKey, id: u64, result: Result<i64>) {
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
        let transactional = self.shared.txn.is_some();
        let retriable = e.is_retriable()
            || (idempotent && code == Some(ErrorCode::OutOfOrderSequenceNumber) && ooo_retriable)
            || (code == Some(ErrorCode::UnknownProducerId) && !transactional);
        let expired = batch.first_sent.is_some_and(|t| t.elapsed() >= delivery_timeout);
        if code == Some(ErrorCode::OutOfOrderSequenceNumber) && !ooo_retriable {
            let reason = format!("{e}: a batch was lost with nothing before it missing");
            lock(&self.shared.acc).fatal = Some(reason.clone());
            if let Some(t) = &self.shared.txn {
                t.fail(&Error::Fatal(reason.clone()));
            }
            self.finish(batch.open, Err(Error::Fatal(reason)));
            return;
        }
        if retriable && !expired {
            if code == Some(ErrorCode::UnknownProducerId) {
                self.bump_needed = true;
            }
            batch.not_before =
                Instant::now() + super::txn::produce_backoff(transactional, code, backoff, batch.attempts);
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
        if let Some(t) = &self.shared.txn {
            // The transaction can only be aborted now (the abort takes the new epoch).
            t.fail(&err);
            self.finish(batch.open, Err(err));
            return;
        }
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
            acc.outstanding_bytes -= b.held_bytes;
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

/// The earlier of two optional instants.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether sequence `a` comes before `b` (sequences wrap at `i32::MAX`).
pub(crate) fn seq_before(a: i32, b: i32) -> bool {
    a != b && (b.wrapping_sub(a) & i32::MAX) < (1 << 30)
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
