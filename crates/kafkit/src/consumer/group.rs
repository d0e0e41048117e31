//! Consumer-group membership with the classic group protocol: FindCoordinator, JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and OffsetFetch, run by one task per
//! [`Reader`](crate::Reader) in group mode.
//!
//! The task owns the member id, the generation and the coordinator connection. Every commit
//! goes through it, so a commit always carries the generation the member is in when it is
//! sent, and none is sent between losing a generation and joining the next.

use super::assignor::{group_by, Assignor, GroupMember, RebalanceProtocol, TopicPartition};
use super::engine::{resolve_start, Engine};
use super::reader::StartOffset;
use crate::cluster::{CoordinatorType, Workload};
use crate::error::{Error, Result};
use crate::net::Conn;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafkit_protocol::messages::{
    consumer_protocol_assignment, consumer_protocol_subscription, join_group_request, leave_group_request,
    sync_group_request, ConsumerProtocolAssignment, ConsumerProtocolSubscription, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, SyncGroupRequest,
};
use kafkit_protocol::{ApiVersion, ErrorCode};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod join;

pub(crate) use join::assigned_partitions;
use join::{partition_counts, JoinCtx, Round};

/// What happened to a member's partitions in a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceKind {
    /// These partitions are now the reader's; reading starts at their committed offsets.
    Assigned,
    /// These partitions are about to leave the reader. Until the event is dropped (or
    /// [`RebalanceEvent::done`] is called) the reader waits, up to the rebalance timeout, so
    /// the application can finish and commit what it holds of them; then the reader commits
    /// what it should, drops what it fetched of them, and lets them go.
    Revoked,
    /// These partitions were taken from the reader without a chance to commit (its session
    /// expired or its generation was fenced): another member may already be reading them,
    /// and commits for them are refused.
    Lost,
}

/// A change of the reader's assignment, from [`Reader::rebalance_events`](crate::Reader::rebalance_events)
/// (the Java `ConsumerRebalanceListener` callbacks, as messages).
#[derive(Debug)]
pub struct RebalanceEvent {
    /// What happened.
    pub kind: RebalanceKind,
    /// The partitions it happened to (may be empty: cooperative rebalances report an empty
    /// assignment change too).
    pub partitions: Vec<TopicPartition>,
    /// The generation the group is in (for `Assigned`) or was in.
    pub generation: i32,
    done: Option<oneshot::Sender<()>>,
}

impl RebalanceEvent {
    /// Lets the rebalance go on (dropping the event does the same).
    pub fn done(mut self) {
        if let Some(d) = self.done.take() {
            let _ = d.send(());
        }
    }
}

/// The group settings the membership task needs.
#[derive(Debug, Clone)]
pub(crate) struct GroupSettings {
    pub group_id: String,
    pub topics: Vec<String>,
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub assignors: Vec<Arc<dyn Assignor>>,
    pub commit_interval: Option<Duration>,
    pub watch_interval: Duration,
    pub start: StartOffset,
    pub close_timeout: Duration,
}

/// What the application sees of the membership.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    pub member_id: String,
    pub generation: i32,
    pub leader: bool,
    pub assignment: BTreeSet<TopicPartition>,
    /// Rebalances completed (JoinGroup/SyncGroup rounds that ended in an assignment).
    pub rebalances: u64,
}

pub(crate) enum Cmd {
    /// Commit what is pending; reply whether each of these offsets got committed.
    Commit(Vec<(TopicPartition, u64, i64)>, oneshot::Sender<Result<()>>),
    /// Commit, leave (unless static), stop.
    Close(oneshot::Sender<Result<()>>),
}

pub(crate) struct Shared {
    pub membership: Mutex<Membership>,
    pub events: Mutex<Option<mpsc::UnboundedSender<RebalanceEvent>>>,
}

pub(crate) struct Group {
    engine: Arc<Engine>,
    cfg: GroupSettings,
    shared: Arc<Shared>,
    cmds: mpsc::Receiver<Cmd>,
    coordinator: Option<Conn>,
    member_id: String,
    generation: i32,
    protocol: RebalanceProtocol,
    leader: bool,
    owned: BTreeSet<TopicPartition>,
    /// Partition counts the leader assigned from, to notice new partitions.
    counts_seen: Arc<Mutex<BTreeMap<String, i32>>>,
    /// A close that arrived while a revocation was being handled.
    deferred_close: Option<oneshot::Sender<Result<()>>>,
    /// The latest commit the coordinator acknowledged per partition: (assignment epoch,
    /// offset).
    committed: HashMap<TopicPartition, (u64, i64)>,
    /// Commit requests waiting for the group to be stable again.
    deferred: Vec<Deferred>,
}

