//! The fetch engine behind the [`Reader`](crate::Reader), in both modes: the set of
//! partitions being read (one fixed partition, or a consumer group's assignment), their
//! positions and buffers, and one fetch task per partition leader that fetches all of that
//! broker's partitions in one Fetch request.
//!
//! Positions: `fetch_pos` is the next offset to fetch; `position` the next offset to give
//! the application (everything before it was handed out, or was a control record);
//! `to_commit` the offset the application allowed to be committed; `committed` the last one
//! the coordinator acknowledged. `start` is where the current assignment began: a commit
//! below it would belong to an earlier owner's messages.
//!
//! The engine is the one owner of that state: the group task and the `Reader` change it
//! only through the engine's methods (assign, revoke, seek, pause, marking and
//! acknowledging commits).
//!
//! Errors reach the application four ways, all through [`Engine::next`]:
//! - a *fatal* error of the reader ([`Engine::fail`]: the group's fatal errors, a
//!   non-retriable error of a whole fetch) fails every later read until the reader is
//!   closed;
//! - a *partition* failure (OFFSET_OUT_OF_RANGE under [`OffsetReset::Fail`], a
//!   non-retriable error code for one partition, records that do not decode) fails every
//!   later read until that partition is sought or leaves the reader; it is not fetched
//!   meanwhile;
//! - *transient* errors ([`Engine::report`]: a fetch response that does not decode) are
//!   each returned once, from a queue of at most [`ERROR_QUEUE`] (an error equal to one
//!   already queued is counted, not queued again; when full the oldest is dropped);
//! - [`Error::NoBrokerReachable`] is not queued: a waiting read returns it once no broker
//!   has answered (`Engine::reached`, `Engine::unreachable`) for the cluster's retry
//!   timeout, and again each retry timeout after the last one.

use super::assignor::TopicPartition;
use super::reader::{OffsetReset, PartitionState, StartOffset};
use crate::cluster::{Cluster, Workload, SILENT};
use crate::error::{Error, Result};
use crate::fetch::{Batches, Limits, Selected, Spot};
use crate::message::Message;
use crate::net::IsolationLevel;
use kafkit_protocol::record::DecodeOptions;
use kafkit_protocol::{ErrorCode, Uuid};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Most transient errors queued for the application at once (see the module docs).
pub(crate) const ERROR_QUEUE: usize = 64;

/// Fetch settings shared by every partition of a reader.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub fetch_max_bytes: i32,
    /// Fetches in flight at once per partition leader, each for a share of its partitions.
    pub concurrency: usize,
    pub max_wait: Duration,
    pub prefetch_bytes: usize,
    pub isolation: IsolationLevel,
    pub reset: OffsetReset,
}

/// A fetch response's share of the budget: taken before the fetch is sent, for the most
/// the response may be, cut to its size once it came, and given back when nothing points
/// into it any more (its last partition decoded, its last chunk with messages in it read).
pub(super) type Response = Arc<OwnedSemaphorePermit>;

/// Fetched messages of one partition, with the budget they hold until read.
struct Chunk {
    /// Its place in the order chunks were fetched in (`State::ready`).
    seq: u64,
    messages: VecDeque<Message>,
    /// The offset after the fetch's last batch.
    next: i64,
    bytes: usize,
    /// The budget of the message vector and of decompressed keys and values.
    _permit: Option<OwnedSemaphorePermit>,
    /// The fetch response that messages of uncompressed batches point into.
    response: Option<Response>,
}

/// A message's key, value and header values.
fn field_bytes(m: &Message) -> impl Iterator<Item = &bytes::Bytes> {
    m.key.iter().chain(&m.value).chain(m.headers.iter().filter_map(|h| h.value.as_ref()))
}

/// The same, to be replaced.
fn field_bytes_mut(m: &mut Message) -> impl Iterator<Item = &mut bytes::Bytes> {
    m.key.iter_mut().chain(m.value.iter_mut()).chain(m.headers.iter_mut().filter_map(|h| h.value.as_mut()))
}

