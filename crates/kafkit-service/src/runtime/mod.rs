//! The consumer runtime: [`Service`] registers handlers per topic, joins the group (one
//! membership per group id) and runs them until it is shut down.

mod member;
mod part;
mod work;

use crate::config::{BatchScope, Config, Ordering, RetryMode, Settings};
use crate::dlt::topic_name;
use crate::error::{Error, Result};
use crate::handler::{AnyHandler, BatchHandler, Handler};
use crate::health::{Health, MemberHealth};
use crate::outputs::{Flushed, Output, Tracked};
#[cfg(feature = "serde")]
use crate::producer::Producer;
use crate::shutdown::{Phase, Shutdown};
use crate::stats::{Registry, TopicCounters, TopicStats};
use kafkit::cluster::{Backoff, Cluster};
use kafkit::{Reader, Writer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(crate) use work::End;

/// What a unit's task tells its member.
#[derive(Debug)]
pub(crate) enum Event {
    /// The unit is over; one end per record, in the unit's order.
    Done { unit: u64, ends: Vec<End> },
    /// A dead-letter or retry-topic write of the unit fails: its partitions stop until it
    /// succeeds (then `Done` comes).
    Stalled { unit: u64, error: String },
}

/// Everything the work of one registered topic needs.
pub(crate) struct TopicCtx {
    pub topic: Arc<str>,
    pub group: Arc<str>,
    pub handler: AnyHandler,
    pub ordering: Ordering,
    pub max_attempts: u32,
    pub retry_mode: RetryMode,
    pub retry_backoff: Backoff,
    /// Retry topic of retry `n` at index `n - 1` (retry mode `topics`).
    pub retry_topics: Vec<String>,
    /// The dead-letter topic; `None` when disabled.
    pub dlt: Option<String>,
    pub dlt_backoff: Backoff,
    pub batch_max: usize,
    pub batch_wait: Duration,
    pub batch_scope: BatchScope,
    pub writer: Writer,
    /// The failures told to the runtime's awaited writes on `writer`.
    pub tracked: Arc<Tracked>,
    pub counters: Arc<TopicCounters>,
}

/// What the service shares with its members, tasks and handles.
pub(crate) struct Shared {
    pub shutdown: Shutdown,
    pub stats: Mutex<Registry>,
    /// Each member's health as it last published it, and when.
    pub members: Mutex<BTreeMap<String, (MemberHealth, Instant)>>,
    pub ping: Mutex<Option<std::result::Result<(), String>>>,
    /// Flushed before every commit (the service's writer is the first).
    pub producers: Mutex<Vec<Output>>,
    /// The service writer's awaited writes (the runtime's, its `Producer`s').
    pub tracked: Arc<Tracked>,
    /// Set once an output was lost: nothing is committed from then on.
    pub outputs_lost: std::sync::atomic::AtomicBool,
    pub epoch: Instant,
    pub handler_stall: Duration,
    pub loop_stall: Duration,
    pub fetch_stall: Duration,
}

impl Shared {
    fn phase(&self) -> Phase {
        match self.shutdown.phase() {
            Phase::Running if self.shutdown.token.is_cancelled() => Phase::Draining,
            p => p,
        }
    }

    fn health(&self) -> Health {
        let ping = self.ping.lock().ok().and_then(|p| p.clone());
        Health {
            connected: matches!(ping, Some(Ok(()))),
            ping_error: ping.and_then(|p| p.err()),
            shutting_down: self.phase() != Phase::Running,
            // What a member published ages until it publishes again: a stuck loop shows.
            members: self
                .members
                .lock()
                .map(|m| {
                    m.values()
                        .map(|(h, at)| MemberHealth {
                            loop_age: h.loop_age + at.elapsed(),
                            fetch_age: h.fetch_age.map(|a| a + at.elapsed()),
                            longest_call: h.longest_call.map(|c| c + at.elapsed()),
                            ..h.clone()
                        })
                        .collect()
                })
                .unwrap_or_default(),
            handler_stall: self.handler_stall,
            loop_stall: self.loop_stall,
            fetch_stall: self.fetch_stall,
        }
    }

    /// Flushes every producer, each within `limit`, and says whether a commit may cover
    /// the records finished so far: [`Flushed::Acked`] only when every output queued before
    /// is acknowledged. Once an output is lost, it stops the service
    /// ([`Error::OutputLost`]) and no later flush is `Acked`.
    pub async fn flush(&self, limit: Duration) -> Flushed {
        use std::sync::atomic::Ordering::SeqCst;
        if self.outputs_lost.load(SeqCst) {
            return Flushed::Lost("an output was lost earlier".into());
        }
        let outputs: Vec<Output> = self.producers.lock().map(|p| p.clone()).unwrap_or_default();
        let mut worst = Flushed::Acked;
        for o in outputs {
            match o.flush(limit).await {
                Flushed::Acked => {}
                Flushed::NotYet(why) => {
                    if worst == Flushed::Acked {
                        worst = Flushed::NotYet(why);
                    }
                }
                Flushed::Lost(why) => {
                    if !matches!(worst, Flushed::Lost(_)) {
                        worst = Flushed::Lost(why);
                    }
                }
            }
        }
        if let Flushed::Lost(why) = &worst {
            if !self.outputs_lost.swap(true, SeqCst) {
                self.shutdown.fail(Error::OutputLost(why.clone()));
            }
        }
        worst
    }
}

/// A handle on a running (or built) service: shut it down, ask where it stands, read its
/// health and stats. A cheap `Clone`.
#[derive(Clone)]
pub struct ServiceHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceHandle").field("phase", &self.phase()).finish()
    }
}

