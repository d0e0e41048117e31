//! One group membership: the loop that fetches, starts units of work, follows rebalances,
//! commits what is finished, and shuts down.
//!
//! The loop owns the [`Reader`] and all bookkeeping; units run on tasks of their own and
//! report back through one channel, so no lock guards the partitions.

use super::part::Part;
use super::work::{run_batch, run_record, Ctl, End, Probe};
use super::{Event, Shared, TopicCtx};
use crate::config::{BatchScope, Ordering, RevokeMode, Settings};
use crate::error::Error;
use crate::handler::AnyHandler;
use crate::health::{stopped, MemberHealth};
use crate::outputs::Flushed;
use crate::shutdown::Phase;
use bytes::Bytes;
use kafkit::{Message, Reader, RebalanceEvent, RebalanceKind, TopicPartition};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;

/// A record of a unit: where it is from.
struct Item {
    tp: TopicPartition,
    epoch: u64,
    offset: i64,
    key: Option<Bytes>,
}

/// A unit of work in flight.
struct Unit {
    items: Vec<Item>,
    records: Vec<Message>,
    abort: tokio::task::AbortHandle,
    stop: CancellationToken,
    probe: Arc<Probe>,
    /// The topic of a topic-scope batch.
    topic_batch: Option<Arc<str>>,
    key_ordered: bool,
}

struct Limits {
    partition_concurrency: usize,
    key_concurrency: usize,
    max_buffered: usize,
    commit_interval: Duration,
    on_revoke: RevokeMode,
    revoke_budget: Duration,
    drain_timeout: Duration,
    commit_timeout: Duration,
}

pub(crate) struct Member {
    group: String,
    reader: Reader,
    /// Topic name (the topic's and its retry topics') -> context and level.
    topics: HashMap<String, (Arc<TopicCtx>, u32)>,
    parts: BTreeMap<TopicPartition, Part>,
    units: HashMap<u64, Unit>,
    next_unit: u64,
    next_epoch: u64,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    limits: Limits,
    shared: Arc<Shared>,
    /// Topic-scope batches in flight, by topic.
    topic_batches: BTreeSet<Arc<str>>,
    assigned_generation: i32,
    draining: bool,
    last_turn: Instant,
    /// The last sign of fetching going on: a record fetched, a fetch answered (the reader's
    /// fetch requests less its fetch errors passed `fetch_mark`), or no partition to fetch.
    fetch_progress: Instant,
    /// The highest `fetches - errors` of the reader's stats seen.
    fetch_mark: u64,
    rr: usize,
}