/// A commit request waiting for the group to be stable again: (partition, assignment epoch,
/// offset) to check, and where to answer.
type Deferred = (Vec<(TopicPartition, u64, i64)>, oneshot::Sender<Result<()>>);

/// Why the stable phase ended.
enum Next {
    Rejoin,
    Lost(ErrorCode),
    /// A fatal error, already given to the engine: drop the partitions, then only answer
    /// commands.
    Fatal(ErrorCode),
    Close(oneshot::Sender<Result<()>>),
}

/// Errors after which the coordinator is looked up again and the request retried. A
/// response that does not decode counts: its connection is closed, and some brokers
/// (librdkafka's mock cluster) write nulls into non-nullable fields of error responses.
fn is_coordinator_error(e: &Error) -> bool {
    matches!(
        e.error_code(),
        Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable | ErrorCode::CoordinatorLoadInProgress)
    ) || matches!(
        e,
        Error::ConnectionClosed { .. }
            | Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::RequestTimeout { .. }
            | Error::Decode { .. }
    )
}

fn is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::FencedInstanceId
            | ErrorCode::GroupAuthorizationFailed
            | ErrorCode::InvalidSessionTimeout
            | ErrorCode::InconsistentGroupProtocol
            | ErrorCode::GroupMaxSizeReached
            | ErrorCode::UnsupportedVersion
            | ErrorCode::InvalidGroupId
            | ErrorCode::TopicAuthorizationFailed
    )
}

fn broker_error(code: ErrorCode, context: String) -> Error {
    Error::Broker { code, context, message: None }
}

impl Group {
    pub fn new(engine: Arc<Engine>, cfg: GroupSettings, shared: Arc<Shared>, cmds: mpsc::Receiver<Cmd>) -> Group {
        Group {
            engine,
            cfg,
            shared,
            cmds,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            protocol: RebalanceProtocol::Eager,
            leader: false,
            owned: BTreeSet::new(),
            counts_seen: Arc::new(Mutex::new(BTreeMap::new())),
            deferred_close: None,
            committed: HashMap::new(),
            deferred: Vec::new(),
        }
    }

    pub async fn run(mut self) {
        let mut attempt = 0u32;
        loop {
            match self.join().await {
                Ok(Some(reply)) => return self.close(reply).await,
                Ok(None) => attempt = 0,
                Err(e) => {
                    let fatal = e.error_code().is_some_and(is_fatal) || !(e.is_retriable() || is_coordinator_error(&e));
                    tracing::warn!(group = %self.cfg.group_id, error = %e, fatal, "joining the group failed");
                    if fatal {
                        self.engine.fail(e);
                        return self.idle().await;
                    }
                    self.engine.unreachable(&e);
                    let wait = self.engine.cluster.config().backoff.delay(attempt);
                    attempt += 1;
                    if let Some(reply) = self.sleep_serving(wait).await {
                        return self.close(reply).await;
                    }
                    continue;
                }
            }
            let next = self.stable().await;
            match next {
                Next::Rejoin => {}
                Next::Lost(code) => self.lose(code).await,
                Next::Fatal(code) => {
                    self.lose(code).await;
                    return self.idle().await;
                }
                Next::Close(reply) => return self.close(reply).await,
            }
        }
    }

    /// After a fatal error: answer commands with it until closed.
    async fn idle(mut self) {
        let fatal = || self.engine.fatal().unwrap_or(Error::Closed);
        for (_, reply) in std::mem::take(&mut self.deferred) {
            let _ = reply.send(Err(fatal()));
        }
        if let Some(reply) = self.deferred_close.take() {
            self.engine.close();
            let _ = reply.send(Ok(()));
            return;
        }
        while let Some(cmd) = self.cmds.recv().await {
            match cmd {
                Cmd::Commit(_, reply) => {
                    let _ = reply.send(Err(fatal()));
                }
                Cmd::Close(reply) => {
                    self.engine.close();
                    let _ = reply.send(Ok(()));
                    return;
                }
            }
        }
        self.engine.close();
    }

