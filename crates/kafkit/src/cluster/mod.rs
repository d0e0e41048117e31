//! The cluster client: what the `Writer`, `Reader` and admin `Client` stand on.
//!
//! A [`Cluster`] bootstraps from a list of brokers, keeps a metadata snapshot (refreshed
//! periodically, on demand, and when an error says it is stale), keeps one connection per
//! broker per [`Workload`] so a long-poll fetch never delays a produce, routes requests to
//! the partition leader, any broker, the controller or a coordinator, and retries retriable
//! errors with exponential backoff and jitter.

mod backoff;

pub use backoff::{Backoff, DEFAULT_RETRY_BACKOFF, DEFAULT_RETRY_BACKOFF_MAX};

use crate::error::{Error, Result};
use crate::message::Broker;
use crate::net::{Conn, Dialer};
use kafkit_protocol::messages::{FindCoordinatorRequest, MetadataResponse};
use kafkit_protocol::{ApiKey, ErrorCode, Uuid};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Default [`ClusterConfig::metadata_max_age`]: 5 minutes (Java `metadata.max.age.ms`).
pub const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(300);
/// Default [`ClusterConfig::retry_timeout`]: 60 s (Java `default.api.timeout.ms`).
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a connection is for. Each broker gets one connection per workload, so requests of
/// one kind never wait behind another's (franz-go's split): a Fetch that long-polls for
/// `max_wait` does not hold up a Produce to the same broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// Produce and transaction requests.
    Produce,
    /// The Produce requests of a writer's further connection `n` (1 and up) to a broker,
    /// for the partitions it gives that connection (see
    /// [`WriterConfig::produce_concurrency`](crate::WriterConfig::produce_concurrency)).
    ProduceLane(u16),
    /// Fetch and ListOffsets.
    Fetch,
    /// The fetches of a reader's further fetch task `n` (1 and up) to a broker, each on its
    /// own connection: a broker handles one connection's requests one at a time, so one
    /// task's long poll never holds up another's (see
    /// [`ReaderConfig::fetch_concurrency`](crate::ReaderConfig::fetch_concurrency)).
    FetchLane(u16),
    /// Group membership: JoinGroup (which blocks for a rebalance), SyncGroup, Heartbeat,
    /// commits.
    Group,
    /// Metadata and admin requests.
    Admin,
}

/// Settings of a [`Cluster`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClusterConfig {
    /// How connections are made.
    pub dialer: Dialer,
    /// Metadata is refreshed at least this often. Default [`DEFAULT_METADATA_MAX_AGE`].
    pub metadata_max_age: Duration,
    /// Backoff between retries. Default [`Backoff::default`] (100 ms doubling to 1 s, 20%
    /// jitter).
    pub backoff: Backoff,
    /// [`Cluster::retry`] gives up after this long. Default [`DEFAULT_RETRY_TIMEOUT`].
    pub retry_timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            dialer: Dialer::new(),
            metadata_max_age: DEFAULT_METADATA_MAX_AGE,
            backoff: Backoff::default(),
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
        }
    }
}

/// One partition in the metadata snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition id.
    pub id: i32,
    /// Node id of the partition leader (-1 when there is none).
    pub leader: i32,
    /// The partition leader's epoch (-1 when unknown).
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// The partition's error, if the broker reported one.
    pub error: Option<ErrorCode>,
}

/// One topic in the metadata snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Name.
    pub name: String,
    /// Topic id (zero when the broker does not send one, Metadata v9 and below).
    pub id: Uuid,
    /// The topic's error, if the broker reported one.
    pub error: Option<ErrorCode>,
    /// Partitions, by id.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    /// Partition `id`, if the topic has it.
    pub fn partition(&self, id: i32) -> Option<&PartitionMetadata> {
        self.partitions.iter().find(|p| p.id == id)
    }
}

/// A snapshot of the cluster's metadata.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Cluster id (Metadata v2+).
    pub cluster_id: Option<String>,
    /// The controller's node id (-1 when unknown).
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, Broker>,
    /// Topics by name (those asked for so far, or all after a full refresh).
    pub topics: BTreeMap<String, TopicMetadata>,
    /// Topics whose last metadata was malformed, with the broker that sent it and what was
    /// wrong (see [`Metadata::malformed`]).
    malformed: BTreeMap<String, (String, String)>,
}

