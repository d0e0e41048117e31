//! One unit of work, on a task of its own: a record (or a batch) through its handler, its
//! retries, and its dead-letter or retry-topic write.

use super::{Event, TopicCtx};
use crate::config::RetryMode;
use crate::dlt::{dead_letter_message, retry_message, RetryState};
use crate::handler::{Action, AnyHandler, Batch, BatchFailure, Failure, Record};
use crate::stats::TopicCounters;
use kafkit::Message;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a record's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The handler succeeded.
    Handled,
    /// Written to the dead-letter topic, acknowledged.
    DeadLettered,
    /// Written to a retry topic, acknowledged.
    Forwarded,
    /// Not finished (stopped or cancelled): not committed, read again later.
    Abandoned,
    /// The handler asked to stop the service.
    Stop(String),
}

impl End {
    pub fn finished(&self) -> bool {
        matches!(self, End::Handled | End::DeadLettered | End::Forwarded)
    }
}

/// When the unit's current handler call started (µs after `epoch`, 0 when none): read for
/// liveness.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    started_us: AtomicU64,
}

impl Probe {
    fn enter(&self, epoch: Instant) {
        self.started_us.store(epoch.elapsed().as_micros().max(1) as u64, Ordering::Relaxed);
    }
    fn leave(&self) {
        self.started_us.store(0, Ordering::Relaxed);
    }
    /// How long the current call has run.
    pub fn running(&self, epoch: Instant) -> Option<std::time::Duration> {
        let s = self.started_us.load(Ordering::Relaxed);
        (s != 0).then(|| epoch.elapsed().saturating_sub(std::time::Duration::from_micros(s)))
    }
}

/// What a unit needs besides its records.
pub(crate) struct Ctl {
    pub ctx: Arc<TopicCtx>,
    /// 0 for the topic itself, n for its retry topic n.
    pub level: u32,
    pub unit: u64,
    /// No further handler call or wait once cancelled.
    pub stop: CancellationToken,
    pub probe: Arc<Probe>,
    pub events: mpsc::UnboundedSender<Event>,
    pub epoch: Instant,
}

impl Ctl {
    fn counters(&self) -> &TopicCounters {
        &self.ctx.counters
    }

    /// Waits until `t`, unless stopped first (false).
    async fn sleep_until(&self, t: SystemTime) -> bool {
        let wait = t.duration_since(SystemTime::now()).unwrap_or_default();
        self.sleep(wait).await
    }