impl ServiceHandle {
    /// Starts a graceful shutdown (as SIGTERM does).
    pub fn shutdown(&self) {
        self.shared.shutdown.token.cancel();
    }
    /// Ends the shutdown at once (as a second signal does).
    pub fn force(&self) {
        self.shared.shutdown.token.cancel();
        self.shared.shutdown.forced.cancel();
    }
    /// Whether a shutdown has started (or the service stopped).
    pub fn is_shutdown(&self) -> bool {
        self.phase() != Phase::Running
    }
    /// Where the service stands ([`Phase::Draining`] as soon as a shutdown is asked for).
    pub fn phase(&self) -> Phase {
        self.shared.phase()
    }
    /// The token whose cancellation starts the shutdown.
    pub fn token(&self) -> CancellationToken {
        self.shared.shutdown.token.clone()
    }
    /// Readiness and liveness now.
    pub fn health(&self) -> Health {
        self.shared.health()
    }
    /// Counters and timings per topic.
    pub fn stats(&self) -> BTreeMap<String, TopicStats> {
        self.shared.stats.lock().map(|r| r.snapshot()).unwrap_or_default()
    }
}

struct Registration {
    topic: String,
    handler: AnyHandler,
}

/// A consumer service: handlers per topic over one group membership (or one per group
/// asked for), a writer for dead-letter and retry topics and outputs, graceful shutdown,
/// health and stats. kafkax's `Consumer` and `MultiTopicConsumer` with
/// `RunWithGracefulShutdown`; Spring Kafka's listener container with its error handler.
///
/// ```no_run
/// # #[cfg(feature = "serde")]
/// # async fn run() -> kafkit_service::Result<()> {
/// use kafkit_service::{Config, Failure, Record, Service};
///
/// let config = Config::load(Some("service.toml".as_ref()))?; // defaults, file, KAFKIT_* env
/// let mut service = Service::connect(&config).await?;
/// let out = service.producer();
/// service.handle("orders", move |r: Record| {
///     let out = out.clone();
///     async move {
///         let id = r.key().cloned().unwrap_or_default();
///         out.send("results", id, "done").await.map_err(Failure::retry)?;
///         Ok(())
///     }
/// });
/// service.run().await // until SIGINT/SIGTERM
/// # }
/// ```
///
/// (`Service::producer` needs the `serde` feature.)
pub struct Service {
    settings: Settings,
    shared: Arc<Shared>,
    writer: Writer,
    cluster: Cluster,
    topics: Vec<Registration>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("topics", &self.topics.iter().map(|t| &t.topic).collect::<Vec<_>>()).finish()
    }
}