impl Chunk {
    /// Copies the messages out of the fetch response they point into, so that it goes (and
    /// its budget comes back) while they wait: for a paused partition, whose chunks could
    /// otherwise keep whole responses, and with them the budget, for as long as it is
    /// paused. One buffer per chunk; a chunk with no message in a response (compressed
    /// batches only, in buffers of their own) is left as it is.
    fn detach(&mut self) {
        if self.response.take().is_none() {
            return;
        }
        let total: usize = self.messages.iter().map(|m| field_bytes(m).map(bytes::Bytes::len).sum::<usize>()).sum();
        let mut buf = bytes::BytesMut::with_capacity(total);
        for b in self.messages.iter_mut().flat_map(field_bytes_mut) {
            // Each field's copy is split off the one buffer, which they all share.
            buf.extend_from_slice(b);
            *b = buf.split().freeze();
        }
    }
}

/// One partition being read.
pub(crate) struct Part {
    /// Changes on every assignment or seek; a fetch result of another epoch is dropped.
    epoch: u64,
    fetch_pos: i64,
    position: i64,
    start: i64,
    committed: i64,
    to_commit: i64,
    paused: bool,
    high_watermark: i64,
    /// The offset the lag is measured to, from the last fetch (-1 before the first): the high
    /// watermark, or under read_committed the last stable offset, past which the broker
    /// returns nothing while a transaction is open (the Java consumer's `records-lag` alike).
    end: i64,
    /// Stopped after an error the application must see (OFFSET_OUT_OF_RANGE with
    /// [`OffsetReset::Fail`], a non-retriable error code, records that do not decode): every
    /// read fails with it until a seek of the partition clears it, or the partition leaves
    /// the reader. Not fetched meanwhile.
    failure: Option<Error>,
    chunks: VecDeque<Chunk>,
    in_flight: bool,
    /// The fetch task (slot) still handing over fetched data of this partition, which
    /// `fetch_pos` is already past: only that task may fetch it meanwhile, so its data is
    /// handed over in order.
    delivering: Option<usize>,
    /// When a fetch last returned data of this partition (`State::served` then): a fetch
    /// lists the partitions served longest ago first. The broker fills a response in the
    /// order of the request up to its byte limit, so without this the partitions listed
    /// last could starve (KIP-74; the Java consumer moves served partitions to the end).
    served: u64,
}

impl Part {
    /// A partition to read from `start` (its group's committed offset `committed`, or -1).
    fn new(epoch: u64, start: i64, committed: i64) -> Part {
        Part {
            epoch,
            fetch_pos: start,
            position: start,
            start,
            committed,
            to_commit: -1,
            paused: false,
            high_watermark: -1,
            end: -1,
            failure: None,
            chunks: VecDeque::new(),
            in_flight: false,
            delivering: None,
            served: 0,
        }
    }

    /// Messages between the position and the last fetch's high watermark (under
    /// read_committed its last stable offset); -1 before the first fetch.
    fn lag(&self) -> i64 {
        if self.end < 0 {
            -1
        } else {
            // Both come from the broker's offsets (checked in `Ends::of`); saturating all the
            // same, never wrapping.
            self.end.saturating_sub(self.position).max(0)
        }
    }

    fn buffered(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes).sum()
    }
}

/// The partitions being read, looked up once per message handed out: hashed with foldhash
/// rather than SipHash.
pub(crate) type Parts = HashMap<TopicPartition, Part, foldhash::fast::RandomState>;

#[derive(Default)]
pub(crate) struct State {
    parts: Parts,
    /// The chunks to hand out, in the order they were fetched: (`Chunk::seq`, partition).
    /// An entry whose partition no longer has that chunk first (read, dropped by a seek or
    /// revocation, or its partition paused) is skipped.
    ready: VecDeque<(u64, TopicPartition)>,
    /// The next chunk's `Chunk::seq`.
    next_seq: u64,
    /// The reader's fatal error: every read fails with it until the reader is closed.
    fatal: Option<Error>,
    /// Partitions with a `Part::failure`, so that a read finds one without a scan.
    failed: BTreeSet<TopicPartition>,
    /// Transient errors, each returned once; at most [`ERROR_QUEUE`].
    errors: VecDeque<Error>,
    closed: bool,
    /// Messages handed out, and their key and value bytes (counted under the lock that
    /// hands them out).
    messages: u64,
    bytes: u64,
    next_epoch: u64,
    /// Fetches that returned data of a partition, counted (see `Part::served`).
    served: u64,
    /// Fetch tasks by (partition leader, slot).
    lanes: HashMap<(i32, usize), tokio::task::AbortHandle>,
}