    fn membership(&self, f: impl FnOnce(&mut Membership)) {
        let mut m = self.shared.membership.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut m);
    }

    async fn coordinator(&mut self) -> Result<Conn> {
        if let Some(c) = self.coordinator.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = self.engine.cluster.coordinator(&self.cfg.group_id, CoordinatorType::Group, Workload::Group).await?;
        self.coordinator = Some(c.clone());
        Ok(c)
    }

    fn forget_coordinator(&mut self) {
        self.coordinator = None;
    }

    /// A close to carry out when the reader was dropped and no command waits: a dropped
    /// reader's member commits what was marked and leaves, and never starts another round.
    fn dropped(&self) -> Option<oneshot::Sender<Result<()>>> {
        (self.cmds.is_closed() && self.cmds.is_empty()).then(|| oneshot::channel().0)
    }

    /// Sleeps `d` while answering commands; a close (or the reader dropped) ends it early.
    async fn sleep_serving(&mut self, d: Duration) -> Option<oneshot::Sender<Result<()>>> {
        let until = tokio::time::sleep(d);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => return None,
                cmd = self.cmds.recv() => match cmd {
                    // The reader was dropped: close as if asked, nobody to answer.
                    None => return Some(oneshot::channel().0),
                    Some(Cmd::Close(reply)) => return Some(reply),
                    Some(Cmd::Commit(offsets, reply)) => self.deferred.push((offsets, reply)),
                },
            }
        }
    }

    /// Revokes partitions: tells the application and waits for it, commits what is pending
    /// for them, and stops reading them.
    async fn revoke(&mut self, parts: Vec<TopicPartition>) {
        if parts.is_empty() {
            return;
        }
        // Nothing more of them is handed out from here on (Java calls onPartitionsRevoked
        // inside poll, which returns no records meanwhile): what the application commits
        // while it holds the event is everything it was given of them.
        self.engine.set_paused(&parts, true);
        self.announce(RebalanceKind::Revoked, parts.clone(), true).await;
        // Then commit what was handed out: nothing can be returned between the commit and
        // the revocation.
        let last = self.engine.revoke(&parts);
        if let Err(e) = self.commit_offsets(last).await {
            tracing::debug!(group = %self.cfg.group_id, error = %e, "commit before revoking failed");
        }
        for tp in &parts {
            self.owned.remove(tp);
        }
        let owned = self.owned.clone();
        self.membership(|m| m.assignment = owned);
    }

    /// Drops every partition without committing (the session or generation is gone).
    async fn lose(&mut self, code: ErrorCode) {
        let parts: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        tracing::info!(group = %self.cfg.group_id, ?code, partitions = parts.len(), "partitions lost");
        self.engine.revoke(&parts);
        self.owned.clear();
        if matches!(code, ErrorCode::UnknownMemberId) {
            self.member_id.clear();
        }
        self.generation = -1;
        self.membership(|m| {
            m.assignment.clear();
            m.generation = -1;
        });
        self.announce(RebalanceKind::Lost, parts, false).await;
    }

    /// Sends an event if the application listens; for revocations waits (answering commits
    /// and heartbeating) until it is done, at most the rebalance timeout.
    async fn announce(&mut self, kind: RebalanceKind, partitions: Vec<TopicPartition>, wait: bool) {
        let tx = self.shared.events.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx.filter(|t| !t.is_closed()) else { return };
        let (done_tx, mut done_rx) = oneshot::channel();
        let ev = RebalanceEvent { kind, partitions, generation: self.generation, done: Some(done_tx) };
        if tx.send(ev).is_err() || !wait {
            return;
        }
        let deadline = tokio::time::sleep(self.cfg.rebalance_timeout);
        tokio::pin!(deadline);
        let mut beat = tokio::time::interval(self.cfg.heartbeat_interval);
        beat.tick().await;
        loop {
            tokio::select! {
                _ = &mut done_rx => return,
                _ = &mut deadline => {
                    tracing::warn!(group = %self.cfg.group_id, "the application did not finish a revocation within the rebalance timeout");
                    return;
                }
                _ = beat.tick() => { let _ = self.heartbeat().await; }
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Commit(offsets, reply)) => {
                        let r = self.commit_pending().await.and_then(|()| self.check_committed(&offsets));
                        let _ = reply.send(r);
                    }
                    // Close while the application handles a revocation: finish it first.
                    Some(Cmd::Close(reply)) => { self.deferred_close = Some(reply); }
                    None => return,
                },
            }
        }
    }
}