impl Service {
    /// Connects the writer (dead-letter and retry topics, `Service::producer`) and checks
    /// the cluster with a ping. The group is joined by [`Service::run`].
    ///
    /// # Errors
    /// [`Error::Settings`] for settings that do not convert; the writer's and the ping's
    /// errors.
    pub async fn connect(config: &Config) -> Result<Service> {
        Service::from_settings(config.settings().clone()).await
    }

    /// As [`Service::connect`], from settings made in code.
    ///
    /// # Errors
    /// As [`Service::connect`].
    pub async fn from_settings(settings: Settings) -> Result<Service> {
        let wcfg = settings.writer_config().map_err(Error::Settings)?;
        let _checked = settings.reader_config().map_err(Error::Settings)?;
        let writer = Writer::new(&settings.brokers(), wcfg).await?;
        let cluster = writer.cluster().clone();
        let ping = cluster.ping(settings.health.ping_timeout).await.map(|_| ()).map_err(|e| e.to_string());
        let tracked = Arc::new(Tracked::default());
        let shared = Arc::new(Shared {
            shutdown: Shutdown::default(),
            stats: Mutex::new(Registry::default()),
            members: Mutex::new(BTreeMap::new()),
            ping: Mutex::new(Some(ping)),
            producers: Mutex::new(vec![Output::new(writer.clone(), tracked.clone())]),
            tracked,
            outputs_lost: Default::default(),
            epoch: Instant::now(),
            handler_stall: settings.health.handler_stall,
            loop_stall: settings.health.loop_stall,
            fetch_stall: settings.health.fetch_stall,
        });
        Ok(Service { settings, shared, writer, cluster, topics: Vec::new() })
    }

    /// Handles `topic`'s records one at a time with `handler`.
    pub fn handle(&mut self, topic: &str, handler: impl Handler) -> &mut Self {
        self.topics.push(Registration { topic: topic.into(), handler: AnyHandler::Record(Arc::new(handler)) });
        self
    }

    /// Handles `topic`'s records in batches (`consumer.batch`, or the topic's own
    /// `batch_*` settings) with `handler`.
    pub fn handle_batch(&mut self, topic: &str, handler: impl BatchHandler) -> &mut Self {
        self.topics.push(Registration { topic: topic.into(), handler: AnyHandler::Batch(Arc::new(handler)) });
        self
    }

    /// A producer over the service's writer: flushed before every commit and at shutdown.
    /// Feature `serde`.
    #[cfg(feature = "serde")]
    pub fn producer(&self) -> Producer {
        Producer::tracked(self.writer.clone(), self.shared.tracked.clone())
    }

    /// Flushes `p` before every commit and at shutdown too. Feature `serde`.
    #[cfg(feature = "serde")]
    pub fn add_producer(&mut self, p: &Producer) -> &mut Self {
        if let Ok(mut v) = self.shared.producers.lock() {
            v.push(Output::new(p.writer().clone(), p.tracker().clone()));
        }
        self
    }