    async fn sleep(&self, d: std::time::Duration) -> bool {
        if d.is_zero() {
            return !self.stop.is_cancelled();
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    fn record(&self, m: &Message, st: &RetryState, attempt: u32) -> Record {
        Record { message: m.clone(), attempt, group: self.ctx.group.clone(), origin: st.origin.clone() }
    }

    /// Writes `m` until it is acknowledged, backing off between tries; tells the member the
    /// partition is stopped while it fails. `false` when stopped first.
    async fn write_until_acked(&self, m: Message, what: &str) -> bool {
        let mut attempt = 0;
        let mut stalled = false;
        loop {
            let awaiting = self.ctx.tracked.begin();
            let r = match self.ctx.writer.write(m.clone()).await {
                Ok(f) => {
                    let r = f.await;
                    if r.is_err() {
                        self.ctx.tracked.told(&awaiting);
                    }
                    r
                }
                Err(e) => Err(e),
            };
            drop(awaiting);
            match r {
                Ok(_) => return true,
                Err(e) => {
                    TopicCounters::add(&self.counters().dead_letter_errors, 1);
                    tracing::warn!(topic = %m.topic, error = %e, attempt, "{what} write failed; the partition waits");
                    if !stalled {
                        stalled = true;
                        let _ = self
                            .events
                            .send(Event::Stalled { unit: self.unit, error: format!("{what} {}: {e}", m.topic) });
                    }
                    let wait = self.ctx.dlt_backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    if !self.sleep(wait).await {
                        return false;
                    }
                }
            }
        }
    }

    /// A record that failed for good (or was sent there): the dead-letter topic, or a stop.
    async fn dead_letter(&self, m: &Message, st: &RetryState, f: &Failure, exhausted: bool) -> End {
        let Some(dlt) = &self.ctx.dlt else {
            return End::Stop(format!("{f} (no dead-letter topic; the record is not skipped)"));
        };
        let d = dead_letter_message(m, dlt, &self.ctx.group, st, f, exhausted);
        if self.write_until_acked(d, "dead-letter").await {
            TopicCounters::add(&self.counters().dead_lettered, 1);
            End::DeadLettered
        } else {
            End::Abandoned
        }
    }

    /// A record to retry through the next retry topic.
    async fn forward(&self, m: &Message, st: &RetryState, f: &Failure) -> End {
        let n = st.attempts; // the retry number: attempts made so far
        let Some(topic) = self.ctx.retry_topics.get(n as usize - 1) else {
            return self.dead_letter(m, st, f, true).await;
        };
        let due = SystemTime::now() + self.ctx.retry_backoff.delay(n - 1);
        let r = retry_message(m, topic, st, f, due);
        if self.write_until_acked(r, "retry-topic").await {
            End::Forwarded
        } else {
            End::Abandoned
        }
    }

    fn failed(&self, st: &mut RetryState) {
        TopicCounters::add(&self.counters().failed, 1);
        let now = SystemTime::now();
        st.first_failure.get_or_insert(now);
        st.last_failure = Some(now);
    }
}

/// Runs one record through its handler.
pub(crate) async fn run_record(ctl: Ctl, m: Message) -> End {
    let AnyHandler::Record(handler) = &ctl.ctx.handler else { return End::Abandoned };
    let mut st = RetryState::of(&m, ctl.level > 0);
    if let Some(due) = st.due {
        if !ctl.sleep_until(due).await {
            return End::Abandoned;
        }
    }
    loop {
        st.attempts += 1;
        ctl.probe.enter(ctl.epoch);
        let started = Instant::now();
        let r = handler.call(ctl.record(&m, &st, st.attempts)).await;
        ctl.probe.leave();
        ctl.counters().time(started.elapsed());
        let f = match r {
            Ok(()) => {
                TopicCounters::add(&ctl.counters().handled, 1);
                return End::Handled;
            }
            Err(f) => f,
        };
        ctl.failed(&mut st);
        match f.action() {
            Action::Stop => return End::Stop(f.to_string()),
            Action::DeadLetter => return ctl.dead_letter(&m, &st, &f, false).await,
            Action::Retry if st.attempts >= ctl.ctx.max_attempts => return ctl.dead_letter(&m, &st, &f, true).await,
            Action::Retry => {
                if ctl.stop.is_cancelled() {
                    return End::Abandoned;
                }
                TopicCounters::add(&ctl.counters().retried, 1);
                match ctl.ctx.retry_mode {
                    RetryMode::Topics => return ctl.forward(&m, &st, &f).await,
                    RetryMode::InPlace => {
                        if !ctl.sleep(ctl.ctx.retry_backoff.delay(st.attempts - 1)).await {
                            return End::Abandoned;
                        }
                    }
                }
            }
        }
    }
}

/// Runs a batch through its handler; failed records (all, or those it names) are retried as
/// a smaller batch, forwarded or dead-lettered one by one.
pub(crate) async fn run_batch(ctl: Ctl, msgs: Vec<Message>) -> Vec<End> {
    let AnyHandler::Batch(handler) = &ctl.ctx.handler else { return vec![End::Abandoned; msgs.len()] };
    let mut ends: Vec<Option<End>> = vec![None; msgs.len()];
    let mut st: Vec<RetryState> = msgs.iter().map(|m| RetryState::of(m, ctl.level > 0)).collect();
    if let Some(due) = st.iter().filter_map(|s| s.due).max() {
        if !ctl.sleep_until(due).await {
            return vec![End::Abandoned; msgs.len()];
        }
    }
    let mut todo: Vec<usize> = (0..msgs.len()).collect();
    while !todo.is_empty() {
        for &i in &todo {
            st[i].attempts += 1;
        }
        let batch = Batch { records: todo.iter().map(|&i| ctl.record(&msgs[i], &st[i], st[i].attempts)).collect() };
        ctl.probe.enter(ctl.epoch);
        let started = Instant::now();
        let r = handler.call(batch).await;
        ctl.probe.leave();
        ctl.counters().time(started.elapsed());
        let failures: Vec<(usize, Failure)> = match r {
            Ok(()) => Vec::new(),
            Err(BatchFailure::All(f)) => todo.iter().map(|&i| (i, f.clone())).collect(),
            Err(BatchFailure::Records(v)) => {
                let mut out: Vec<(usize, Failure)> = Vec::new();
                for (j, f) in v {
                    match todo.get(j) {
                        Some(&i) if !out.iter().any(|(k, _)| *k == i) => out.push((i, f)),
                        Some(_) => {}
                        None => tracing::warn!(
                            index = j,
                            len = todo.len(),
                            "a batch handler named a record it was not given"
                        ),
                    }
                }
                out
            }
        };
        let failed: Vec<usize> = failures.iter().map(|(i, _)| *i).collect();
        let handled = todo.iter().filter(|i| !failed.contains(i)).count();
        TopicCounters::add(&ctl.counters().handled, handled as u64);
        for &i in &todo {
            if !failed.contains(&i) {
                ends[i] = Some(End::Handled);
            }
        }
        let mut again = Vec::new();
        let mut last_failure = None;
        for (i, f) in failures {
            ctl.failed(&mut st[i]);
            let end = match f.action() {
                Action::Stop => Some(End::Stop(f.to_string())),
                Action::DeadLetter => Some(ctl.dead_letter(&msgs[i], &st[i], &f, false).await),
                Action::Retry if st[i].attempts >= ctl.ctx.max_attempts => {
                    Some(ctl.dead_letter(&msgs[i], &st[i], &f, true).await)
                }
                Action::Retry if ctl.stop.is_cancelled() => Some(End::Abandoned),
                Action::Retry => {
                    TopicCounters::add(&ctl.counters().retried, 1);
                    match ctl.ctx.retry_mode {
                        RetryMode::Topics => Some(ctl.forward(&msgs[i], &st[i], &f).await),
                        RetryMode::InPlace => {
                            again.push(i);
                            last_failure = Some(st[i].attempts);
                            None
                        }
                    }
                }
            };
            ends[i] = end;
        }
        if ends.iter().any(|e| matches!(e, Some(End::Stop(_)))) {
            break;
        }
        if let Some(attempts) = last_failure {
            if !ctl.sleep(ctl.ctx.retry_backoff.delay(attempts - 1)).await {
                break;
            }
        }
        todo = again;
    }
    ends.into_iter().map(|e| e.unwrap_or(End::Abandoned)).collect()
}
