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

use super::assignor::TopicPartition;
use super::reader::{OffsetReset, StartOffset};
use crate::cluster::{Cluster, Workload};
use crate::error::{Error, Result};
use crate::fetch::{Batches, Limits, Selected, Spot};
use crate::message::Message;
use crate::net::IsolationLevel;
use kafkit_protocol::record::DecodeOptions;
use kafkit_protocol::{ErrorCode, Uuid};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

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

/// Fetched messages of one partition, with the budget they hold until read.
struct Chunk {
    messages: VecDeque<Message>,
    /// The offset after the fetch's last batch.
    next: i64,
    bytes: usize,
    _permit: Option<OwnedSemaphorePermit>,
}

/// One partition being read.
pub(crate) struct Part {
    /// Changes on every assignment or seek; a fetch result of another epoch is dropped.
    pub epoch: u64,
    pub fetch_pos: i64,
    pub position: i64,
    pub start: i64,
    pub committed: i64,
    pub to_commit: i64,
    pub paused: bool,
    pub high_watermark: i64,
    /// The offset the lag is measured to, from the last fetch (-1 before the first): the high
    /// watermark, or under read_committed the last stable offset, past which the broker
    /// returns nothing while a transaction is open (the Java consumer's `records-lag` alike).
    pub end: i64,
    /// Stopped after an error the application must see (OFFSET_OUT_OF_RANGE with
    /// [`OffsetReset::Fail`]); a seek clears it.
    failed: bool,
    chunks: VecDeque<Chunk>,
    in_flight: bool,
    /// The fetch task (slot) still handing over fetched data of this partition, which
    /// `fetch_pos` is already past: only that task may fetch it meanwhile, so its data is
    /// handed over in order.
    delivering: Option<usize>,
    queued: bool,
    /// When a fetch last returned data of this partition (`State::served` then): a fetch
    /// lists the partitions served longest ago first. The broker fills a response in the
    /// order of the request up to its byte limit, so without this the partitions listed
    /// last could starve (KIP-74; the Java consumer moves served partitions to the end).
    served: u64,
}