/// Adds `chunk` to partition `tp`'s (`p`), to be handed out after every chunk queued
/// before it; its `seq` is set here. Takes `State`'s fields apart, so that a caller holding
/// `p` out of `State::parts` can queue.
fn queue_chunk(
    ready: &mut VecDeque<(u64, TopicPartition)>,
    next_seq: &mut u64,
    tp: &TopicPartition,
    p: &mut Part,
    mut chunk: Chunk,
) {
    chunk.seq = *next_seq;
    *next_seq += 1;
    if p.paused {
        chunk.detach();
    } else {
        ready.push_back((chunk.seq, tp.clone()));
    }
    p.chunks.push_back(chunk);
}

impl State {
    /// The next buffered message, and the chunk it emptied (whose budget is to go back).
    ///
    /// Chunks go out in the order they were fetched, whatever their partition: messages
    /// point into the fetch response they came from, which stays in memory until the last
    /// of them is read, so handing its partitions' chunks out at different paces would keep
    /// many responses alive. With `mark`, the partition's position after the message
    /// becomes the offset to commit.
    fn take(&mut self, mark: bool) -> Option<(Message, Option<Chunk>)> {
        let State { parts, ready, messages, bytes, .. } = self;
        while let Some((seq, tp)) = ready.front() {
            let Some(p) = parts.get_mut(tp) else {
                ready.pop_front();
                continue;
            };
            let Some(chunk) = p.chunks.front_mut().filter(|c| c.seq == *seq && !p.paused) else {
                ready.pop_front();
                continue;
            };
            let Some(m) = chunk.messages.pop_front() else {
                p.chunks.pop_front();
                ready.pop_front();
                continue;
            };
            p.position = m.offset + 1;
            let mut read = None;
            if chunk.messages.is_empty() {
                // Stand after the chunk's last batch (past trailing markers too).
                p.position = p.position.max(chunk.next);
                read = p.chunks.pop_front();
                ready.pop_front();
            }
            *messages += 1;
            *bytes += m.size() as u64;
            if mark {
                p.to_commit = p.to_commit.max(p.position);
            }
            return Some((m, read));
        }
        None
    }