impl Group {
    /// One JoinGroup/SyncGroup round and the assignment it brings. `Ok(Some(reply))` when
    /// the application closed the reader meanwhile.
    async fn join(&mut self) -> Result<Option<oneshot::Sender<Result<()>>>> {
        loop {
            if let Some(reply) = self.dropped().or_else(|| self.deferred_close.take()) {
                return Ok(Some(reply));
            }
            // Commit what the application has before the generation changes.
            if let Err(e) = self.commit_pending().await {
                tracing::debug!(group = %self.cfg.group_id, error = %e, "commit before rejoining failed");
            }
            if self.protocol == RebalanceProtocol::Eager {
                let all: Vec<TopicPartition> = self.owned.iter().cloned().collect();
                self.revoke(all).await;
            }
            let conn = self.coordinator().await?;
            // Finding the coordinator can take as long as an outage: a reader dropped
            // meanwhile does not join again.
            if let Some(reply) = self.dropped() {
                return Ok(Some(reply));
            }
            let fut = self.join_ctx().join_round(conn);
            tokio::pin!(fut);
            // A close during the round lets the round finish first: the final commit then
            // carries the new generation (a commit from the old one would be refused).
            let round = loop {
                tokio::select! {
                    r = &mut fut => break r,
                    cmd = self.cmds.recv(), if self.deferred_close.is_none() => match cmd {
                        // The reader was dropped: close as if asked, nobody to answer.
                        None => self.deferred_close = Some(oneshot::channel().0),
                        Some(Cmd::Close(reply)) => self.deferred_close = Some(reply),
                        Some(Cmd::Commit(offsets, reply)) => self.deferred.push((offsets, reply)),
                    },
                }
            };
            drop(fut);
            if round.is_ok() {
                self.engine.reached();
            }
            match self.keep_member_id(round) {
                Ok(Round::Assigned { generation, member_id, leader, protocol, assignment }) => {
                    self.generation = generation;
                    self.member_id = member_id;
                    self.leader = leader;
                    self.protocol = protocol;
                    let again = self.apply(assignment).await?;
                    let deferred = std::mem::take(&mut self.deferred);
                    if !deferred.is_empty() {
                        let r = self.commit_pending().await;
                        for (offsets, reply) in deferred {
                            let _ = reply
                                .send(r.as_ref().map_err(Error::dup).and_then(|()| self.check_committed(&offsets)));
                        }
                    }
                    if !again {
                        return Ok(None);
                    }
                }
                Ok(Round::Retry { member_id }) => {
                    if let Some(id) = member_id {
                        self.member_id = id;
                    }
                }
                Err(e) | Ok(Round::Interrupted { error: e, .. }) if is_coordinator_error(&e) => {
                    tracing::debug!(group = %self.cfg.group_id, error = %e, "coordinator unavailable; finding it again");
                    self.engine.unreachable(&e);
                    self.forget_coordinator();
                    let wait = self.engine.cluster.config().backoff.delay(0);
                    if let Some(reply) = self.sleep_serving(wait).await {
                        return Ok(Some(reply));
                    }
                }
                Err(e) | Ok(Round::Interrupted { error: e, .. }) => return Err(e),
            }
        }
    }

    /// Takes the new assignment. Returns whether to rejoin at once (a cooperative member
    /// that had to give partitions up).
    async fn apply(&mut self, assignment: BTreeSet<TopicPartition>) -> Result<bool> {
        let revoked: Vec<TopicPartition> = self.owned.difference(&assignment).cloned().collect();
        let added: Vec<TopicPartition> = assignment.difference(&self.owned).cloned().collect();
        let again = !revoked.is_empty() && self.protocol == RebalanceProtocol::Cooperative;
        self.revoke(revoked).await;
        let starts = self.start_offsets(&added).await?;
        self.engine.assign(starts);
        self.owned.extend(added.iter().cloned());
        let (owned, generation, member_id, leader) =
            (self.owned.clone(), self.generation, self.member_id.clone(), self.leader);
        self.membership(|m| {
            m.assignment = owned;
            m.generation = generation;
            m.member_id = member_id;
            m.leader = leader;
            m.rebalances += 1;
        });
        tracing::info!(group = %self.cfg.group_id, generation, added = added.len(), total = self.owned.len(), "assigned");
        self.announce(RebalanceKind::Assigned, added, false).await;
        Ok(again)
    }