impl Metadata {
    /// Partition `id` of `topic`, if the snapshot has it.
    pub fn partition(&self, topic: &str, id: i32) -> Option<&PartitionMetadata> {
        self.topics.get(topic)?.partition(id)
    }

    /// Why `topic` of the last Metadata response cannot be used ([`Error::Malformed`]), if
    /// it could not: such a topic is left out of [`Metadata::topics`].
    pub fn malformed(&self, topic: &str) -> Option<Error> {
        self.malformed.get(topic).map(|(broker, what)| Error::Malformed { broker: broker.clone(), what: what.clone() })
    }

    /// The snapshot with `resp` (from broker `addr`) merged in: every topic it names
    /// replaces the one known (all topics when `full`). A topic whose partition ids are not
    /// exactly 0 to n-1, each once ([`check_partition_ids`]), is not taken: it is recorded
    /// as malformed, and its other topics are taken as usual.
    pub(crate) fn merge(&self, addr: &str, resp: &MetadataResponse, full: bool) -> Metadata {
        let code = |c: i16| (c != 0).then(|| ErrorCode::from_code(c));
        let mut topics = if full { BTreeMap::new() } else { self.topics.clone() };
        let mut malformed = if full { BTreeMap::new() } else { self.malformed.clone() };
        for t in &resp.topics {
            let Some(name) = t.name.clone() else { continue };
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    id: p.partition_index,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    error: code(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            if let Err(what) = check_partition_ids(&name, partitions.iter().map(|p| p.id)) {
                tracing::warn!(broker = addr, topic = %name, %what, "malformed topic metadata left out");
                topics.remove(&name);
                malformed.insert(name, (addr.to_string(), what));
                continue;
            }
            malformed.remove(&name);
            topics.insert(name.clone(), TopicMetadata { name, id: t.topic_id, error: code(t.error_code), partitions });
        }
        Metadata {
            cluster_id: resp.cluster_id.clone(),
            controller_id: resp.controller_id,
            brokers: resp
                .brokers
                .iter()
                .map(|b| {
                    (b.node_id, Broker { id: b.node_id, host: b.host.clone(), port: b.port, rack: b.rack.clone() })
                })
                .collect(),
            topics,
            malformed,
        }
    }
}

/// Checks a topic's partition ids, in ascending order, as a Metadata response gives them:
/// Kafka numbers a topic's `n` partitions 0 to n-1, so anything else (a negative, huge,
/// repeated or missing id) is malformed. Everything indexed by partition id can then rely
/// on ids below the partition count, which the bytes received bound. Returns what is
/// wrong, naming the topic.
pub(crate) fn check_partition_ids(
    topic: &str,
    sorted_ids: impl Iterator<Item = i32>,
) -> std::result::Result<(), String> {
    for (i, id) in sorted_ids.enumerate() {
        if i64::from(id) != i as i64 {
            let why = if id < 0 {
                "negative"
            } else if i64::from(id) < i as i64 {
                "listed twice"
            } else {
                "not numbered densely from 0"
            };
            return Err(format!("topic {topic}: partition id {id} is {why} (expected {i})"));
        }
    }
    Ok(())
}

type Slot = Arc<tokio::sync::Mutex<Option<Conn>>>;

/// A broker with a request unanswered this long, and nothing else heard from it, is asked
/// for metadata after the others.
pub(crate) const SILENT: Duration = Duration::from_secs(1);

/// How long one broker is given to answer a metadata refresh before the next is asked.
const METADATA_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

struct Inner {
    config: ClusterConfig,
    seeds: Vec<String>,
    meta: RwLock<Arc<Metadata>>,
    /// Bumped each time `meta` is replaced, so callers can cache what they derive from it.
    meta_generation: std::sync::atomic::AtomicU64,
    refreshed: Mutex<Instant>,
    refresh_lock: tokio::sync::Mutex<()>,
    conns: Mutex<HashMap<(i32, Workload), Slot>>,
    seed_conn: tokio::sync::Mutex<Option<Conn>>,
    /// Connections made (see `Cluster::dials`).
    dials: std::sync::atomic::AtomicU64,
}

/// A Kafka cluster: metadata, connections and routing. A cheap `Clone` (an `Arc`).
///
/// ```no_run
/// # async fn run() -> kafkit::Result<()> {
/// use kafkit::cluster::{Cluster, ClusterConfig, Workload};
///
/// let cluster = Cluster::connect(&["localhost:9092"], ClusterConfig::default()).await?;
/// let (conn, partition) = cluster.leader("orders", 0, Workload::Produce).await?;
/// println!("partition 0 of orders is led by node {} at {}", partition.leader, conn.addr());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("seeds", &self.inner.seeds).finish()
    }
}