    /// Shuts down when `token` is cancelled.
    pub fn shutdown_on(&mut self, token: CancellationToken) -> &mut Self {
        let mine = self.shared.shutdown.token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => mine.cancel(),
                _ = mine.cancelled() => {}
            }
        });
        self
    }

    /// A handle for shutting down, `is_shutdown`, health and stats.
    pub fn control(&self) -> ServiceHandle {
        ServiceHandle { shared: self.shared.clone() }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn contexts(&self) -> Result<BTreeMap<String, Vec<Arc<TopicCtx>>>> {
        let s = &self.settings;
        let c = &s.consumer;
        let mut seen = BTreeSet::new();
        let mut groups: BTreeMap<String, Vec<Arc<TopicCtx>>> = BTreeMap::new();
        for r in &self.topics {
            if !seen.insert(r.topic.clone()) {
                return Err(Error::Invalid(format!("topic {} has two handlers", r.topic)));
            }
            let o = c.topics.get(&r.topic).cloned().unwrap_or_default();
            let group = o.group_id.clone().or_else(|| s.reader.group_id.clone()).ok_or_else(|| {
                Error::Settings(format!("reader.group_id (or consumer.topics.{}.group_id) is needed", r.topic))
            })?;
            let max_attempts = o.max_attempts.unwrap_or(c.retry.max_attempts).max(1);
            let retry_mode = o.retry_mode.unwrap_or(c.retry.mode);
            let retry_topics = match retry_mode {
                RetryMode::Topics => {
                    (1..max_attempts).map(|n| topic_name(&c.retry.topic_pattern, &r.topic, &group, n)).collect()
                }
                RetryMode::InPlace => Vec::new(),
            };
            let dlt_on = o.dead_letter.unwrap_or(c.dead_letter.enabled);
            let dlt = dlt_on.then(|| {
                o.dead_letter_topic
                    .clone()
                    .or_else(|| c.dead_letter.topic.clone())
                    .unwrap_or_else(|| topic_name(&c.dead_letter.topic_pattern, &r.topic, &group, 0))
            });
            let counters = self.shared.stats.lock().map(|mut reg| reg.counters(&r.topic)).unwrap_or_default();
            let ctx = TopicCtx {
                topic: r.topic.as_str().into(),
                group: group.as_str().into(),
                handler: r.handler.clone(),
                ordering: o.ordering.unwrap_or(c.ordering),
                max_attempts,
                retry_mode,
                retry_backoff: c.retry.backoff.to_backoff(),
                retry_topics,
                dlt,
                dlt_backoff: c.dead_letter.retry_backoff.to_backoff(),
                batch_max: o.batch_max_records.unwrap_or(c.batch.max_records).max(1),
                batch_wait: o.batch_max_wait.unwrap_or(c.batch.max_wait),
                batch_scope: o.batch_scope.unwrap_or(c.batch.scope),
                writer: self.writer.clone(),
                tracked: self.shared.tracked.clone(),
                counters,
            };
            groups.entry(group).or_default().push(Arc::new(ctx));
        }
        Ok(groups)
    }

    /// Joins the group(s) and runs the handlers until SIGINT/SIGTERM (with
    /// `shutdown.signals`), [`ServiceHandle::shutdown`], a cancelled
    /// [`Service::shutdown_on`] token, a handler's [`Action::Stop`](crate::Action::Stop) or a
    /// fatal error. Then, within `shutdown.timeout`: stops fetching, lets in-flight handlers
    /// finish (up to `shutdown.drain_timeout`; rebalances meanwhile are handled), flushes the
    /// producers, commits, leaves the group (a static member does not) and closes the
    /// service's handles on the producers ([`Writer::close`]: a last flush within what is
    /// left of `shutdown.timeout`, at least 100 ms; a `Producer` clone the application
    /// still holds keeps its writer open). A second signal ([`ServiceHandle::force`]) ends
    /// it at once, closing nothing.
    ///
    /// # Errors
    /// [`Error::Invalid`] with no handler; [`Error::Settings`] without a group;
    /// [`Error::Stopped`] when a handler stopped it; [`Error::Kafka`] for a fatal client
    /// error; [`Error::OutputLost`] when a producer's delivery failed untold;
    /// [`Error::ShutdownTimeout`]; [`Error::Forced`].
    pub async fn run(self) -> Result<()> {
        if self.topics.is_empty() {
            return Err(Error::Invalid("no handler registered".into()));
        }
        let groups = self.contexts()?;
        let sh = self.shared.clone();
        let s = self.settings.clone();
        if s.shutdown.signals {
            tokio::spawn(crate::shutdown::listen_signals(sh.shutdown.token.clone(), sh.shutdown.forced.clone()));
        }
        tokio::spawn(ping_loop(self.cluster.clone(), sh.clone(), s.health.ping_interval, s.health.ping_timeout));
        #[cfg(feature = "http")]
        let http = match &s.health.listen {
            Some(addr) => Some(crate::health::http::serve(addr, self.control()).await?),
            None => None,
        };
        let mut members = tokio::task::JoinSet::new();
        for (group, ctxs) in groups {
            let mut rc = s.reader_config().map_err(Error::Settings)?;
            rc.group_id = Some(group.clone());
            for ctx in &ctxs {
                rc.group_topics.push(ctx.topic.to_string());
                rc.group_topics.extend(ctx.retry_topics.iter().cloned());
            }
            rc.group_topics.sort();
            rc.group_topics.dedup();
            // A cluster client of its own per membership: a JoinGroup waits on its
            // coordinator connection for the whole rebalance, and another group's heartbeats
            // must not queue behind it.
            let reader = Reader::new(&s.brokers(), rc).await?;
            let m = member::Member::new(group, reader, ctxs, &s, sh.clone());
            members.spawn(m.run());
        }
        let timeout = s.shutdown.timeout;
        let mut deadline: Option<tokio::time::Instant> = None;
        let outcome: Result<()> = loop {
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = members.join_next() => match r {
                    None => break Ok(()),
                    Some(Err(e)) if e.is_panic() => {
                        sh.shutdown.fail(Error::Invalid(format!("a member task panicked: {e}")));
                    }
                    Some(_) => {}
                },
                _ = sh.shutdown.token.cancelled(), if deadline.is_none() => {
                    sh.shutdown.advance(Phase::Draining);
                    deadline = Some(tokio::time::Instant::now() + timeout);
                }
                _ = sh.shutdown.forced.cancelled() => {
                    members.abort_all();
                    break Err(Error::Forced);
                }
                _ = until_deadline => {
                    members.abort_all();
                    break Err(Error::ShutdownTimeout(timeout));
                }
            }
        };
        if !matches!(outcome, Err(Error::Forced)) {
            sh.advance_leaving();
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(tokio::time::Instant::now()));
            sh.close_producers(left.max(Duration::from_millis(100))).await;
        }
        sh.shutdown.advance(Phase::Stopped);
        #[cfg(feature = "http")]
        if let Some(h) = http {
            h.abort();
        }
        match (outcome, sh.shutdown.take_cause()) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(cause)) => Err(cause),
            (Ok(()), None) => Ok(()),
        }
    }
}

impl Shared {
    fn advance_leaving(&self) {
        self.shutdown.advance(Phase::Leaving);
    }

    /// Closes the service's handles on its producers ([`Writer::close`]: a last flush,
    /// within `limit` each), once the members are done with them. A writer stops when its
    /// last clone is closed or dropped: a `Producer` the application still holds keeps its
    /// writer going.
    async fn close_producers(&self, limit: Duration) {
        let outputs: Vec<Output> = self.producers.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        for o in outputs {
            match tokio::time::timeout(limit, o.writer.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "closing a producer failed"),
                Err(_) => tracing::warn!(?limit, "a producer did not flush within the shutdown's time left"),
            }
        }
    }
}

/// Pings the cluster for `Health::connected`.
async fn ping_loop(cluster: Cluster, sh: Arc<Shared>, every: Duration, timeout: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = sh.shutdown.token.cancelled() => return,
        }
        let r = cluster.ping(timeout).await.map(|_| ()).map_err(|e| e.to_string());
        if let Ok(mut p) = sh.ping.lock() {
            *p = Some(r);
        }
    }
}