impl Part {
    /// Messages between the position and the last fetch's high watermark (under
    /// read_committed its last stable offset); -1 before the first fetch.
    pub fn lag(&self) -> i64 {
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
    pub parts: Parts,
    /// Partitions with messages to hand out, in turn.
    ready: VecDeque<TopicPartition>,
    errors: VecDeque<Error>,
    pub closed: bool,
    /// Messages handed out, and their key and value bytes (counted under the lock that
    /// hands them out).
    pub messages: u64,
    pub bytes: u64,
    next_epoch: u64,
    /// Fetches that returned data of a partition, counted (see `Part::served`).
    served: u64,
    /// Fetch tasks by (partition leader, slot).
    lanes: HashMap<(i32, usize), tokio::task::AbortHandle>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub fetches: AtomicU64,
    pub errors: AtomicU64,
    pub resets: AtomicU64,
    pub buffered: AtomicU64,
}

pub(crate) struct Engine {
    pub cluster: Cluster,
    pub settings: FetchSettings,
    state: Mutex<State>,
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

/// Emptied message vectors kept for reuse at most.
const SPARE_VECTORS: usize = 4;

impl Engine {
    pub fn new(cluster: Cluster, settings: FetchSettings) -> Arc<Engine> {
        let budget = Arc::new(Semaphore::new(settings.prefetch_bytes.clamp(1, Semaphore::MAX_PERMITS)));
        let engine = Arc::new(Engine {
            cluster,
            settings,
            state: Mutex::new(State::default()),
            data: Notify::new(),
            wake: Notify::new(),
            budget,
            spare: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        tokio::spawn(supervise(Arc::downgrade(&engine)));
        engine
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
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
            st.parts.insert(
                tp,
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
                    failed: false,
                    chunks: VecDeque::new(),
                    in_flight: false,
                    delivering: None,
                    queued: false,
                    served: 0,
                },
            );
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

    /// Moves `tp` to `offset`, dropping what was fetched.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let mut st = self.lock();
        st.next_epoch += 1;
        let epoch = st.next_epoch;
        let p = st.parts.get_mut(tp).ok_or_else(|| Error::InvalidArgument(format!("{tp} is not being read")))?;
        self.counters.buffered.fetch_sub(p.buffered() as u64, Ordering::Relaxed);
        p.chunks.clear();
        p.epoch = epoch;
        p.fetch_pos = offset;
        p.position = offset;
        p.in_flight = false;
        p.delivering = None;
        p.failed = false;
        drop(st);
        self.wake.notify_waiters();
        Ok(())
    }

    pub fn set_paused(&self, parts: &[TopicPartition], paused: bool) {
        let mut st = self.lock();
        for tp in parts {
            let Some(p) = st.parts.get_mut(tp) else { continue };
            p.paused = paused;
            let requeue = !paused && !p.chunks.is_empty() && !p.queued;
            if requeue {
                p.queued = true;
                st.ready.push_back(tp.clone());
            }
        }
        drop(st);
        self.wake.notify_waiters();
        self.data.notify_waiters();
    }

    /// Fails every later read with `e` until the reader is closed.
    pub fn push_error(&self, e: Error) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.lock().errors.push_back(e);
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

    /// The next message; `None` when there is none now.
    fn pop(&self, st: &mut State, mark: bool) -> Option<Result<Message>> {
        if let Some(e) = st.errors.pop_front() {
            return Some(Err(e));
        }
        if st.closed {
            return Some(Err(Error::Closed));
        }
        let State { parts, ready, messages, bytes, .. } = st;
        while let Some(tp) = ready.front() {
            let Some(p) = parts.get_mut(tp) else {
                ready.pop_front();
                continue;
            };
            let Some(chunk) = p.chunks.front_mut().filter(|_| !p.paused) else {
                p.queued = false;
                ready.pop_front();
                continue;
            };
            let Some(m) = chunk.messages.pop_front() else {
                p.chunks.pop_front();
                continue;
            };
            p.position = m.offset + 1;
            if chunk.messages.is_empty() {
                // The chunk is read: stand after its last batch, give back its budget, let
                // the partition be fetched again, and give the next partition its turn.
                p.position = p.position.max(chunk.next);
                self.counters.buffered.fetch_sub(chunk.bytes as u64, Ordering::Relaxed);
                if let Some(read) = p.chunks.pop_front() {
                    self.recycle(read.messages);
                }
                if let Some(tp) = ready.pop_front() {
                    if p.chunks.is_empty() {
                        p.queued = false;
                    } else {
                        ready.push_back(tp);
                    }
                }
                self.wake.notify_waiters();
            }
            let size = m.size();
            *messages += 1;
            *bytes += size as u64;
            if mark {
                p.to_commit = p.to_commit.max(p.position);
            }
            return Some(Ok(m));
        }
        None
    }

    /// Waits for the next message; with `mark`, its partition's position after it becomes
    /// the offset to commit (under the same lock, so a revocation cannot come between).
    ///
    /// Cancel-safe: a message leaves the buffer only in the poll that returns it.
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
            notified.await;
        }
    }

    /// How many fetch tasks share `led` partitions of one broker: one per partition, at most
    /// `concurrency`.
    fn lanes(&self, led: usize) -> usize {
        led.min(self.settings.concurrency.max(1))
    }