/// The metadata of `topic`/`partition` when it has a partition leader: else the retriable
/// `UNKNOWN_TOPIC_OR_PARTITION` when the metadata lacks it, or its error (else
/// `LEADER_NOT_AVAILABLE`) when it has no leader now.
pub(crate) fn with_leader<'a>(
    topic: &str,
    partition: i32,
    p: Option<&'a PartitionMetadata>,
) -> Result<&'a PartitionMetadata> {
    let p = p.ok_or_else(|| Error::Broker {
        code: ErrorCode::UnknownTopicOrPartition,
        context: format!("{topic}/{partition} is not in the metadata"),
        message: None,
    })?;
    if p.leader < 0 {
        return Err(Error::Broker {
            code: p.error.unwrap_or(ErrorCode::LeaderNotAvailable),
            context: format!("{topic}/{partition} has no leader"),
            message: None,
        });
    }
    Ok(p)
}

/// Errors after which metadata is refreshed before the next try: the partition leader, the
/// topic or the broker changed (Java `InvalidMetadataException` and its kin).
fn calls_for_refresh(e: &Error) -> bool {
    match e {
        Error::Connect { .. } | Error::ConnectTimeout { .. } | Error::ConnectionClosed { .. } => true,
        // The connection closed with it; the broker may be gone from the cluster.
        Error::RequestTimeout { .. } => true,
        Error::Broker { code, .. } => matches!(
            code,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NotController
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::KafkaStorageError
                | ErrorCode::UnknownTopicId
                | ErrorCode::InconsistentTopicId
                | ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::BrokerNotAvailable
                | ErrorCode::ReplicaNotAvailable
        ),
        _ => false,
    }
}

impl Cluster {
    /// Connects to the first of `seeds` that answers (`host:port` each) and reads the
    /// cluster's metadata. A background task refreshes it every
    /// [`ClusterConfig::metadata_max_age`] until the last clone is dropped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no seeds; otherwise the last seed's error.
    pub async fn connect(seeds: &[&str], config: ClusterConfig) -> Result<Cluster> {
        if seeds.is_empty() {
            return Err(Error::InvalidArgument("no bootstrap brokers".into()));
        }
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                seeds: seeds.iter().map(|s| s.to_string()).collect(),
                meta: RwLock::new(Arc::new(Metadata::default())),
                meta_generation: std::sync::atomic::AtomicU64::new(0),
                refreshed: Mutex::new(Instant::now()),
                refresh_lock: tokio::sync::Mutex::new(()),
                conns: Mutex::new(HashMap::new()),
                seed_conn: tokio::sync::Mutex::new(None),
                dials: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        cluster.refresh_metadata(None).await?;
        let weak = Arc::downgrade(&cluster.inner);
        let every = cluster.inner.config.metadata_max_age;
        tokio::spawn(periodic_refresh(weak, every));
        Ok(cluster)
    }

    /// The settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The brokers this cluster knows, comma-separated: the metadata's (`host:port`), then
    /// the seeds not among them; for [`Error::NoBrokerReachable`].
    pub(crate) fn broker_list(&self) -> String {
        let mut addrs: Vec<String> = self.metadata().brokers.values().map(Broker::addr).collect();
        for s in &self.inner.seeds {
            if !addrs.contains(s) {
                addrs.push(s.clone());
            }
        }
        addrs.join(",")
    }