    /// Where each newly assigned partition starts: its committed offset, else the reader's
    /// start offset.
    async fn start_offsets(&mut self, parts: &[TopicPartition]) -> Result<Vec<(TopicPartition, i64, i64)>> {
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let committed = self.fetch_committed(parts).await?;
        let mut out = Vec::new();
        for tp in parts {
            let c = committed.get(tp).copied().unwrap_or(-1);
            let start = if c >= 0 {
                c
            } else {
                resolve_start(&self.engine.cluster, tp, self.cfg.start, self.engine.settings.isolation).await?
            };
            out.push((tp.clone(), start, c));
        }
        Ok(out)
    }

    /// OffsetFetch for `parts` (require_stable from v7, so offsets of a pending transaction
    /// are waited for), retried on coordinator errors.
    async fn fetch_committed(&mut self, parts: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        let mut attempt = 0;
        loop {
            let conn = self.coordinator().await?;
            match super::offset_fetch(&conn, &self.engine.cluster, &self.cfg.group_id, Some(parts), true).await {
                Ok(m) => return Ok(m.into_iter().map(|(tp, (o, _))| (tp, o)).collect()),
                Err(e) if e.is_retriable() && attempt < 10 => {
                    if is_coordinator_error(&e) {
                        self.forget_coordinator();
                    }
                    tokio::time::sleep(self.engine.cluster.config().backoff.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The stable phase: heartbeat, commit on the interval, answer the application, watch
    /// for new partitions (leader), until a rebalance, a loss, or a close.
    async fn stable(&mut self) -> Next {
        let mut beat = tokio::time::interval(self.cfg.heartbeat_interval);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        let every = self.cfg.commit_interval.unwrap_or(Duration::from_secs(3600));
        let mut commit = tokio::time::interval(every);
        commit.tick().await;
        let mut watch = tokio::time::interval(self.cfg.watch_interval);
        watch.tick().await;
        let mut last_beat_ok = Instant::now();
        loop {
            if let Some(reply) = self.deferred_close.take() {
                return Next::Close(reply);
            }
            tokio::select! {
                _ = beat.tick() => match self.heartbeat().await {
                    Ok(()) => {
                        last_beat_ok = Instant::now();
                        self.engine.reached();
                    }
                    Err(e) => match self.heard(&e) {
                        Some(ErrorCode::RebalanceInProgress) => return Next::Rejoin,
                        Some(code @ (ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration)) => return Next::Lost(code),
                        Some(code) if is_fatal(code) => {
                            self.engine.fail(e);
                            return Next::Fatal(code);
                        }
                        _ => {
                            tracing::debug!(group = %self.cfg.group_id, error = %e, "heartbeat failed");
                            if is_coordinator_error(&e) {
                                self.forget_coordinator();
                            }
                            if last_beat_ok.elapsed() > self.cfg.session_timeout {
                                // The coordinator has surely dropped us by now.
                                return Next::Lost(ErrorCode::UnknownMemberId);
                            }
                        }
                    },
                },
                _ = commit.tick(), if self.cfg.commit_interval.is_some() => {
                    if let Err(e) = self.commit_pending().await {
                        if let Some(n) = self.after_commit_error(&e) {
                            return n;
                        }
                    }
                }
                _ = watch.tick(), if self.leader => {
                    let topics = self.cfg.topics.clone();
                    if let Ok(now) = partition_counts(&self.engine.cluster, topics).await {
                        let seen = self.counts_seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        if now.iter().any(|(t, n)| seen.get(t) != Some(n)) {
                            tracing::info!(group = %self.cfg.group_id, "partitions changed; rebalancing");
                            return Next::Rejoin;
                        }
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    None => return Next::Close(oneshot::channel().0),
                    Some(Cmd::Close(reply)) => return Next::Close(reply),
                    Some(Cmd::Commit(offsets, reply)) => match self.commit_pending().await {
                        Ok(()) => { let _ = reply.send(self.check_committed(&offsets)); }
                        Err(e) => match self.after_commit_error(&e) {
                            // Answered once the group is stable again.
                            Some(n) => { self.deferred.push((offsets, reply)); return n; }
                            None => { let _ = reply.send(Err(e)); }
                        },
                    },
                },
            }
        }
    }

    /// Notes for [`Error::NoBrokerReachable`] whether `e` came from a broker or from not
    /// reaching one; its error code.
    fn heard(&self, e: &Error) -> Option<ErrorCode> {
        self.engine.unreachable(e);
        e.error_code()
    }

    /// What a failed commit means for the membership. A fatal error (FENCED_INSTANCE_ID,
    /// GROUP_AUTHORIZATION_FAILED, ...) fails the reader.
    fn after_commit_error(&mut self, e: &Error) -> Option<Next> {
        match e.error_code() {
            Some(ErrorCode::RebalanceInProgress) => Some(Next::Rejoin),
            Some(code @ (ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration)) => Some(Next::Lost(code)),
            Some(code) if is_fatal(code) => {
                self.engine.fail(e.dup());
                Some(Next::Fatal(code))
            }
            _ => {
                self.engine.unreachable(e);
                if is_coordinator_error(e) {
                    self.forget_coordinator();
                }
                None
            }
        }
    }

    async fn heartbeat(&mut self) -> Result<()> {
        let conn = self.coordinator().await?;
        let v = conn.version_for::<HeartbeatRequest>()?;
        let mut req = HeartbeatRequest::default()
            .with_group_id(self.cfg.group_id.clone())
            .with_generation_id(self.generation)
            .with_member_id(self.member_id.clone());
        if v.0 >= 3 {
            req = req.with_group_instance_id(self.cfg.instance_id.clone());
        }
        let resp = conn.request_version(&req, v).await?;
        Error::check(resp.error_code, None, || format!("heartbeat to group {} at {}", self.cfg.group_id, conn.addr()))
    }

    /// Commits every partition's pending offset with the current generation; retries
    /// coordinator errors a few times.
    async fn commit_pending(&mut self) -> Result<()> {
        if self.generation < 0 {
            return Ok(());
        }
        let pending = self.engine.pending_commits(&self.owned);
        self.commit_offsets(pending).await
    }

    /// Commits these (partition, assignment epoch, offset) with the current generation.
    async fn commit_offsets(&mut self, pending: Vec<(TopicPartition, u64, i64)>) -> Result<()> {
        if self.generation < 0 || pending.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            let r = match self.coordinator().await {
                Ok(conn) => self.offset_commit(&conn, &pending).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {
                    tracing::debug!(
                        group = %self.cfg.group_id, member = %self.member_id, generation = self.generation,
                        offsets = ?pending.iter().map(|(tp, _, off)| (tp, off)).collect::<Vec<_>>(),
                        "offsets committed"
                    );
                    self.engine.committed(&pending);
                    for (tp, epoch, off) in pending.iter().cloned() {
                        let e = self.committed.entry(tp).or_insert((epoch, off));
                        if e.0 != epoch || e.1 < off {
                            *e = (epoch, off);
                        }
                    }
                    return Ok(());
                }
                Err(e) if is_coordinator_error(&e) && attempt < 3 => {
                    self.forget_coordinator();
                    tokio::time::sleep(self.engine.cluster.config().backoff.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn offset_commit(&self, conn: &Conn, offsets: &[(TopicPartition, u64, i64)]) -> Result<()> {
        let offsets = offsets.iter().map(|(tp, _, off)| (tp, *off));
        let mut call = super::CommitCall::new(conn, &self.engine.cluster, &self.cfg.group_id, offsets).await?;
        let v = call.version;
        if v.0 >= 1 {
            call.req =
                call.req.with_generation_id_or_member_epoch(self.generation).with_member_id(self.member_id.clone());
        }
        if v.0 >= 7 {
            call.req = call.req.with_group_instance_id(self.cfg.instance_id.clone());
        }
        for (tp, code) in call.send(conn).await? {
            Error::check(code, None, || format!("committing {tp} for group {} at {}", self.cfg.group_id, conn.addr()))?;
        }
        Ok(())
    }

    /// Whether each (partition, assignment epoch, offset) is covered by an acknowledged
    /// commit.
    fn check_committed(&self, offsets: &[(TopicPartition, u64, i64)]) -> Result<()> {
        for (tp, epoch, off) in offsets {
            match self.committed.get(tp) {
                Some((e, c)) if e == epoch && c >= off => {}
                _ => {
                    return Err(Error::CommitFailed(format!(
                        "{tp} left this member (revoked or lost) before offset {off} could be committed"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Commits, leaves the group (static members stay, so a restart within the session
    /// timeout gets the same partitions without a rebalance), stops reading.
    async fn close(mut self, reply: oneshot::Sender<Result<()>>) {
        let deadline = Instant::now() + self.cfg.close_timeout.mul_f32(0.8);
        let mut r = self.commit_pending().await;
        // The group moved to a new generation under us (a member left or joined; some
        // brokers refuse the old generation as soon as a rebalance starts): a cooperative
        // member keeps its partitions through a rebalance, so it rejoins and commits with the
        // generation the group is in now.
        let mut tries = 0;
        while self.protocol == RebalanceProtocol::Cooperative
            && tries < 3
            && matches!(
                r.as_ref().err().and_then(Error::error_code),
                Some(ErrorCode::IllegalGeneration | ErrorCode::RebalanceInProgress)
            )
        {
            tries += 1;
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            match tokio::time::timeout(left, self.rejoin_once()).await {
                Ok(Ok(())) => r = self.commit_pending().await,
                Ok(Err(e)) => {
                    tracing::debug!(group = %self.cfg.group_id, error = %e, "rejoining to commit at close failed");
                    break;
                }
                Err(_) => break,
            }
        }
        let parts: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        self.announce(RebalanceKind::Revoked, parts, false).await;
        if self.cfg.instance_id.is_none() && !self.member_id.is_empty() {
            if let Err(e) = self.leave().await {
                tracing::debug!(group = %self.cfg.group_id, error = %e, "leaving the group failed");
            }
        }
        self.engine.close();
        for (_, reply) in self.deferred.drain(..) {
            let _ = reply.send(Err(Error::Closed));
        }
        let _ = reply.send(r);
    }

    fn join_ctx(&self) -> JoinCtx {
        JoinCtx {
            engine: self.engine.clone(),
            cfg: self.cfg.clone(),
            member_id: self.member_id.clone(),
            generation: self.generation,
            owned: self.owned.clone(),
            counts_seen: self.counts_seen.clone(),
        }
    }

    /// One JoinGroup/SyncGroup round outside the main loop (at close), applied.
    async fn rejoin_once(&mut self) -> Result<()> {
        let conn = self.coordinator().await?;
        let round = self.join_ctx().join_round(conn).await;
        match self.keep_member_id(round)? {
            Round::Assigned { generation, member_id, leader, protocol, assignment } => {
                self.generation = generation;
                self.member_id = member_id;
                self.leader = leader;
                self.protocol = protocol;
                self.apply(assignment).await.map(|_| ())
            }
            Round::Retry { member_id } => {
                if let Some(id) = member_id {
                    self.member_id = id;
                }
                Ok(())
            }
            Round::Interrupted { error, .. } => Err(error),
        }
    }

    /// Takes the member id of a round whose JoinGroup succeeded and whose SyncGroup did not.
    fn keep_member_id(&mut self, round: Result<Round>) -> Result<Round> {
        if let Ok(Round::Interrupted { member_id, .. }) = &round {
            self.member_id.clone_from(member_id);
        }
        round
    }

    async fn leave(&mut self) -> Result<()> {
        let conn = self.coordinator().await?;
        let v = conn.version_for::<LeaveGroupRequest>()?;
        let mut req = LeaveGroupRequest::default().with_group_id(self.cfg.group_id.clone());
        req = if v.0 >= 3 {
            req.with_members(vec![leave_group_request::MemberIdentity::default()
                .with_member_id(self.member_id.clone())
                .with_group_instance_id(self.cfg.instance_id.clone())])
        } else {
            req.with_member_id(self.member_id.clone())
        };
        let resp = conn.request_version(&req, v).await?;
        Error::check(resp.error_code, None, || format!("leaving group {}", self.cfg.group_id))
    }
}