    /// Pauses or resumes `tp`: a paused partition's chunks stay, not handed out, copied out
    /// of their fetch responses ([`Chunk::detach`]); on resume they go to the back, in their
    /// order.
    fn set_paused(&mut self, tp: &TopicPartition, paused: bool) {
        let Some(p) = self.parts.get_mut(tp) else { return };
        let resumed = p.paused && !paused;
        if paused && !p.paused {
            p.chunks.iter_mut().for_each(Chunk::detach);
        }
        p.paused = paused;
        if resumed && !p.chunks.is_empty() {
            // Entries of it still queued are stale now (and skipped); drop them.
            self.ready.retain(|(_, t)| t != tp);
            self.ready.extend(p.chunks.iter().map(|c| (c.seq, tp.clone())));
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub fetches: AtomicU64,
    /// Of them, incremental within a fetch session (KIP-227).
    pub incremental: AtomicU64,
    /// Partitions the Fetch requests named.
    pub named: AtomicU64,
    pub errors: AtomicU64,
    pub resets: AtomicU64,
    pub buffered: AtomicU64,
}

pub(crate) struct Engine {
    pub cluster: Cluster,
    pub settings: FetchSettings,
    state: Mutex<State>,
    contact: Mutex<Contact>,
    /// Wakes the application when messages or errors arrive.
    data: Notify,
    /// Wakes the fetch tasks when partitions become fetchable.
    wake: Notify,
    budget: Arc<Semaphore>,
    /// Emptied message vectors of read chunks, for the next chunks: a chunk's vector is
    /// often past the allocator's mmap threshold, so a fresh one would cost a page fault
    /// per 4 KiB.
    spare: Mutex<Vec<Vec<Message>>>,
    pub counters: Counters,
}

mod errors;
pub(crate) mod tasks;
#[cfg(test)]
mod tests;
mod views;

use errors::Contact;
use tasks::{Claim, Outcome};

/// The prefetch budget in permits: one a byte, at least 1, and no more than one
/// acquisition may take (`u32`).
fn budget_permits(settings: &FetchSettings) -> usize {
    settings.prefetch_bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
}

/// Emptied message vectors kept for reuse at most.
const SPARE_VECTORS: usize = 4;

impl Engine {
    pub fn new(cluster: Cluster, settings: FetchSettings) -> Arc<Engine> {
        let budget = Arc::new(Semaphore::new(budget_permits(&settings)));
        let engine = Arc::new(Engine {
            cluster,
            settings,
            state: Mutex::new(State::default()),
            contact: Mutex::new(Contact { last_ok: Instant::now(), failing: None, reported: None }),
            data: Notify::new(),
            wake: Notify::new(),
            budget,
            spare: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        tokio::spawn(tasks::supervise(Arc::downgrade(&engine)));
        engine
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way that
        // matters more than stopping; keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts reading `parts` from their offsets (`start`, with `committed` the group's
    /// committed offset or -1). A partition already assigned is replaced.
    pub fn assign(&self, parts: Vec<(TopicPartition, i64, i64)>) {
        let mut st = self.lock();
        for (tp, start, committed) in parts {
            st.next_epoch += 1;
            let epoch = st.next_epoch;
            if let Some(old) = st.parts.get(&tp) {
                self.counters.buffered.fetch_sub(old.buffered() as u64, Ordering::Relaxed);
            }
            st.failed.remove(&tp);
            st.parts.insert(tp, Part::new(epoch, start, committed));
        }
        drop(st);
        self.wake.notify_waiters();
    }

    /// Stops reading `parts`, dropping what was fetched of them. Returns the offsets they
    /// had marked for commit and not yet committed: (partition, epoch, offset).
    pub fn revoke(&self, parts: &[TopicPartition]) -> Vec<(TopicPartition, u64, i64)> {
        let mut st = self.lock();
        let mut pending = Vec::new();
        for tp in parts {
            st.failed.remove(tp);
            if let Some(p) = st.parts.remove(tp) {
                self.counters.buffered.fetch_sub(p.buffered() as u64, Ordering::Relaxed);
                if p.to_commit > p.committed {
                    pending.push((tp.clone(), p.epoch, p.to_commit));
                }
            }
        }
        drop(st);
        self.wake.notify_waiters();
        pending
    }

    /// Moves `tp` to `offset`, dropping what was fetched and clearing its failure.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let mut st = self.lock();
        st.next_epoch += 1;
        let epoch = st.next_epoch;
        st.failed.remove(tp);
        let p = st.parts.get_mut(tp).ok_or_else(|| Error::InvalidArgument(format!("{tp} is not being read")))?;
        self.counters.buffered.fetch_sub(p.buffered() as u64, Ordering::Relaxed);
        p.chunks.clear();
        p.epoch = epoch;
        p.fetch_pos = offset;
        p.position = offset;
        p.in_flight = false;
        p.delivering = None;
        p.failure = None;
        drop(st);
        self.wake.notify_waiters();
        Ok(())
    }

    pub fn set_paused(&self, parts: &[TopicPartition], paused: bool) {
        let mut st = self.lock();
        for tp in parts {
            st.set_paused(tp, paused);
        }
        drop(st);
        self.wake.notify_waiters();
        self.data.notify_waiters();
    }

    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        for (_, h) in st.lanes.drain() {
            h.abort();
        }
        drop(st);
        self.data.notify_waiters();
        self.wake.notify_waiters();
    }

    /// An empty message vector, with room from an earlier chunk when there is one.
    fn spare_vec(&self) -> Vec<Message> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default()
    }

    /// Keeps a read chunk's (empty) message vector for a later chunk.
    fn recycle(&self, messages: VecDeque<Message>) {
        let v = Vec::from(messages);
        if v.capacity() > 0 && v.is_empty() {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < SPARE_VECTORS {
                spare.push(v);
            }
        }
    }

    /// The next message; `None` when there is none now. Errors first: closed, the fatal
    /// error, a transient one, a failed partition's.
    fn pop(&self, st: &mut State, mark: bool) -> Option<Result<Message>> {
        if st.closed {
            return Some(Err(Error::Closed));
        }
        if let Some(e) = &st.fatal {
            return Some(Err(e.dup()));
        }
        if let Some(e) = st.errors.pop_front() {
            return Some(Err(e));
        }
        if let Some(tp) = st.failed.first() {
            if let Some(e) = st.parts.get(tp).and_then(|p| p.failure.as_ref()) {
                return Some(Err(e.dup()));
            }
        }
        let (m, read) = st.take(mark)?;
        if let Some(read) = read {
            // The chunk is read: give back its budget, let the partition be fetched again.
            self.counters.buffered.fetch_sub(read.bytes as u64, Ordering::Relaxed);
            self.recycle(read.messages);
            self.wake.notify_waiters();
        }
        Some(Ok(m))
    }

    /// Waits for the next message; with `mark`, its partition's position after it becomes
    /// the offset to commit (under the same lock, so a revocation cannot come between).
    ///
    /// Cancel-safe: a message leaves the buffer only in the poll that returns it.
    ///
    /// # Errors
    /// See the module docs; and [`Error::NoBrokerReachable`] once no broker has answered
    /// for [`ClusterConfig::retry_timeout`](crate::cluster::ClusterConfig::retry_timeout),
    /// and again each retry timeout after the last such error (so a loop that retries does
    /// not spin, and a read with a short timeout of its own still sees it). Retriable: the
    /// tasks keep trying, and a later call returns messages once a broker answers.
    pub async fn next(&self, mark: bool) -> Result<Message> {
        // Buffered messages need no wake-up registration.
        if let Some(r) = self.pop(&mut self.lock(), mark) {
            return r;
        }
        loop {
            let notified = self.data.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.pop(&mut self.lock(), mark) {
                return r;
            }
            match self.unreachable_at() {
                None => notified.await,
                Some((at, last)) => {
                    if Instant::now() >= at {
                        self.reported_unreachable();
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return Err(Error::NoBrokerReachable { brokers: self.cluster.broker_list(), last });
                    }
                    let _ = tokio::time::timeout_at(at, notified).await;
                }
            }
        }
    }

    /// How many fetch tasks share `led` partitions of one broker: one per partition, at most
    /// `concurrency`.
    fn lanes(&self, led: usize) -> usize {
        led.min(self.settings.concurrency.max(1))
    }

    /// Most bytes one fetch asks for over all its partitions, and the budget it takes before
    /// it is sent ([`Response`]). It asks for `fetch_max_bytes` (Java `fetch.max.bytes`),
    /// but no more than the prefetch budget over four times the fetch tasks running, so the
    /// responses in flight and being handed over (about two per task) hold at most half the
    /// budget, and the chunks decoded from them have the other half at least; never less
    /// than `max_bytes` (Java `max.partition.fetch.bytes`, each partition's bound). It takes
    /// that much budget, but no more than the share: a response larger than that (with many
    /// fetch tasks and a small budget, or a record batch past the limits, which the broker
    /// returns whole) holds more memory than it counts.
    fn fetch_bytes(&self) -> (i32, u32) {
        let tasks = self.lock().lanes.len().max(1);
        let share = (self.budget_cap() / (4 * tasks)).max(1);
        let ask =
            i32::try_from(share).unwrap_or(i32::MAX).min(self.settings.fetch_max_bytes).max(self.settings.max_bytes);
        (ask, share.min(ask.max(1) as usize) as u32)
    }

    fn budget_cap(&self) -> usize {
        budget_permits(&self.settings)
    }

    /// The view of fetch task `slot` of `broker`: claims fetchable partitions that `broker`
    /// leads. Partitions behind the log end (or not fetched yet) are shared among the tasks,
    /// at most `ceil(led / lanes)` each; partitions caught up with the high watermark are
    /// all fetched by task 0, so an idle reader long-polls with one Fetch per broker, as the
    /// Java consumer does. `None` when the slot is no longer needed (the broker leads fewer
    /// partitions now).
    fn claim(&self, broker: i32, slot: usize) -> Option<Vec<Claim>> {
        let meta = self.cluster.metadata();
        let mut st = self.lock();
        if st.closed || st.fatal.is_some() {
            return Some(Vec::new());
        }
        let led =
            st.parts.keys().filter(|tp| meta.partition(&tp.topic, tp.partition).is_some_and(|p| p.leader == broker));
        let led = led.count();
        let lanes = self.lanes(led);
        if slot >= lanes {
            return None;
        }
        let share = led.div_ceil(lanes);
        // A partition is fetched again while it holds less than its share of the budget, and
        // at least one fetch's worth ahead.
        let ahead = (self.settings.max_bytes.max(1) as usize).max(self.settings.prefetch_bytes / st.parts.len().max(1));
        // The fetchable partitions it leads, served longest ago first.
        let mut open: Vec<(u64, &TopicPartition, &mut Part)> = Vec::new();
        for (tp, p) in st.parts.iter_mut() {
            if p.in_flight
                || p.paused
                || p.failure.is_some()
                || p.buffered() >= ahead
                || p.delivering.is_some_and(|s| s != slot)
            {
                continue;
            }
            if meta.partition(&tp.topic, tp.partition).is_some_and(|pm| pm.leader == broker) {
                open.push((p.served, tp, p));
            }
        }
        open.sort_unstable_by_key(|(served, _, _)| *served);
        let (mut out, mut behind) = (Vec::new(), 0);
        for (_, tp, p) in open {
            // Under read_committed a partition at its last stable offset has nothing more to
            // fetch until the open transaction ends: it is caught up too.
            let caught_up = p.end >= 0 && p.fetch_pos >= p.end;
            if (caught_up && slot != 0) || (!caught_up && behind >= share) {
                continue;
            }
            let Some(t) = meta.topics.get(&tp.topic) else { continue };
            let Some(pm) = t.partition(tp.partition) else { continue };
            behind += usize::from(!caught_up);
            p.in_flight = true;
            out.push(Claim {
                tp: tp.clone(),
                topic_id: t.id,
                epoch: p.epoch,
                offset: p.fetch_pos,
                leader_epoch: pm.leader_epoch,
            });
        }
        Some(out)
    }

    /// Lets fetch task `slot` fetch the partitions of a fetch that returned data again, from
    /// where the headers of that data end, before the data is handed over (and by no other
    /// task until it is).
    fn advance(&self, slot: usize, claims: &[Claim], outcomes: &mut [Outcome]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        for (c, o) in claims.iter().zip(outcomes.iter_mut()) {
            let Outcome::Data(batches, ends, advanced, _) = o else { continue };
            let Some(p) = st.parts.get_mut(&c.tp).filter(|p| p.epoch == c.epoch && p.fetch_pos == c.offset) else {
                continue;
            };
            let Some(next) = batches.next_offset() else {
                // Nothing fetched: the partition is fetchable again at once, at the same offset
                // (in a fetch session, a partition claimed again unchanged is not named), and
                // there is nothing to hand over.
                (p.high_watermark, p.end) = (ends.high_watermark, ends.end);
                p.in_flight = false;
                *o = Outcome::Empty;
                continue;
            };
            st.served += 1;
            p.served = st.served;
            (p.high_watermark, p.end) = (ends.high_watermark, ends.end);
            p.fetch_pos = p.fetch_pos.max(next);
            p.in_flight = false;
            p.delivering = Some(slot);
            *advanced = true;
        }
    }

    fn unclaim(&self, claims: &[Claim]) {
        let mut st = self.lock();
        for c in claims {
            if let Some(p) = st.parts.get_mut(&c.tp).filter(|p| p.epoch == c.epoch) {
                p.in_flight = false;
            }
        }
    }

    /// Leaders of the partitions being read (-1 for those without one now).
    fn leaders(&self) -> Vec<(TopicPartition, i32)> {
        let meta = self.cluster.metadata();
        let st = self.lock();
        st.parts
            .keys()
            .map(|tp| {
                let leader = meta.partition(&tp.topic, tp.partition).map_or(-1, |p| p.leader);
                (tp.clone(), leader)
            })
            .collect()
    }
}

/// Where a partition starts when nothing is committed for it: the first offset, the end of
/// the log, or a given offset; on the partition leader, retried.
pub(crate) async fn resolve_start(
    cluster: &Cluster,
    tp: &TopicPartition,
    start: StartOffset,
    isolation: IsolationLevel,
) -> Result<i64> {
    let ts = match start {
        StartOffset::At(o) => return Ok(o),
        StartOffset::First => -2,
        StartOffset::Last => -1,
    };
    list_offset(cluster, tp, ts, isolation).await
}

/// ListOffsets for one partition (-2 earliest, -1 latest, else a timestamp), on the partition
/// leader, retried.
pub(crate) async fn list_offset(
    cluster: &Cluster,
    tp: &TopicPartition,
    timestamp: i64,
    isolation: IsolationLevel,
) -> Result<i64> {
    cluster
        .retry(|| async {
            let (conn, leader) = cluster.leader(&tp.topic, tp.partition, Workload::Fetch).await?;
            let spot = Spot {
                topic: &tp.topic,
                topic_id: Uuid::ZERO,
                partition: tp.partition,
                leader_epoch: leader.leader_epoch,
                isolation,
            };
            crate::fetch::list_offset(&conn, &spot, timestamp).await
        })
        .await
}