    /// How many times the metadata snapshot was replaced: what was derived from
    /// [`Cluster::metadata`] is current while this has not changed.
    pub fn metadata_generation(&self) -> u64 {
        self.inner.meta_generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<Metadata> {
        self.inner.meta.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Reads metadata for `topics` (all topics when `None`) and replaces the snapshot
    /// (merging topics when only some were asked for). Concurrent calls wait for one another
    /// rather than all hitting the broker.
    ///
    /// # Errors
    /// As [`Conn::request`], from the last broker tried.
    pub async fn refresh_metadata(&self, topics: Option<&[&str]>) -> Result<Arc<Metadata>> {
        let started = Instant::now();
        let _guard = self.inner.refresh_lock.lock().await;
        // A full refresh that finished while this one waited serves it too.
        if topics.is_none() && self.inner.refreshed.lock().map(|t| *t > started).unwrap_or(false) {
            return Ok(self.metadata());
        }
        // A live broker answers Metadata at once; one that does not (frozen, cut off) is
        // passed over for the next after this long rather than waited for the whole request
        // timeout, and asked last the next time (its connection is silent then).
        let limit = self.inner.config.dialer.request_timeout().min(METADATA_ATTEMPT_TIMEOUT);
        let ids = self.brokers_by_silence();
        let mut last_err = None;
        // Each known broker in turn (through its admin connection), then a seed.
        for id in ids.into_iter().map(Some).chain([None]) {
            let attempt = tokio::time::timeout(limit, async {
                let conn = match id {
                    Some(id) => self.broker(id, Workload::Admin).await?,
                    None => self.seed().await?,
                };
                let resp = conn.metadata(topics).await;
                if let Err(e) = &resp {
                    tracing::debug!(addr = conn.addr(), error = %e, "metadata request failed");
                }
                resp.map(|r| (conn.addr().to_string(), r))
            })
            .await;
            match attempt {
                Ok(Ok((addr, resp))) => {
                    let merged = Arc::new(self.metadata().merge(&addr, &resp, topics.is_none()));
                    if let Ok(mut m) = self.inner.meta.write() {
                        *m = merged.clone();
                        self.inner.meta_generation.fetch_add(1, std::sync::atomic::Ordering::Release);
                    }
                    if topics.is_none() {
                        if let Ok(mut t) = self.inner.refreshed.lock() {
                            *t = Instant::now();
                        }
                    }
                    return Ok(merged);
                }
                Ok(Err(e)) => last_err = Some(e),
                Err(_) => {
                    let what = id.map_or("a seed".to_string(), |id| format!("broker {id}"));
                    tracing::debug!(broker = %what, timeout = ?limit, "no metadata in time; asking the next");
                    last_err = Some(Error::RequestTimeout { addr: what, api: ApiKey::Metadata, timeout: limit });
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::NoBrokerReachable {
            brokers: self.broker_list(),
            last: "no connection to a broker or seed could be had".into(),
        }))
    }

    /// The seed connection, dialed (first seed that answers) when there is none.
    async fn seed(&self) -> Result<Conn> {
        let mut seed = self.inner.seed_conn.lock().await;
        if let Some(c) = seed.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *seed = None;
        let mut last_err = None;
        for s in &self.inner.seeds {
            match self.dial(s).await {
                Ok(c) => {
                    *seed = Some(c.clone());
                    return Ok(c);
                }
                Err(e) => {
                    tracing::debug!(seed = s, error = %e, "seed broker unreachable");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::NoBrokerReachable { brokers: String::new(), last: "no seeds".into() }))
    }

    /// How broker `id` has been answering, for choosing whom to ask (least first): whether
    /// its admin connection has a request waiting unanswered for [`SILENT`], then how long
    /// its longest-silent Produce or Fetch connection has waited (a Fetch's `max_wait` not
    /// counted: see [`Conn::set_hold`]).
    fn silence(&self, id: i32) -> (bool, Duration) {
        let slots: Vec<(Workload, Slot)> = match self.inner.conns.lock() {
            Ok(c) => c
                .iter()
                .filter(|((n, w), _)| *n == id && !matches!(w, Workload::Group))
                .map(|((_, w), s)| (*w, s.clone()))
                .collect(),
            Err(_) => return (false, Duration::ZERO),
        };
        let mut admin = false;
        let mut data = Duration::ZERO;
        for (w, s) in slots {
            let Some(d) = s.try_lock().ok().and_then(|g| g.as_ref().and_then(Conn::silent_for)) else { continue };
            if w == Workload::Admin {
                admin |= d >= SILENT;
            } else {
                data = data.max(d);
            }
        }
        (admin, data)
    }

    /// The ids of the brokers of the metadata, those that have been answering first (see
    /// [`Cluster::silence`]).
    fn brokers_by_silence(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.metadata().brokers.keys().copied().collect();
        ids.sort_by_key(|id| self.silence(*id));
        ids
    }

    /// Runs `op` on a connection for `workload` to one broker after another, those that
    /// have been answering first, until one answers: a broker that fails to connect, closes
    /// the connection or does not answer within [`METADATA_ATTEMPT_TIMEOUT`] (at most the
    /// request timeout) is passed over for the next. A broker's answer, error codes
    /// included, is returned.
    ///
    /// # Errors
    /// The last broker's error; [`Error::NoBrokerReachable`] when the metadata lists none.
    pub(crate) async fn on_any_broker<T, F, Fut>(&self, workload: Workload, api: ApiKey, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let limit = self.inner.config.dialer.request_timeout().min(METADATA_ATTEMPT_TIMEOUT);
        let mut last = None;
        for id in self.brokers_by_silence() {
            let attempt = tokio::time::timeout(limit, async { op(self.broker(id, workload).await?).await }).await;
            match attempt {
                Ok(Err(e)) if e.is_retriable() && e.error_code().is_none() => last = Some(e),
                Ok(r) => return r,
                Err(_) => {
                    tracing::debug!(broker = id, timeout = ?limit, "no answer in time; asking the next broker");
                    let addr = self.metadata().brokers.get(&id).map_or_else(|| format!("broker {id}"), Broker::addr);
                    last = Some(Error::RequestTimeout { addr, api, timeout: limit });
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::NoBrokerReachable {
            brokers: self.broker_list(),
            last: "the metadata lists no broker".into(),
        }))
    }

    /// The metadata of `topic`, from the snapshot or, when missing, from a refresh.
    ///
    /// # Errors
    /// The topic's error code (such as `UNKNOWN_TOPIC_OR_PARTITION`) as [`Error::Broker`];
    /// [`Error::Malformed`] when the broker's metadata of the topic is unusable (partition
    /// ids that are not 0 to n-1, each once).
    pub async fn topic(&self, topic: &str) -> Result<TopicMetadata> {
        if let Some(t) = self.metadata().topics.get(topic).filter(|t| t.error.is_none()) {
            return Ok(t.clone());
        }
        let m = self.refresh_metadata(Some(&[topic])).await?;
        if let Some(e) = m.malformed(topic) {
            return Err(e);
        }
        let t = m.topics.get(topic).cloned().ok_or_else(|| Error::Broker {
            code: ErrorCode::UnknownTopicOrPartition,
            context: format!("metadata for topic {topic}"),
            message: None,
        })?;
        if let Some(code) = t.error {
            return Err(Error::Broker { code, context: format!("metadata for topic {topic}"), message: None });
        }
        Ok(t)
    }

    /// The connection for `workload` to broker `node_id`, dialed when there is none or the
    /// last one closed.
    ///
    /// # Errors
    /// `BROKER_NOT_AVAILABLE` for a node the metadata does not list; as [`Dialer::dial`].
    pub async fn broker(&self, node_id: i32, workload: Workload) -> Result<Conn> {
        let broker = self.metadata().brokers.get(&node_id).cloned().ok_or_else(|| Error::Broker {
            code: ErrorCode::BrokerNotAvailable,
            context: format!("broker {node_id} is not in the metadata"),
            message: None,
        })?;
        let slot = {
            let mut conns = self.inner.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.entry((node_id, workload)).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| !c.is_closed() && c.addr() == broker.addr()) {
            return Ok(c.clone());
        }
        let conn = self.dial(&broker.addr()).await?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// The open connection for `workload` to broker `node_id`, if there is one; never dials
    /// (nor waits for a dial under way).
    pub(crate) fn connected(&self, node_id: i32, workload: Workload) -> Option<Conn> {
        let addr = self.metadata().brokers.get(&node_id)?.addr();
        let slot = self.inner.conns.lock().ok()?.get(&(node_id, workload))?.clone();
        let guard = slot.try_lock().ok()?;
        guard.as_ref().filter(|c| !c.is_closed() && c.addr() == addr).cloned()
    }

    /// A connection to any live broker, for requests any broker can answer: those that have
    /// been answering are tried first.
    ///
    /// # Errors
    /// As [`Cluster::broker`], from the last broker tried; [`Error::NoBrokerReachable`] when
    /// the metadata lists none.
    pub async fn any_broker(&self, workload: Workload) -> Result<Conn> {
        let mut last = None;
        for id in self.brokers_by_silence() {
            match self.broker(id, workload).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NoBrokerReachable {
            brokers: self.broker_list(),
            last: "the metadata lists no broker".into(),
        }))
    }

    /// The connection to the partition leader of `topic`/`partition`, with that partition's
    /// metadata.
    ///
    /// # Errors
    /// The topic's or partition's error code; `LEADER_NOT_AVAILABLE` when the partition has
    /// no leader now; as [`Cluster::broker`]. All are retriable through [`Cluster::retry`],
    /// which refreshes the metadata first.
    pub async fn leader(&self, topic: &str, partition: i32, workload: Workload) -> Result<(Conn, PartitionMetadata)> {
        let t = self.topic(topic).await?;
        let p = with_leader(topic, partition, t.partition(partition))?.clone();
        Ok((self.broker(p.leader, workload).await?, p))
    }

    /// The connection to the controller, for requests that must go there.
    ///
    /// # Errors
    /// `BROKER_NOT_AVAILABLE` when the metadata names no controller; as [`Cluster::broker`].
    pub async fn controller(&self, workload: Workload) -> Result<Conn> {
        let id = self.metadata().controller_id;
        if id < 0 {
            return Err(Error::Broker {
                code: ErrorCode::BrokerNotAvailable,
                context: "the metadata names no controller".into(),
                message: None,
            });
        }
        self.broker(id, workload).await
    }

    /// The connection to the coordinator of a consumer group or a transactional id, found
    /// with FindCoordinator.
    ///
    /// # Errors
    /// The coordinator error code (`COORDINATOR_NOT_AVAILABLE`, `NOT_COORDINATOR`, ... all
    /// retriable) as [`Error::Broker`]; as [`Cluster::broker`]; [`Error::RequestTimeout`]
    /// when no broker answers FindCoordinator within 5 s (each is asked in turn, those that
    /// have been answering first).
    pub async fn coordinator(&self, key: &str, kind: CoordinatorType, workload: Workload) -> Result<Conn> {
        let (v, resp) = self
            .on_any_broker(Workload::Admin, ApiKey::FindCoordinator, |conn| async move {
                let v = conn.version_for::<FindCoordinatorRequest>()?;
                let req = FindCoordinatorRequest::default().with_key_type(kind.key_type());
                let req = if v.0 >= 4 {
                    req.with_coordinator_keys(vec![key.to_string()])
                } else {
                    req.with_key(key.to_string())
                };
                Ok((v, conn.request_version(&req, v).await?))
            })
            .await?;
        let (code, msg, node, host, port) = match resp.coordinators.first() {
            Some(c) if v.0 >= 4 => (c.error_code, c.error_message.clone(), c.node_id, c.host.clone(), c.port),
            _ => (resp.error_code, resp.error_message.clone(), resp.node_id, resp.host.clone(), resp.port),
        };
        Error::check(code, msg.as_deref(), || format!("finding the coordinator of {key}"))?;
        if !self.metadata().brokers.contains_key(&node) {
            // A broker the snapshot does not know yet: learn it.
            self.refresh_metadata(None).await?;
        }
        match self.broker(node, workload).await {
            Ok(c) => Ok(c),
            Err(_) => self.dial(&format!("{host}:{port}")).await,
        }
    }

    /// A health check (kafkax's `Ping`): within `timeout`, opens a new connection to a broker
    /// of the metadata (else to a seed) with the cluster's dialer (TCP, TLS and SASL as
    /// configured, then ApiVersions), sends Metadata for no topic, and closes the connection.
    /// Nothing cached is used, so a broker that stopped answering, refuses the credentials or
    /// lost its listener fails the ping even while old connections linger.
    ///
    /// # Errors
    /// [`Error::ConnectTimeout`] when no connection (with its TLS, ApiVersions and SASL
    /// exchanges) was made within `timeout`; [`Error::RequestTimeout`] when Metadata was not answered in what was left of
    /// it; otherwise the last broker's error from [`Dialer::dial`] or [`Conn::request`];
    /// [`Error::NoBrokerReachable`] when there is no broker or seed to try.
    pub async fn ping(&self, timeout: Duration) -> Result<Ping> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut addrs: Vec<String> = self.metadata().brokers.values().map(Broker::addr).collect();
        addrs.extend(self.inner.seeds.iter().cloned());
        let mut last = None;
        for addr in addrs {
            let conn = match tokio::time::timeout_at(deadline, self.dial(&addr)).await {
                Err(_) => return Err(Error::ConnectTimeout { addr, timeout }),
                Ok(Err(e)) => {
                    last = Some(e);
                    continue;
                }
                Ok(Ok(c)) => c,
            };
            let resp = tokio::time::timeout_at(deadline, conn.metadata(Some(&[]))).await;
            conn.close();
            return match resp {
                Err(_) => Err(Error::RequestTimeout { addr, api: ApiKey::Metadata, timeout }),
                Ok(Err(e)) => Err(e),
                Ok(Ok(m)) => Ok(Ping {
                    addr,
                    brokers: m.brokers.len(),
                    controller_id: m.controller_id,
                    cluster_id: m.cluster_id,
                    elapsed: started.elapsed(),
                }),
            };
        }
        Err(last.unwrap_or_else(|| Error::NoBrokerReachable {
            brokers: self.broker_list(),
            last: "no broker or seed to ping".into(),
        }))
    }

    /// Connections this cluster has made so far, to seeds and brokers (kafka-go's
    /// `WriterStats.Dials` and `ReaderStats.Dials`).
    pub fn dials(&self) -> u64 {
        self.inner.dials.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn dial(&self, addr: &str) -> Result<Conn> {
        let conn = self.inner.config.dialer.dial(addr).await?;
        self.inner.dials.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(conn)
    }

    /// Runs `op` until it succeeds, fails with an error that is not retriable, or
    /// [`ClusterConfig::retry_timeout`] has passed, sleeping [`ClusterConfig::backoff`]
    /// between tries and refreshing the metadata first when the error says it is stale
    /// (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, a lost
    /// connection, ...). Returns the last error.
    ///
    /// # Cancellation
    /// Dropping the future stops retrying; a try in flight is dropped as [`Conn::request`]
    /// describes.
    ///
    /// # Errors
    /// The last error `op` returned.
    pub async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.inner.config.retry_timeout;
        let mut attempt = 0u32;
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let wait = self.inner.config.backoff.delay(attempt);
            if !err.is_retriable() || Instant::now() + wait >= deadline {
                return Err(err);
            }
            tracing::debug!(attempt, error = %err, ?wait, "retrying");
            tokio::time::sleep(wait).await;
            if calls_for_refresh(&err) {
                if let Err(e) = self.refresh_metadata(None).await {
                    tracing::debug!(error = %e, "metadata refresh before retry failed");
                }
            }
            attempt += 1;
        }
    }
}

async fn periodic_refresh(cluster: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = cluster.upgrade() else { return };
        let c = Cluster { inner };
        if let Err(e) = c.refresh_metadata(None).await {
            tracing::debug!(error = %e, "periodic metadata refresh failed");
        }
    }
}

/// What [`Cluster::ping`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// The broker that answered (`host:port`).
    pub addr: String,
    /// Brokers its Metadata response listed.
    pub brokers: usize,
    /// The controller's node id it named (-1 when unknown).
    pub controller_id: i32,
    /// The cluster id (Metadata v2+).
    pub cluster_id: Option<String>,
    /// Connect, ApiVersions (and TLS, SASL) and Metadata, together.
    pub elapsed: Duration,
}

/// What a coordinator coordinates (FindCoordinator's `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordinatorType {
    /// A consumer group (key: the group id).
    Group,
    /// A transactional producer (key: the transactional id).
    Transaction,
}

impl CoordinatorType {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }
}