    /// Most bytes one fetch asks for over all its partitions: `fetch_max_bytes` (Java
    /// `fetch.max.bytes`), but no more than the prefetch budget over four times the fetch
    /// tasks running, so the responses in flight and being handed over (about two per task)
    /// hold at most half the budget again; never less than `max_bytes` (Java
    /// `max.partition.fetch.bytes`, each partition's bound).
    fn fetch_bytes(&self) -> i32 {
        let tasks = self.lock().lanes.len().max(1);
        let share = i32::try_from(self.settings.prefetch_bytes / (4 * tasks)).unwrap_or(i32::MAX);
        share.min(self.settings.fetch_max_bytes).max(self.settings.max_bytes)
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
        if st.closed {
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
            if p.in_flight || p.paused || p.failed || p.buffered() >= ahead || p.delivering.is_some_and(|s| s != slot) {
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
        for (c, o) in claims.iter().zip(outcomes) {
            let Outcome::Data(batches, ends, advanced) = o else { continue };
            let Some(next) = batches.next_offset() else { continue };
            let Some(p) = st.parts.get_mut(&c.tp).filter(|p| p.epoch == c.epoch && p.fetch_pos == c.offset) else {
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

struct Claim {
    tp: TopicPartition,
    topic_id: Uuid,
    epoch: u64,
    offset: i64,
    leader_epoch: i32,
}

/// A fetched partition's high watermark, and the offset its lag is measured to (see
/// `Part::end`).
#[derive(Clone, Copy)]
pub(crate) struct Ends {
    high_watermark: i64,
    end: i64,
}

impl Ends {
    /// The ends of a fetched partition (`tp`, from broker `addr`).
    ///
    /// # Errors
    /// [`Error::Malformed`] for a high watermark or last stable offset below -1 (unknown):
    /// lag is measured from them.
    pub(crate) fn of(
        p: &kafkit_protocol::messages::fetch_response::PartitionData,
        isolation: IsolationLevel,
        addr: &str,
        tp: &impl std::fmt::Display,
    ) -> Result<Ends> {
        if p.high_watermark < -1 || p.last_stable_offset < -1 {
            return Err(Error::Malformed {
                broker: addr.to_string(),
                what: format!(
                    "{tp}: high watermark {} or last stable offset {} is negative",
                    p.high_watermark, p.last_stable_offset
                ),
            });
        }
        // Fetch v4+ carries the last stable offset; -1 before.
        let stable = isolation == IsolationLevel::ReadCommitted && p.last_stable_offset >= 0;
        Ok(Ends { high_watermark: p.high_watermark, end: if stable { p.last_stable_offset } else { p.high_watermark } })
    }
}

/// What one partition's part of a fetch came to.
enum Outcome {
    /// The partition's batches, not decoded yet, its high watermark and lag end, and whether
    /// its fetch position was already moved past them (see `Engine::advance`).
    Data(Batches, Ends, bool),
    /// OFFSET_OUT_OF_RANGE: where to continue, or the error under [`OffsetReset::Fail`].
    Reset(Result<i64>),
    Error(Error),
}

/// Starts a fetch task for every partition leader that has none, and refreshes metadata
/// while a partition has no leader.
async fn supervise(engine: std::sync::Weak<Engine>) {
    loop {
        let Some(e) = engine.upgrade() else { return };
        if e.lock().closed {
            return;
        }
        let leaders = e.leaders();
        let missing: Vec<&TopicPartition> = leaders.iter().filter(|(_, l)| *l < 0).map(|(tp, _)| tp).collect();
        if !missing.is_empty() {
            let mut topics: Vec<&str> = missing.iter().map(|tp| tp.topic.as_str()).collect();
            topics.sort_unstable();
            topics.dedup();
            if let Err(err) = e.cluster.refresh_metadata(Some(&topics)).await {
                tracing::debug!(error = %err, "metadata refresh for leaderless partitions failed");
            }
        }
        {
            let mut brokers: Vec<i32> = leaders.iter().map(|(_, l)| *l).filter(|l| *l >= 0).collect();
            brokers.sort_unstable();
            brokers.dedup();
            let mut st = e.lock();
            st.lanes.retain(|_, h| !h.is_finished());
            for broker in brokers {
                let led = leaders.iter().filter(|(_, l)| *l == broker).count();
                for slot in 0..e.lanes(led) {
                    st.lanes
                        .entry((broker, slot))
                        .or_insert_with(|| tokio::spawn(lane(Arc::downgrade(&e), broker, slot)).abort_handle());
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), e.wake.notified()).await;
    }
}

/// Fetches, over and over, a share of the partitions that `broker` leads (fetch task `slot`
/// of that broker); ends when the slot is no longer needed.
///
/// Pipelined: a fetch's data is handed over (decoded, as the budget allows) while the next
/// fetch, which starts where the headers of that data end, is in flight.
async fn lane(engine: std::sync::Weak<Engine>, broker: i32, slot: usize) {
    let mut attempt = 0u32;
    let mut backlog: Option<(Vec<Claim>, Vec<Outcome>)> = None;
    loop {
        let Some(e) = engine.upgrade() else { return };
        let wake = e.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let Some(claims) = e.claim(broker, slot) else {
            // No longer needed: hand over what is left first.
            if let Some((c, o)) = backlog.take() {
                deliver(&e, slot, c, o).await;
            }
            return;
        };
        if claims.is_empty() {
            if let Some((c, o)) = backlog.take() {
                deliver(&e, slot, c, o).await;
                continue;
            }
            if e.lock().closed {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), wake).await;
            continue;
        }
        let previous = backlog.take();
        let handed = async {
            if let Some((c, o)) = previous {
                deliver(&e, slot, c, o).await;
            }
        };
        let (fetched, ()) = tokio::join!(fetch_claims(&e, broker, slot, &claims), handed);
        match fetched {
            Ok(mut outcomes) => {
                attempt = 0;
                e.advance(slot, &claims, &mut outcomes);
                backlog = Some((claims, outcomes));
            }
            Err(err) => {
                e.unclaim(&claims);
                e.counters.errors.fetch_add(1, Ordering::Relaxed);
                let backoff = e.cluster.config().backoff.delay(attempt);
                attempt += 1;
                if !err.is_retriable() {
                    e.push_error(err);
                } else {
                    tracing::debug!(broker, error = %err, "fetch failed; retrying");
                }
                tokio::time::sleep(backoff).await;
                let _ = e.cluster.refresh_metadata(None).await;
            }
        }
    }
}

async fn fetch_claims(e: &Engine, broker: i32, slot: usize, claims: &[Claim]) -> Result<Vec<Outcome>> {
    let workload = match slot {
        0 => Workload::Fetch,
        n => Workload::FetchLane(n.min(u16::MAX as usize) as u16),
    };
    let conn = e.cluster.broker(broker, workload).await?;
    let s = &e.settings;
    let spots: Vec<Spot<'_>> = claims
        .iter()
        .map(|c| Spot {
            topic: &c.tp.topic,
            topic_id: c.topic_id,
            partition: c.tp.partition,
            leader_epoch: c.leader_epoch,
            isolation: s.isolation,
        })
        .collect();
    let parts: Vec<(&Spot<'_>, i64)> = spots.iter().zip(claims).map(|(s, c)| (s, c.offset)).collect();
    let limits = Limits {
        min_bytes: s.min_bytes,
        max_bytes: e.fetch_bytes(),
        partition_max_bytes: s.max_bytes,
        max_wait: s.max_wait,
    };
    e.counters.fetches.fetch_add(1, Ordering::Relaxed);
    let results = crate::fetch::fetch_many(&conn, &parts, &limits).await?;
    let mut out = Vec::with_capacity(results.len());
    let mut refresh = false;
    for ((spot, claim), r) in spots.iter().zip(claims).zip(results) {
        let outcome = match r {
            Ok(p) => match Ends::of(&p, s.isolation, conn.addr(), &claim.tp) {
                Ok(ends) => {
                    Outcome::Data(Batches::new(&conn, spot, &p, claim.offset, DecodeOptions::default()), ends, false)
                }
                Err(err) => Outcome::Error(err),
            },
            Err(err) if err.error_code() == Some(ErrorCode::OffsetOutOfRange) => {
                e.counters.resets.fetch_add(1, Ordering::Relaxed);
                Outcome::Reset(match s.reset {
                    OffsetReset::Fail => Err(err),
                    OffsetReset::Earliest => crate::fetch::list_offset(&conn, spot, -2).await,
                    OffsetReset::Latest => crate::fetch::list_offset(&conn, spot, -1).await,
                })
            }
            Err(err) => {
                refresh |= err.is_retriable();
                Outcome::Error(err)
            }
        };
        out.push(outcome);
    }
    if refresh {
        let _ = e.cluster.refresh_metadata(None).await;
    }
    Ok(out)
}

/// Hands a fetch's results to the partitions still waiting for them.
async fn deliver(e: &Engine, slot: usize, claims: Vec<Claim>, outcomes: Vec<Outcome>) {
    for (c, o) in claims.into_iter().zip(outcomes) {
        let o = match o {
            Outcome::Data(batches, ends, advanced) => {
                deliver_data(e, slot, &c, batches, ends, advanced).await;
                continue;
            }
            o => o,
        };
        let mut st = e.lock();
        let Some(p) = st.parts.get_mut(&c.tp).filter(|p| p.epoch == c.epoch && p.fetch_pos == c.offset) else {
            continue;
        };
        p.in_flight = false;
        let err = match o {
            Outcome::Data(..) => None,
            Outcome::Reset(Ok(offset)) => {
                p.fetch_pos = offset;
                p.position = offset;
                None
            }
            Outcome::Reset(Err(err)) => Some(err),
            Outcome::Error(err) if err.is_retriable() => {
                tracing::debug!(partition = %c.tp, error = %err, "partition fetch failed; retrying");
                None
            }
            Outcome::Error(err) => Some(err),
        };
        if let Some(err) = err {
            p.failed = true;
            st.errors.push_back(err);
            drop(st);
            e.data.notify_waiters();
        }
    }
}

/// Budget one chunk takes at most (a larger batch still makes one chunk), and at most half
/// the whole budget.
const CHUNK_BYTES: usize = 256 << 10;

/// The budget a chunk holds: its keys and values, and each message's own size.
fn cost(sel: &Selected) -> usize {
    sel.bytes + sel.messages.len() * std::mem::size_of::<Message>()
}

/// Decodes a partition's fetched batches into chunks of about [`CHUNK_BYTES`], each handed
/// over once the budget has room for it: decompressed records never take more memory than
/// the budget, plus one chunk being decoded. The partition stays claimed (or, when
/// `advanced`, reserved to fetch task `slot`) until its last batch is handed over, or a seek
/// or revocation makes the rest moot.
async fn deliver_data(e: &Engine, slot: usize, c: &Claim, mut batches: Batches, ends: Ends, advanced: bool) {
    let cap = e.settings.prefetch_bytes.clamp(1, Semaphore::MAX_PERMITS);
    let chunk = CHUNK_BYTES.min(cap / 2).max(1);
    let mut expected = c.offset;
    loop {
        let mut sel = Selected { messages: e.spare_vec(), bytes: 0, next: expected };
        let (mut end, mut failure) = (false, None);
        while cost(&sel) < chunk {
            match batches.next_into(&mut sel) {
                Ok(true) => {}
                Ok(false) => {
                    end = true;
                    break;
                }
                Err(err) => {
                    (end, failure) = (true, Some(err));
                    break;
                }
            }
        }
        // Waiting here pauses this fetch task while the application has not read enough.
        let permits = cost(&sel).min(cap) as u32;
        let permit = if permits > 0 { e.budget.clone().acquire_many_owned(permits).await.ok() } else { None };
        let mut st = e.lock();
        let State { parts, ready, errors, .. } = &mut *st;
        let ours = |p: &&mut Part| {
            p.epoch == c.epoch && if advanced { p.delivering == Some(slot) } else { p.fetch_pos == expected }
        };
        let Some(p) = parts.get_mut(&c.tp).filter(ours) else {
            return;
        };
        (p.high_watermark, p.end) = (ends.high_watermark, ends.end);
        p.fetch_pos = sel.next.max(p.fetch_pos);
        expected = p.fetch_pos;
        let mut wake_app = false;
        if sel.messages.is_empty() {
            // Markers or aborted batches only: the position moves past them.
            match p.chunks.back_mut() {
                Some(last) => last.next = last.next.max(sel.next),
                None => p.position = p.position.max(sel.next),
            }
        } else {
            e.counters.buffered.fetch_add(sel.bytes as u64, Ordering::Relaxed);
            p.chunks.push_back(Chunk {
                messages: sel.messages.into(),
                next: sel.next,
                bytes: sel.bytes,
                _permit: permit,
            });
            if !p.queued && !p.paused {
                p.queued = true;
                ready.push_back(c.tp.clone());
            }
            wake_app = true;
        }
        if let Some(err) = failure {
            p.failed = true;
            errors.push_back(err);
            wake_app = true;
        }
        if end {
            if advanced {
                p.delivering = None;
            } else {
                p.in_flight = false;
            }
        }
        drop(st);
        if wake_app {
            e.data.notify_waiters();
        }
        if end {
            return;
        }
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