impl Member {
    pub fn new(group: String, reader: Reader, ctxs: Vec<Arc<TopicCtx>>, s: &Settings, shared: Arc<Shared>) -> Member {
        let mut topics = HashMap::new();
        for ctx in ctxs {
            topics.insert(ctx.topic.to_string(), (ctx.clone(), 0));
            for (i, t) in ctx.retry_topics.iter().enumerate() {
                topics.insert(t.clone(), (ctx.clone(), i as u32 + 1));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let c = &s.consumer;
        let limits = Limits {
            partition_concurrency: c.partition_concurrency.max(1),
            key_concurrency: c.key_concurrency.max(1),
            max_buffered: c.max_buffered.max(1),
            commit_interval: c.commit_interval.max(Duration::from_millis(10)),
            on_revoke: c.on_revoke,
            // Leave a quarter of the rebalance timeout for the commit.
            revoke_budget: s.reader.rebalance_timeout.mul_f64(0.75),
            drain_timeout: s.shutdown.drain_timeout,
            commit_timeout: s.reader.rebalance_timeout.clamp(Duration::from_secs(5), Duration::from_secs(30)),
        };
        Member {
            group,
            reader,
            topics,
            parts: BTreeMap::new(),
            units: HashMap::new(),
            next_unit: 0,
            next_epoch: 0,
            tx,
            rx,
            limits,
            shared,
            topic_batches: BTreeSet::new(),
            assigned_generation: -1,
            draining: false,
            last_turn: Instant::now(),
            fetch_progress: Instant::now(),
            fetch_mark: 0,
            rr: 0,
        }
    }

    pub async fn run(mut self) {
        let mut events = self.reader.rebalance_events();
        let mut commit_tick = tokio::time::interval(self.limits.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut health_tick = tokio::time::interval(Duration::from_millis(500));
        let token = self.shared.shutdown.token.clone();
        let mut drain_deadline: Option<TokioInstant> = None;
        self.publish_health();
        loop {
            self.last_turn = Instant::now();
            self.dispatch();
            if self.draining && self.units.is_empty() {
                break;
            }
            let batch_due = self.batch_deadline();
            tokio::select! {
                biased;
                _ = token.cancelled(), if !self.draining => {
                    self.draining = true;
                    drain_deadline = Some(TokioInstant::now() + self.limits.drain_timeout);
                    // Calls running finish; no retry or dead-letter try starts after them.
                    for u in self.units.values() {
                        u.stop.cancel();
                    }
                    tracing::info!(group = %self.group, in_flight = self.units.len(), "draining");
                }
                _ = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => {
                    tracing::warn!(group = %self.group, in_flight = self.units.len(), "in-flight work did not finish within the drain timeout; cancelling it");
                    let ids: Vec<u64> = self.units.keys().copied().collect();
                    for id in ids {
                        self.abandon(id);
                    }
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.on_rebalance(ev).await,
                    None => events = self.reader.rebalance_events(),
                },
                Some(ev) = self.rx.recv() => self.on_event(ev),
                _ = commit_tick.tick() => self.commit(None).await,
                _ = health_tick.tick() => self.publish_health(),
                _ = sleep_until_opt(batch_due), if batch_due.is_some() => {}
                m = self.reader.fetch_message(), if !self.draining => match m {
                    Ok(m) => self.accept(m),
                    Err(e) => {
                        self.shared.shutdown.fail(Error::Kafka(e));
                    }
                },
            }
        }
        self.shared.shutdown.advance(Phase::Committing);
        self.commit(None).await;
        self.shared.shutdown.advance(Phase::Leaving);
        self.publish_health();
        if let Err(e) = self.reader.close().await {
            tracing::warn!(group = %self.group, error = %e, "closing the reader");
        }
    }

    fn ctx_of(&self, topic: &str) -> Option<(Arc<TopicCtx>, u32)> {
        self.topics.get(topic).cloned()
    }

    fn accept(&mut self, m: Message) {
        self.fetch_progress = Instant::now();
        let tp = TopicPartition::new(&*m.topic, m.partition);
        if !self.parts.contains_key(&tp) {
            if self.ctx_of(&m.topic).is_none() {
                self.shared
                    .shutdown
                    .fail(Error::Invalid(format!("a record of {} came, which has no handler", m.topic)));
                return;
            }
            self.next_epoch += 1;
            self.parts.insert(tp.clone(), Part::new(self.next_epoch));
        }
        let max = self.limits.max_buffered;
        let Some(p) = self.parts.get_mut(&tp) else { return };
        p.accept(m);
        if p.pending.len() >= max && !p.fetch_paused {
            p.fetch_paused = true;
            self.reader.pause(std::slice::from_ref(&tp));
        }
    }

    /// Starts what may start now.
    fn dispatch(&mut self) {
        if self.draining || self.parts.is_empty() {
            return;
        }
        let mut active = self.parts.values().filter(|p| p.inflight > 0).count();
        let limit = self.limits.partition_concurrency;
        let tps: Vec<TopicPartition> = self.parts.keys().cloned().collect();
        self.rr = self.rr.wrapping_add(1);
        let n = tps.len();
        let mut topic_scoped: BTreeSet<String> = BTreeSet::new();
        for k in 0..n {
            let tp = &tps[(self.rr + k) % n];
            let Some((ctx, level)) = self.ctx_of(&tp.topic) else { continue };
            let Some(p) = self.parts.get_mut(tp) else { continue };
            if p.revoking || p.stalled.is_some() || p.pending.is_empty() {
                continue;
            }
            match &ctx.handler {
                AnyHandler::Record(_) if ctx.ordering == Ordering::Key && level == 0 => {
                    let was_idle = p.inflight == 0;
                    if (was_idle && active >= limit) || p.inflight >= self.limits.key_concurrency {
                        continue;
                    }
                    let Some(i) = p.free_key() else { continue };
                    let Some((m, _)) = p.pending.remove(i) else { continue };
                    p.busy.insert(m.key.clone());
                    p.inflight += 1;
                    if was_idle {
                        active += 1;
                    }
                    self.spawn(ctx.clone(), level, vec![(tp.clone(), m)], true);
                }
                AnyHandler::Record(_) => {
                    if p.inflight == 0 && active < limit {
                        let Some((m, _)) = p.pending.pop_front() else { continue };
                        p.inflight += 1;
                        active += 1;
                        self.spawn(ctx.clone(), level, vec![(tp.clone(), m)], false);
                    }
                }
                AnyHandler::Batch(_) if ctx.batch_scope == BatchScope::Topic => {
                    topic_scoped.insert(tp.topic.clone());
                }
                AnyHandler::Batch(_) => {
                    let due = p.pending.len() >= ctx.batch_max
                        || p.pending.front().is_some_and(|(_, t)| t.elapsed() >= ctx.batch_wait);
                    if p.inflight == 0 && active < limit && due {
                        let take = p.pending.len().min(ctx.batch_max);
                        let msgs: Vec<(TopicPartition, Message)> =
                            p.pending.drain(..take).map(|(m, _)| (tp.clone(), m)).collect();
                        p.inflight += 1;
                        active += 1;
                        self.spawn(ctx.clone(), level, msgs, false);
                    }
                }
            }
            self.resume_if_room(tp);
        }
        // Key ordering may start several units of one partition: go round again until no
        // partition starts one more (bounded by key_concurrency per partition).
        self.dispatch_keys_again();
        for topic in topic_scoped {
            self.dispatch_topic_batch(&topic);
        }
    }

    fn dispatch_keys_again(&mut self) {
        let tps: Vec<TopicPartition> = self.parts.keys().cloned().collect();
        for tp in tps {
            let Some((ctx, level)) = self.ctx_of(&tp.topic) else { continue };
            if !(matches!(ctx.handler, AnyHandler::Record(_)) && ctx.ordering == Ordering::Key && level == 0) {
                continue;
            }
            // Only partitions already active take more here: new ones wait for a slot.
            while let Some(p) = self.parts.get_mut(&tp).filter(|p| {
                p.inflight > 0 && !p.revoking && p.stalled.is_none() && p.inflight < self.limits.key_concurrency
            }) {
                let Some(i) = p.free_key() else { break };
                let Some((m, _)) = p.pending.remove(i) else { break };
                p.busy.insert(m.key.clone());
                p.inflight += 1;
                self.spawn(ctx.clone(), level, vec![(tp.clone(), m)], true);
            }
            self.resume_if_room(&tp);
        }
    }

    /// A batch of every partition of a topic-scope batch topic (and its retry topics: each
    /// level on its own), one in flight per topic.
    fn dispatch_topic_batch(&mut self, topic: &str) {
        let Some((ctx, level)) = self.ctx_of(topic) else { return };
        let key: Arc<str> = Arc::from(format!("{topic}#{level}"));
        if self.topic_batches.contains(&key) {
            return;
        }
        let tps: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(tp, p)| tp.topic == topic && !p.revoking && p.stalled.is_none() && p.inflight == 0)
            .map(|(tp, _)| tp.clone())
            .collect();
        let total: usize = tps.iter().filter_map(|tp| self.parts.get(tp)).map(|p| p.pending.len()).sum();
        let oldest = tps.iter().filter_map(|tp| self.parts.get(tp)?.pending.front().map(|(_, t)| *t)).min();
        let due = total >= ctx.batch_max || oldest.is_some_and(|t| t.elapsed() >= ctx.batch_wait);
        if total == 0 || !due {
            return;
        }
        let mut msgs = Vec::new();
        'fill: loop {
            let mut took = false;
            for tp in &tps {
                if msgs.len() >= ctx.batch_max {
                    break 'fill;
                }
                if let Some((m, _)) = self.parts.get_mut(tp).and_then(|p| p.pending.pop_front()) {
                    msgs.push((tp.clone(), m));
                    took = true;
                }
            }
            if !took {
                break;
            }
        }
        // Keep each partition's records together, in offset order.
        msgs.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.offset.cmp(&y.offset)));
        let mut touched: Vec<&TopicPartition> = msgs.iter().map(|(tp, _)| tp).collect();
        touched.dedup();
        for tp in touched {
            if let Some(p) = self.parts.get_mut(tp) {
                p.inflight += 1;
            }
        }
        self.topic_batches.insert(key.clone());
        let id = self.spawn(ctx, level, msgs, false);
        if let Some(u) = self.units.get_mut(&id) {
            u.topic_batch = Some(key);
        }
        for tp in &tps {
            self.resume_if_room(tp);
        }
    }

    fn resume_if_room(&mut self, tp: &TopicPartition) {
        let half = self.limits.max_buffered / 2;
        if let Some(p) = self.parts.get_mut(tp) {
            if p.fetch_paused && p.pending.len() <= half && p.stalled.is_none() && !p.revoking {
                p.fetch_paused = false;
                self.reader.resume(std::slice::from_ref(tp));
            }
        }
    }

    /// Starts a unit on a task of its own; the caller has counted it in its partitions'
    /// `inflight`.
    fn spawn(
        &mut self,
        ctx: Arc<TopicCtx>,
        level: u32,
        msgs: Vec<(TopicPartition, Message)>,
        key_ordered: bool,
    ) -> u64 {
        self.next_unit += 1;
        let id = self.next_unit;
        let items: Vec<Item> = msgs
            .iter()
            .map(|(tp, m)| Item {
                tp: tp.clone(),
                epoch: self.parts.get(tp).map_or(0, |p| p.epoch),
                offset: m.offset,
                key: m.key.clone(),
            })
            .collect();
        let records: Vec<Message> = msgs.into_iter().map(|(_, m)| m).collect();
        let stop = CancellationToken::new();
        let probe = Arc::new(Probe::default());
        let ctl = Ctl {
            ctx: ctx.clone(),
            level,
            unit: id,
            stop: stop.clone(),
            probe: probe.clone(),
            events: self.tx.clone(),
            epoch: self.shared.epoch,
        };
        let tx = self.tx.clone();
        let batch = matches!(ctx.handler, AnyHandler::Batch(_));
        let work = records.clone();
        let task = tokio::spawn(async move {
            let ends = if batch {
                run_batch(ctl, work).await
            } else {
                let m = work.into_iter().next().unwrap_or_default();
                vec![run_record(ctl, m).await]
            };
            let _ = tx.send(Event::Done { unit: id, ends });
        });
        self.units.insert(
            id,
            Unit { items, records, abort: task.abort_handle(), stop, probe, topic_batch: None, key_ordered },
        );
        id
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Done { unit, ends } => self.finish(unit, ends),
            Event::Stalled { unit, error } => {
                let Some(u) = self.units.get(&unit) else { return };
                let tps: Vec<(TopicPartition, u64)> = u.items.iter().map(|i| (i.tp.clone(), i.epoch)).collect();
                for (tp, epoch) in tps {
                    if let Some(p) = self.parts.get_mut(&tp).filter(|p| p.epoch == epoch) {
                        if p.stalled.is_none() {
                            tracing::warn!(group = %self.group, partition = %tp, %error, "partition stopped");
                            p.stalled = Some((unit, error.clone()));
                            self.reader.pause(std::slice::from_ref(&tp));
                        }
                    }
                }
            }
        }
    }

    /// A unit is over: its finished offsets leave `unfinished`; what it did not finish of a
    /// partition still held goes back to be started again.
    fn finish(&mut self, unit: u64, ends: Vec<End>) {
        let Some(u) = self.units.remove(&unit) else { return };
        if let Some(t) = &u.topic_batch {
            self.topic_batches.remove(t);
        }
        let mut released: Vec<TopicPartition> = Vec::new();
        for (i, item) in u.items.iter().enumerate() {
            let end = ends.get(i).cloned().unwrap_or(End::Abandoned);
            let Some(p) = self.parts.get_mut(&item.tp).filter(|p| p.epoch == item.epoch) else { continue };
            if !released.contains(&item.tp) {
                released.push(item.tp.clone());
                p.inflight = p.inflight.saturating_sub(1);
                if p.stalled.as_ref().is_some_and(|(by, _)| *by == unit) {
                    p.stalled = None;
                    tracing::info!(group = %self.group, partition = %item.tp, "partition going again");
                    if !p.fetch_paused {
                        self.reader.resume(std::slice::from_ref(&item.tp));
                    }
                }
            }
            if u.key_ordered {
                p.busy.remove(&item.key);
            }
            match end {
                e if e.finished() => {
                    p.unfinished.remove(&item.offset);
                }
                End::Stop(failure) => {
                    p.stalled = Some((0, "the handler stopped the service".into()));
                    self.shared.shutdown.fail(Error::Stopped {
                        topic: item.tp.topic.clone(),
                        partition: item.tp.partition,
                        offset: item.offset,
                        failure,
                    });
                }
                _ => {
                    if !p.revoking && !self.draining {
                        if let Some(m) = u.records.get(i) {
                            p.requeue(m.clone());
                        }
                    }
                }
            }
        }
    }

    /// Drops a unit now (its task aborted); its records are not finished.
    fn abandon(&mut self, unit: u64) {
        if let Some(u) = self.units.get(&unit) {
            u.abort.abort();
            let n = u.items.len();
            self.finish(unit, vec![End::Abandoned; n]);
        }
    }

    fn units_of(&self, tps: &BTreeSet<TopicPartition>) -> Vec<u64> {
        self.units.iter().filter(|(_, u)| u.items.iter().any(|i| tps.contains(&i.tp))).map(|(id, _)| *id).collect()
    }

    async fn on_rebalance(&mut self, ev: RebalanceEvent) {
        match ev.kind {
            RebalanceKind::Assigned => {
                self.assigned_generation = ev.generation;
                for tp in &ev.partitions {
                    if !self.parts.contains_key(tp) && self.ctx_of(&tp.topic).is_some() {
                        self.next_epoch += 1;
                        self.parts.insert(tp.clone(), Part::new(self.next_epoch));
                    }
                }
                tracing::info!(group = %self.group, generation = ev.generation, added = ev.partitions.len(), "assigned");
                self.publish_health();
            }
            RebalanceKind::Lost => {
                let tps: BTreeSet<TopicPartition> = ev.partitions.iter().cloned().collect();
                for tp in &tps {
                    if let Some(p) = self.parts.get_mut(tp) {
                        p.revoking = true;
                    }
                }
                for id in self.units_of(&tps) {
                    self.abandon(id);
                }
                for tp in &tps {
                    self.parts.remove(tp);
                }
                self.assigned_generation = -1;
                tracing::warn!(group = %self.group, lost = tps.len(), "partitions lost (their uncommitted records go to the next owner)");
                self.publish_health();
            }
            RebalanceKind::Revoked => self.revoke(ev).await,
        }
    }

    /// Stops, finishes or cancels what the revoked partitions have in flight, commits them,
    /// and lets the rebalance go on.
    async fn revoke(&mut self, ev: RebalanceEvent) {
        let tps: BTreeSet<TopicPartition> = ev.partitions.iter().cloned().collect();
        // Nothing more of them is handed out: the reader keeps what it holds of them until
        // they leave.
        self.reader.pause(&ev.partitions);
        for tp in &tps {
            if let Some(p) = self.parts.get_mut(tp) {
                p.revoking = true;
                p.pending.clear();
            }
        }
        let started = Instant::now();
        let affected = self.units_of(&tps);
        match self.limits.on_revoke {
            RevokeMode::Cancel => {
                for id in &affected {
                    self.abandon(*id);
                }
            }
            RevokeMode::Stop => {
                for id in &affected {
                    if let Some(u) = self.units.get(id) {
                        u.stop.cancel();
                    }
                }
            }
            RevokeMode::Finish => {}
        }
        let deadline = TokioInstant::now() + self.limits.revoke_budget;
        while !self.units_of(&tps).is_empty() {
            tokio::select! {
                Some(e) = self.rx.recv() => self.on_event(e),
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(group = %self.group, "revoked partitions' work did not finish in time; cancelling it");
                    for id in self.units_of(&tps) {
                        self.abandon(id);
                    }
                }
            }
        }
        self.commit(Some(&tps)).await;
        for tp in &tps {
            self.parts.remove(tp);
        }
        tracing::info!(group = %self.group, revoked = tps.len(), waited = ?started.elapsed(), mode = ?self.limits.on_revoke, "revoked");
        ev.done();
        self.publish_health();
    }

    /// Flushes the producers, then commits each partition's commit point (all, or `only`);
    /// skips the commit when the flush does not find every output acknowledged.
    async fn commit(&mut self, only: Option<&BTreeSet<TopicPartition>>) {
        let points: Vec<(TopicPartition, i64)> = self
            .parts
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(*tp)))
            .filter_map(|(tp, p)| p.commit_point().map(|c| (tp.clone(), c)))
            .collect();
        if points.is_empty() {
            return;
        }
        // A commit never covers a record whose outputs are not acknowledged yet: when the
        // flush cannot say they are, this commit is skipped (a later one covers them once it
        // can; none once an output is lost).
        match self.shared.flush(self.limits.commit_timeout).await {
            Flushed::Acked => {}
            Flushed::NotYet(why) => {
                tracing::warn!(group = %self.group, reason = %why, "not committing yet");
                return;
            }
            Flushed::Lost(why) => {
                tracing::warn!(group = %self.group, reason = %why, "not committing: an output was lost");
                return;
            }
        }
        let msgs: Vec<Message> = points
            .iter()
            .map(|(tp, c)| Message {
                topic: tp.topic.as_str().into(),
                partition: tp.partition,
                offset: c - 1,
                ..Message::default()
            })
            .collect();
        match tokio::time::timeout(self.limits.commit_timeout, self.reader.commit_messages(&msgs)).await {
            Ok(Ok(())) => {
                for (tp, c) in points {
                    if let Some(p) = self.parts.get_mut(&tp) {
                        p.committed = c;
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(group = %self.group, error = %e, "commit failed"),
            Err(_) => tracing::warn!(group = %self.group, timeout = ?self.limits.commit_timeout, "commit timed out"),
        }
    }

    /// The earliest time a batch waiting for more records must go.
    fn batch_deadline(&self) -> Option<TokioInstant> {
        self.parts
            .iter()
            .filter(|(_, p)| p.inflight == 0 && !p.revoking && p.stalled.is_none())
            .filter_map(|(tp, p)| {
                let (ctx, _) = self.topics.get(&tp.topic)?;
                matches!(ctx.handler, AnyHandler::Batch(_)).then_some(())?;
                let (_, t) = p.pending.front()?;
                Some(TokioInstant::from_std(*t + ctx.batch_wait))
            })
            .min()
    }

    fn publish_health(&mut self) {
        let parts = self.reader.partitions();
        let mut lag: HashMap<Arc<str>, i64> = HashMap::new();
        for (tp, st) in &parts {
            if let Some((ctx, _)) = self.topics.get(&tp.topic) {
                if st.lag >= 0 {
                    *lag.entry(ctx.topic.clone()).or_insert(0) += st.lag;
                }
            }
        }
        for (ctx, _) in self.topics.values() {
            let l = lag.get(&ctx.topic).copied().unwrap_or(if parts.is_empty() { -1 } else { 0 });
            ctx.counters.lag.store(l, std::sync::atomic::Ordering::Relaxed);
        }
        // Fetching goes on when a fetch was answered since the last look (a request sent and
        // not failed: one stuck on a silent broker counts once at most, until it fails), or
        // when nothing is to be fetched (no partition, all paused, shutting down).
        let st = self.reader.stats();
        let answered = st.fetches.saturating_sub(st.errors);
        if answered > self.fetch_mark {
            self.fetch_mark = answered;
            self.fetch_progress = Instant::now();
        }
        if self.draining || parts.values().all(|p| p.paused) {
            self.fetch_progress = Instant::now();
        }
        let epoch = self.shared.epoch;
        let h = MemberHealth {
            group: self.group.clone(),
            joined: self.reader.generation() >= 0,
            assigned: self.assigned_generation >= 0 && self.assigned_generation == self.reader.generation(),
            partitions: self.reader.assignment().len(),
            stopped: self
                .parts
                .iter()
                .filter_map(|(tp, p)| p.stalled.as_ref().map(|(_, why)| stopped(tp, why)))
                .collect(),
            loop_age: self.last_turn.elapsed(),
            fetch_age: (!parts.is_empty()).then(|| self.fetch_progress.elapsed()),
            longest_call: self.units.values().filter_map(|u| u.probe.running(epoch)).max(),
        };
        if let Ok(mut m) = self.shared.members.lock() {
            m.insert(self.group.clone(), (h, Instant::now()));
        }
    }
}

async fn sleep_until_opt(t: Option<TokioInstant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
