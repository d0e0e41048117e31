//! The `Reader`: one partition (kafka-go's `Reader` without a `GroupID`) or a consumer
//! group's share of one or more topics (with a `GroupID`).

use super::assignor::{default_assignors, Assignor, TopicPartition};
use super::engine::{list_offset, resolve_start, Engine, FetchSettings};
use super::group::{Cmd, Group, GroupSettings, Membership, RebalanceEvent, Shared as GroupShared};
use crate::cluster::{Cluster, ClusterConfig};
use crate::error::{Error, Result};
use crate::message::{to_millis, Message};
use crate::net::IsolationLevel;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// Default [`ReaderConfig::max_wait`]: 500 ms (Java `fetch.max.wait.ms`).
pub const DEFAULT_READER_MAX_WAIT: Duration = Duration::from_millis(500);
/// Default [`ReaderConfig::max_bytes`]: 1 MiB per fetch (kafka-go `MaxBytes`).
pub const DEFAULT_READER_MAX_BYTES: i32 = 1 << 20;
/// Default [`ReaderConfig::fetch_max_bytes`]: 50 MiB per fetch over all partitions (Java
/// `fetch.max.bytes`).
pub const DEFAULT_FETCH_MAX_BYTES: i32 = 50 << 20;
/// Default [`ReaderConfig::fetch_concurrency`]: 2 fetches in flight per partition leader.
/// On Apache Kafka 4.4, 2 sent half the Fetch requests of 3 for the same records, at the
/// same throughput and less broker CPU (DESIGN.md, "Measured"); 1 (the Java consumer's and
/// librdkafka's way) sends half the Fetch requests of 2 but reads slower: 200k x 1 KiB at
/// 1,004k/s against 1,267k/s uncompressed, 956k/s against 1,007k/s lz4 (DESIGN.md, "The
/// fetch path").
pub const DEFAULT_FETCH_CONCURRENCY: usize = 2;
/// Default [`ReaderConfig::prefetch_bytes`]: 8 MiB of fetched, unread messages. On Apache
/// Kafka 4.4 it read 1M records of 100 B at 3.19M/s in 27.1 MiB of RSS, where 16 MiB read
/// 3.50M/s in 37.4 MiB (DESIGN.md, "Consumer memory: responses counted").
pub const DEFAULT_PREFETCH_BYTES: usize = 8 << 20;
/// Default [`ReaderConfig::session_timeout`]: 45 s (Java `session.timeout.ms`).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// Default [`ReaderConfig::heartbeat_interval`]: 3 s (Java `heartbeat.interval.ms`, kafka-go
/// `HeartbeatInterval`).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// Default [`ReaderConfig::rebalance_timeout`]: 30 s (kafka-go `RebalanceTimeout`; JoinGroup
/// v1+ `rebalance_timeout_ms`).
pub const DEFAULT_REBALANCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default interval of [`CommitMode::Interval`]: 5 s (Java `auto.commit.interval.ms`).
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(5);
/// Default [`ReaderConfig::partition_watch_interval`]: 5 s (kafka-go `PartitionWatchInterval`).
pub const DEFAULT_PARTITION_WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// Default [`ReaderConfig::close_timeout`]: 5 s.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// When a group reader commits what [`Reader::read_message`] returned. Messages taken
/// with [`Reader::fetch_message`] are committed only by [`Reader::commit_messages`], in
/// every mode.
///
/// In every mode a commit covers only messages the application has been given: the offset
/// committed for a partition is the one after the last message returned from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// Every `read_message` first commits what the previous calls returned, waiting for the
    /// coordinator: one round trip per message (kafka-go's `CommitInterval` 0). kafka-go
    /// commits a message before returning it, so a crash while handling it loses it; here it
    /// is committed at the next read, so a crash redelivers it instead.
    OnRead,
    /// A background commit of what `read_message` returned, this often, and on rebalance
    /// and close (Java `enable.auto.commit` with `auto.commit.interval.ms`; kafka-go
    /// `CommitInterval`). The default, every [`DEFAULT_COMMIT_INTERVAL`].
    Interval(Duration),
}

impl Default for CommitMode {
    fn default() -> Self {
        CommitMode::Interval(DEFAULT_COMMIT_INTERVAL)
    }
}

/// Where a reader starts (kafka-go `StartOffset`); in a group, where a partition with no
/// committed offset starts (Java `auto.offset.reset` for new groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartOffset {
    /// The first offset still in the log. The default (kafka-go `FirstOffset`).
    #[default]
    First,
    /// The end of the log: only messages written from now on (kafka-go `LastOffset`).
    Last,
    /// This offset.
    At(i64),
}

/// What to do when the broker says the offset to read is out of range (it was deleted by
/// retention, or is past the end): Java `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Continue from the first offset still in the log. The default: nothing still in the
    /// log is skipped.
    #[default]
    Earliest,
    /// Continue from the end of the log.
    Latest,
    /// Fail the read with the broker's `OFFSET_OUT_OF_RANGE`, and every later read until the
    /// partition is sought (see [`Reader`]'s Errors).
    Fail,
}

/// Settings of a [`Reader`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ReaderConfig {
    /// Connections, metadata, retry backoff.
    pub cluster: ClusterConfig,
    /// The topic (partition mode; in group mode it is added to [`ReaderConfig::group_topics`]).
    pub topic: String,
    /// The partition (partition mode).
    pub partition: i32,
    /// Several partitions to read without a group (Java `KafkaConsumer::assign`); when not
    /// empty, `topic` and `partition` are ignored. Set with [`ReaderConfig::assign`].
    /// Default empty.
    pub partitions: Vec<TopicPartition>,
    /// The consumer group (kafka-go `GroupID`). Set, the reader joins the group and reads
    /// the partitions the group assigns it. Default none (partition mode).
    pub group_id: Option<String>,
    /// The topics a group reader subscribes to (kafka-go `GroupTopics`).
    pub group_topics: Vec<String>,
    /// The group instance id of a static member (KIP-345, Java `group.instance.id`): a
    /// member that restarts within the session timeout with the same id gets its partitions
    /// back without a rebalance. A static member does not leave the group on close. Default
    /// none. Needs JoinGroup v5+.
    pub group_instance_id: Option<String>,
    /// How long the coordinator waits for a heartbeat before dropping the member (Java
    /// `session.timeout.ms`). Default [`DEFAULT_SESSION_TIMEOUT`].
    pub session_timeout: Duration,
    /// How often the member heartbeats (Java `heartbeat.interval.ms`); keep it well below
    /// the session timeout. Default [`DEFAULT_HEARTBEAT_INTERVAL`].
    pub heartbeat_interval: Duration,
    /// How long the coordinator waits for every member to rejoin in a rebalance, and how
    /// long the reader waits for the application to handle a revocation. Default
    /// [`DEFAULT_REBALANCE_TIMEOUT`].
    pub rebalance_timeout: Duration,
    /// The assignors offered, in order of preference; the group uses the first all members
    /// offer. Default range, then round-robin (kafka-go's default). For incremental
    /// rebalancing use [`CooperativeStickyAssignor`](crate::consumer::CooperativeStickyAssignor).
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// When [`Reader::read_message`] commits. Default [`CommitMode::Interval`] every
    /// [`DEFAULT_COMMIT_INTERVAL`].
    pub commit: CommitMode,
    /// How often the group leader checks the topics for new partitions, and rebalances when
    /// there are (kafka-go `PartitionWatchInterval`). Default
    /// [`DEFAULT_PARTITION_WATCH_INTERVAL`].
    pub partition_watch_interval: Duration,
    /// How long [`Reader::close`] may take to commit and leave the group. Default
    /// [`DEFAULT_CLOSE_TIMEOUT`].
    pub close_timeout: Duration,
    /// Where to start (partition mode), or where partitions without a committed offset
    /// start (group mode). Default [`StartOffset::First`].
    pub start: StartOffset,
    /// Bytes a fetch waits for (Java `fetch.min.bytes`). Default 1.
    pub min_bytes: i32,
    /// Most bytes one fetch returns per partition (Java `max.partition.fetch.bytes`, kafka-go
    /// `MaxBytes`; Fetch v3+ `partition_max_bytes`). A larger first batch still comes whole.
    /// Default [`DEFAULT_READER_MAX_BYTES`].
    pub max_bytes: i32,
    /// Fetch requests in flight at once to one partition leader, each for a share of the
    /// partitions it leads (at most one per partition) and on a connection of its own, so
    /// that a fetch that long-polls never delays another. 1 is the Java consumer's and
    /// librdkafka's way (one fetch per broker); kafka-go fetches every partition on its own
    /// connection. Default [`DEFAULT_FETCH_CONCURRENCY`].
    pub fetch_concurrency: usize,
    /// Most bytes one fetch returns over all its partitions (Java `fetch.max.bytes`; Fetch
    /// v3+ `max_bytes`). A fetch asks for less when `prefetch_bytes` is smaller: at most
    /// `prefetch_bytes / (4 × fetch tasks running)`, though never less than `max_bytes`.
    /// Each fetch lists the partitions that were served longest ago first, so a limit that
    /// one partition's data fills starves no other (KIP-74). Default
    /// [`DEFAULT_FETCH_MAX_BYTES`].
    pub fetch_max_bytes: i32,
    /// How long a fetch waits for `min_bytes`. Default [`DEFAULT_READER_MAX_WAIT`]; keep it
    /// below the dialer's request timeout.
    pub max_wait: Duration,
    /// Memory the reader may hold of fetched and unread messages: the fetch responses, from
    /// before each fetch is sent until their last message is read (a response takes the
    /// budget for the most it may be, `fetch_max_bytes` bounded as below, and gives back
    /// what it did not need once it came); the keys and values of decompressed batches; and
    /// the vectors that hold the [`Message`]s. When it is full, fetching waits. Compressed
    /// batches are decompressed only as the budget allows, so compressed data never expands
    /// past it. Each fetch asks for at most a quarter of the budget over the fetch tasks
    /// (see [`ReaderConfig::fetch_concurrency`]): the responses in flight and being handed
    /// over hold at most half of it. Not counted: a response larger than it was asked to be
    /// (the broker returns a record batch past the limits whole, and `max_bytes` is the
    /// least a fetch asks for), the copies a paused partition keeps (see
    /// [`Reader::pause`]), messages the application still holds, and buffers the process
    /// keeps for reuse. With 32 MiB and an application taking 30,000 records of 1 KiB a
    /// second, peak RSS was 45.8 MiB, 30.4 above the idle process, on Apache Kafka 4.4
    /// (DESIGN.md, "Consumer memory: responses counted"). Default
    /// [`DEFAULT_PREFETCH_BYTES`].
    pub prefetch_bytes: usize,
    /// Which records to return. Default [`IsolationLevel::ReadUncommitted`].
    pub isolation: IsolationLevel,
    /// What OFFSET_OUT_OF_RANGE does. Default [`OffsetReset::Earliest`].
    pub reset: OffsetReset,
}

impl ReaderConfig {
    /// A reader of `topic`/`partition` with the defaults.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        ReaderConfig {
            cluster: ClusterConfig::default(),
            topic: topic.into(),
            partition,
            partitions: Vec::new(),
            group_id: None,
            group_topics: Vec::new(),
            group_instance_id: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            rebalance_timeout: DEFAULT_REBALANCE_TIMEOUT,
            assignors: default_assignors(),
            commit: CommitMode::default(),
            partition_watch_interval: DEFAULT_PARTITION_WATCH_INTERVAL,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            start: StartOffset::First,
            min_bytes: 1,
            max_bytes: DEFAULT_READER_MAX_BYTES,
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY,
            max_wait: DEFAULT_READER_MAX_WAIT,
            prefetch_bytes: DEFAULT_PREFETCH_BYTES,
            isolation: IsolationLevel::ReadUncommitted,
            reset: OffsetReset::Earliest,
        }
    }
    /// A reader of the given partitions, of one or more topics, without a consumer group
    /// (Java `KafkaConsumer::assign`): each starts at [`ReaderConfig::start`], and nothing
    /// is committed. The partitions a broker leads share its fetches (at most
    /// [`ReaderConfig::fetch_concurrency`] in flight).
    pub fn assign(partitions: impl IntoIterator<Item = TopicPartition>) -> Self {
        let mut c = ReaderConfig::new("", 0);
        c.partitions = partitions.into_iter().collect();
        c
    }
    /// Refuses a reader with nothing to read.
    fn check_source(&self) -> Result<()> {
        if self.group_id.is_none() && self.partitions.is_empty() && self.topic.is_empty() {
            return Err(Error::InvalidArgument("a reader needs a topic, partitions to read or a group".into()));
        }
        Ok(())
    }
    /// A member of consumer group `group_id` reading `topics`, with the defaults.
    pub fn group(group_id: impl Into<String>, topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut c = ReaderConfig::new("", 0);
        c.group_id = Some(group_id.into());
        c.group_topics = topics.into_iter().map(Into::into).collect();
        c
    }
    /// Sets [`ReaderConfig::start`].
    pub fn with_start(mut self, s: StartOffset) -> Self {
        self.start = s;
        self
    }
    /// Sets [`ReaderConfig::max_wait`].
    pub fn with_max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }
    /// Sets [`ReaderConfig::max_bytes`].
    pub fn with_max_bytes(mut self, n: i32) -> Self {
        self.max_bytes = n;
        self
    }
    /// Sets [`ReaderConfig::fetch_max_bytes`].
    pub fn with_fetch_max_bytes(mut self, n: i32) -> Self {
        self.fetch_max_bytes = n;
        self
    }
    /// Sets [`ReaderConfig::fetch_concurrency`] (at least 1).
    pub fn with_fetch_concurrency(mut self, n: usize) -> Self {
        self.fetch_concurrency = n;
        self
    }
    /// Sets [`ReaderConfig::prefetch_bytes`].
    pub fn with_prefetch_bytes(mut self, n: usize) -> Self {
        self.prefetch_bytes = n;
        self
    }
    /// Sets [`ReaderConfig::isolation`].
    pub fn with_isolation(mut self, l: IsolationLevel) -> Self {
        self.isolation = l;
        self
    }
    /// Sets [`ReaderConfig::reset`].
    pub fn with_reset(mut self, r: OffsetReset) -> Self {
        self.reset = r;
        self
    }
    /// Sets [`ReaderConfig::cluster`].
    pub fn with_cluster(mut self, c: ClusterConfig) -> Self {
        self.cluster = c;
        self
    }
    /// Sets [`ReaderConfig::group_instance_id`].
    pub fn with_group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }
    /// Sets [`ReaderConfig::session_timeout`].
    pub fn with_session_timeout(mut self, d: Duration) -> Self {
        self.session_timeout = d;
        self
    }
    /// Sets [`ReaderConfig::heartbeat_interval`].
    pub fn with_heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat_interval = d;
        self
    }
    /// Sets [`ReaderConfig::rebalance_timeout`].
    pub fn with_rebalance_timeout(mut self, d: Duration) -> Self {
        self.rebalance_timeout = d;
        self
    }
    /// Sets [`ReaderConfig::assignors`] to this one alone.
    pub fn with_assignor(mut self, a: impl Assignor + 'static) -> Self {
        self.assignors = vec![Arc::new(a)];
        self
    }
    /// Sets [`ReaderConfig::commit`].
    pub fn with_commit(mut self, m: CommitMode) -> Self {
        self.commit = m;
        self
    }
    /// Sets [`ReaderConfig::partition_watch_interval`].
    pub fn with_partition_watch_interval(mut self, d: Duration) -> Self {
        self.partition_watch_interval = d;
        self
    }
    /// Sets [`ReaderConfig::close_timeout`].
    pub fn with_close_timeout(mut self, d: Duration) -> Self {
        self.close_timeout = d;
        self
    }
}

/// Counters of a [`Reader`] (kafka-go `ReaderStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Messages returned to the application.
    pub messages: u64,
    /// Key and value bytes returned.
    pub bytes: u64,
    /// Fetch requests made.
    pub fetches: u64,
    /// Of the fetches, those sent as incremental fetches within a fetch session (KIP-227,
    /// Fetch v7+; Java's `FetchSessionHandler`): each names only the partitions whose
    /// position changed since the last, and the broker answers only for those with news.
    pub incremental_fetches: u64,
    /// Partitions named over all Fetch requests: beside `fetches`, how much each request
    /// carried.
    pub fetch_partitions: u64,
    /// Errors met (each retried or returned; equal transient errors coalesced in the
    /// queue are each counted).
    pub errors: u64,
    /// Offset resets after OFFSET_OUT_OF_RANGE.
    pub resets: u64,
    /// Fetched message bytes not yet returned.
    pub buffered_bytes: u64,
    /// The next offset to return (partition mode; -1 in group mode).
    pub offset: i64,
    /// Messages between the next offsets and the high watermarks of the last fetches (their
    /// last stable offsets under read_committed), over all partitions read (-1 before the
    /// first fetch): [`Reader::lag`].
    pub lag: i64,
    /// Rebalances this member went through (group mode).
    pub rebalances: u64,
    /// Connections the reader has made ([`Cluster::dials`](crate::cluster::Cluster::dials);
    /// kafka-go `Dials`).
    pub dials: u64,
}

/// Per-partition state of a reader, from [`Reader::partitions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The next offset the reader returns.
    pub position: i64,
    /// The high watermark of the last fetch (-1 before the first).
    pub high_watermark: i64,
    /// Messages between the position and the high watermark, under
    /// [`IsolationLevel::ReadCommitted`] the last stable offset (as the Java consumer's
    /// `records-lag`); -1 before the first fetch.
    pub lag: i64,
    /// The group's last committed offset that this reader knows (-1 for none; partition
    /// mode: always -1).
    pub committed: i64,
    /// Whether the partition is paused.
    pub paused: bool,
}

enum Mode {
    /// Partition mode: one partition, or several ([`ReaderConfig::assign`]), sorted.
    Assigned(Vec<TopicPartition>),
    Group {
        shared: Arc<GroupShared>,
        cmds: mpsc::Sender<Cmd>,
        task: tokio::task::AbortHandle,
    },
}

type Pending = Pin<Box<dyn Future<Output = Result<Message>> + Send>>;

/// Reads messages: from one partition, from several, or as a member of a consumer group
/// (kafka-go's `Reader`).
///
/// **Partition mode** ([`ReaderConfig::new`]): reads one partition from
/// [`ReaderConfig::start`]; nothing is committed; `set_offset`/`set_offset_at` seek. With
/// [`ReaderConfig::assign`] it reads several partitions, of one or more topics, in one fetch
/// per partition leader (Java `assign`); [`Reader::seek`] moves one of them.
///
/// **Group mode** ([`ReaderConfig::group`]): joins the consumer group with the classic
/// protocol (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
/// OffsetFetch), reads the partitions the group assigns it (of one or many topics, new
/// partitions included) from their committed offsets, and commits per [`CommitMode`] or
/// with [`Reader::commit_messages`]. A commit is never ahead of what the application was
/// given, is never sent for a partition the reader no longer owns or with a generation it
/// has left, and what was fetched of a revoked or lost partition is dropped. Rebalances can
/// be followed with [`Reader::rebalance_events`]; partitions can be paused.
///
/// In both modes a background task per partition leader fetches ahead, following leader
/// changes and retrying retriable errors, and pauses when [`ReaderConfig::prefetch_bytes`]
/// of fetched messages are waiting. Control records are never returned; under
/// [`IsolationLevel::ReadCommitted`] neither are records of aborted transactions. Also a
/// `futures_core::Stream` of `Result<Message>` (which reads as `read_message` does).
///
/// # Errors
/// Errors of the background tasks reach the application through the reads
/// ([`Reader::read_message`], [`Reader::fetch_message`], the `Stream`), each naming the
/// topic, partition, group and broker it concerns as far as they apply:
/// - **Fatal** errors of the reader fail every later read, and every commit
///   ([`Reader::commit_messages`], [`CommitMode::OnRead`]), with the same error until the
///   reader is closed: the group's fatal errors (GROUP_AUTHORIZATION_FAILED,
///   TOPIC_AUTHORIZATION_FAILED, FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL,
///   INVALID_SESSION_TIMEOUT, GROUP_MAX_SIZE_REACHED, INVALID_GROUP_ID, UNSUPPORTED_VERSION,
///   [`Error::UnknownAssignor`]) and non-retriable errors of a whole fetch (TLS, SASL,
///   [`Error::UnsupportedByBroker`]). Fetching stops; close the reader and make another.
/// - A **failed partition** (OFFSET_OUT_OF_RANGE under [`OffsetReset::Fail`], a
///   non-retriable error code for it such as TOPIC_AUTHORIZATION_FAILED, records that do not
///   decode: [`Error::Malformed`]) fails every later read until the partition is sought
///   ([`Reader::seek`], [`Reader::set_offset`], [`Reader::set_offset_at`]) or, in group mode,
///   leaves the reader; it is not fetched meanwhile.
/// - [`Error::NoBrokerReachable`] (retriable): returned by a read waiting for a message once
///   no broker has answered any of the reader's requests (fetch, metadata, JoinGroup,
///   heartbeat, commit) for [`ClusterConfig::retry_timeout`](crate::cluster::ClusterConfig::retry_timeout)
///   (default 60 s), and again each retry timeout after the last such error, so a loop
///   that retries does not spin and a read with a short timeout of its own still sees it.
///   The reader keeps trying; a later read returns messages once a broker answers again.
/// - Other transient errors (a fetch response that does not decode) are each returned once,
///   from a queue of at most 64: an error equal to one still queued is counted in
///   [`ReaderStats::errors`] but not queued again, and when 64 are queued the oldest is
///   dropped. Retriable errors (leader changes, timeouts, closed connections) are retried
///   without being returned; they are counted in [`ReaderStats::errors`].
///
/// # Cancellation
/// Dropping a [`Reader::read_message`] or [`Reader::fetch_message`] future loses nothing: a
/// message leaves the buffer only when the future completes. Dropping a
/// [`Reader::commit_messages`] future leaves its offsets marked: they are committed with
/// the next commit. Dropping the reader stops fetching; in group mode the group task still
/// commits what was marked and leaves the group, in the background.
pub struct Reader {
    engine: Arc<Engine>,
    config: ReaderConfig,
    mode: Mode,
    /// The `Stream`'s read in progress. In a `Mutex` (only ever reached through `&mut self`,
    /// with `get_mut`, so never locked) so that the reader is `Sync` and a task holding
    /// `&Reader` across an await (`commit_messages`, `pause`) is `Send`.
    pending: Mutex<Option<Pending>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("topic", &self.config.topic)
            .field("partition", &self.config.partition)
            .field("group_id", &self.config.group_id)
            .finish()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Mode::Assigned(_) = self.mode {
            self.engine.close();
        }
        // Group mode: the group task sees its command channel close, commits what is
        // marked, leaves the group and closes the engine.
    }
}

impl Reader {
    /// Connects through `brokers` and starts reading: at [`ReaderConfig::start`] in
    /// partition mode; in group mode after joining the group (in the background: the first
    /// read waits for the assignment).
    ///
    /// # Errors
    /// As [`Cluster::connect`]; the topic's metadata error and ListOffsets' error for
    /// [`StartOffset::First`] / [`StartOffset::Last`] (partition mode);
    /// [`Error::InvalidArgument`] for a reader with neither a topic, partitions nor a group,
    /// and for a group reader without topics or assignors, or with a heartbeat interval not
    /// below its session timeout.
    pub async fn new(brokers: &[&str], config: ReaderConfig) -> Result<Reader> {
        config.check_source()?;
        let cluster = Cluster::connect(brokers, config.cluster.clone()).await?;
        Reader::with_cluster(cluster, config).await
    }

    /// As [`Reader::new`], through a cluster already connected (`ReaderConfig::cluster` is
    /// not used): the reader shares its metadata and its connections, by workload, with
    /// whatever else uses that cluster.
    ///
    /// # Errors
    /// As [`Reader::new`], but for connecting.
    pub async fn with_cluster(cluster: Cluster, config: ReaderConfig) -> Result<Reader> {
        config.check_source()?;
        let settings = FetchSettings {
            min_bytes: config.min_bytes,
            max_bytes: config.max_bytes,
            fetch_max_bytes: config.fetch_max_bytes,
            concurrency: config.fetch_concurrency.max(1),
            max_wait: config.max_wait,
            prefetch_bytes: config.prefetch_bytes,
            isolation: config.isolation,
            reset: config.reset,
        };
        let Some(group_id) = config.group_id.clone() else {
            let parts = if config.partitions.is_empty() {
                vec![TopicPartition::new(config.topic.clone(), config.partition)]
            } else {
                let mut parts = config.partitions.clone();
                parts.sort();
                parts.dedup();
                parts
            };
            let mut topics: Vec<&str> = parts.iter().map(|tp| tp.topic.as_str()).collect();
            topics.dedup();
            for t in topics {
                cluster.topic(t).await?;
            }
            // Where each partition starts, asked of the partition leaders at once.
            let mut starts = tokio::task::JoinSet::new();
            for (i, tp) in parts.iter().enumerate() {
                let (cluster, tp, start, iso) = (cluster.clone(), tp.clone(), config.start, config.isolation);
                starts.spawn(async move { (i, resolve_start(&cluster, &tp, start, iso).await) });
            }
            let mut offsets = vec![0; parts.len()];
            while let Some(r) = starts.join_next().await {
                let (i, offset) = match r {
                    Ok(r) => r,
                    // A panic in the lookup is a bug of kafkit's: it goes on as a panic here.
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    // Cancelled: the runtime is shutting down.
                    Err(_) => return Err(Error::Closed),
                };
                offsets[i] = offset?;
            }
            let engine = Engine::new(cluster, settings);
            engine.assign(parts.iter().cloned().zip(offsets).map(|(tp, o)| (tp, o, -1)).collect());
            return Ok(Reader { engine, config, mode: Mode::Assigned(parts), pending: Mutex::new(None) });
        };
        let mut topics = config.group_topics.clone();
        if !config.topic.is_empty() && !topics.contains(&config.topic) {
            topics.push(config.topic.clone());
        }
        if topics.is_empty() || config.assignors.is_empty() || group_id.is_empty() {
            return Err(Error::InvalidArgument("a group reader needs a group id, topics and an assignor".into()));
        }
        if config.heartbeat_interval.is_zero() || config.heartbeat_interval >= config.session_timeout {
            return Err(Error::InvalidArgument(format!(
                "the heartbeat interval ({:?}) must be above zero and below the session timeout ({:?})",
                config.heartbeat_interval, config.session_timeout
            )));
        }
        let engine = Engine::new(cluster, settings);
        let shared = Arc::new(GroupShared { membership: Mutex::new(Membership::default()), events: Mutex::new(None) });
        let (tx, rx) = mpsc::channel(16);
        let gs = GroupSettings {
            group_id,
            topics,
            instance_id: config.group_instance_id.clone(),
            session_timeout: config.session_timeout,
            rebalance_timeout: config.rebalance_timeout,
            heartbeat_interval: config.heartbeat_interval,
            assignors: config.assignors.clone(),
            commit_interval: match config.commit {
                CommitMode::Interval(d) => Some(d),
                CommitMode::OnRead => None,
            },
            watch_interval: config.partition_watch_interval,
            start: config.start,
            close_timeout: config.close_timeout,
        };
        let task = tokio::spawn(Group::new(engine.clone(), gs, shared.clone(), rx).run()).abort_handle();
        Ok(Reader { engine, config, mode: Mode::Group { shared, cmds: tx, task }, pending: Mutex::new(None) })
    }

    /// The next message (kafka-go `ReadMessage`). In group mode it is committed per
    /// [`ReaderConfig::commit`]; with [`CommitMode::OnRead`] this first commits what earlier
    /// calls returned.
    ///
    /// # Errors
    /// See [`Reader`]'s Errors: the reader's fatal error (such as FENCED_INSTANCE_ID), again
    /// on every call until closed; a failed partition's error (such as OFFSET_OUT_OF_RANGE
    /// with [`OffsetReset::Fail`]) until it is sought; [`Error::NoBrokerReachable`]
    /// (retriable); with [`CommitMode::OnRead`] the commit's error; [`Error::Closed`] after
    /// [`Reader::close`].
    pub async fn read_message(&mut self) -> Result<Message> {
        *self.pending.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        read_next(&self.engine, self.commit_first(), matches!(self.mode, Mode::Group { .. })).await
    }

    /// Where `read_message` first commits what earlier reads returned
    /// ([`CommitMode::OnRead`] in group mode).
    fn commit_first(&self) -> Option<&mpsc::Sender<Cmd>> {
        match (&self.mode, self.config.commit) {
            (Mode::Group { cmds, .. }, CommitMode::OnRead) => Some(cmds),
            _ => None,
        }
    }

    /// The next message, not marked for commit (kafka-go `FetchMessage`): in group mode
    /// commit it with [`Reader::commit_messages`].
    ///
    /// # Errors
    /// As [`Reader::read_message`].
    pub async fn fetch_message(&mut self) -> Result<Message> {
        *self.pending.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        self.engine.next(false).await
    }

    /// Commits `messages` (kafka-go `CommitMessages`): per partition the highest offset
    /// wins, and the committed offset is the one after it (the next to read). Waits for the
    /// coordinator; during a rebalance, until the group is stable again.
    ///
    /// # Errors
    /// The reader's fatal error, once it has one (see [`Reader`]'s Errors);
    /// [`Error::InvalidArgument`] in partition mode; [`Error::CommitFailed`] for a message
    /// whose partition is no longer assigned to this reader, came before the partition was
    /// last assigned to it, or was not returned by it yet (the other messages are still
    /// committed); the coordinator's error (OffsetCommit).
    pub async fn commit_messages(&self, messages: &[Message]) -> Result<()> {
        let Mode::Group { cmds, .. } = &self.mode else {
            return Err(Error::InvalidArgument("commit_messages needs a group reader (ReaderConfig::group)".into()));
        };
        let mut highest: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for m in messages {
            let e = highest.entry(TopicPartition::new(&*m.topic, m.partition)).or_insert(m.offset);
            *e = (*e).max(m.offset);
        }
        if let Some(e) = self.engine.fatal() {
            return Err(e);
        }
        let (offsets, refused) = self.engine.mark_for_commit(highest);
        let r = commit(cmds, offsets).await;
        match refused {
            Some(why) => r.and(Err(Error::CommitFailed(why))),
            None => r,
        }
    }

    /// Rebalance events from now on (assigned, revoked, lost). While a `Revoked` event is
    /// held, the reader waits (up to the rebalance timeout) before giving the partitions up,
    /// so receive these concurrently with reading (a `tokio::select!` or another task).
    /// Calling again replaces the earlier receiver. Partition mode: a receiver that never
    /// yields.
    pub fn rebalance_events(&self) -> mpsc::UnboundedReceiver<RebalanceEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Mode::Group { shared, .. } = &self.mode {
            *shared.events.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        }
        rx
    }

    fn membership(&self) -> Option<Membership> {
        match &self.mode {
            Mode::Group { shared, .. } => Some(shared.membership.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            Mode::Assigned(_) => None,
        }
    }

    /// The partitions this reader reads now: its group assignment, or its one partition.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        match &self.mode {
            Mode::Assigned(parts) => parts.clone(),
            Mode::Group { .. } => self.membership().map(|m| m.assignment.into_iter().collect()).unwrap_or_default(),
        }
    }

    /// The group generation this member is in (-1 outside one, and in partition mode).
    pub fn generation(&self) -> i32 {
        self.membership().map_or(-1, |m| m.generation)
    }

    /// Whether this member led the group's last rebalance (it ran the assignor and watches
    /// for new partitions).
    pub fn is_leader(&self) -> bool {
        self.membership().is_some_and(|m| m.leader)
    }

    /// The member id the coordinator gave this reader (empty before joining, and in
    /// partition mode).
    pub fn member_id(&self) -> String {
        self.membership().map(|m| m.member_id).unwrap_or_default()
    }

    /// Position, high watermark, lag, committed offset and pause state of every partition
    /// being read (per-partition lag in group mode).
    pub fn partitions(&self) -> BTreeMap<TopicPartition, PartitionState> {
        self.engine.partition_states()
    }

    /// Stops returning and fetching messages of `parts` (Java `pause`); what was fetched of
    /// them stays buffered and is returned after [`Reader::resume`]. A pause ends when the
    /// partition leaves the reader.
    ///
    /// What stays buffered is copied out of the fetch responses it came in (one copy of its
    /// keys, values and header values per chunk of about 256 KiB), so that a paused
    /// partition does not keep whole responses, and their share of
    /// [`ReaderConfig::prefetch_bytes`], for as long as it is paused; the copies are not
    /// counted in the budget (at most about one partition's share of it each).
    pub fn pause(&self, parts: &[TopicPartition]) {
        self.engine.set_paused(parts, true);
    }

    /// Returns and fetches messages of `parts` again (Java `resume`).
    pub fn resume(&self, parts: &[TopicPartition]) {
        self.engine.set_paused(parts, false);
    }

    /// The next offset [`Reader::read_message`] returns (kafka-go `Offset`); -1 in group
    /// mode and for a reader of several partitions (see [`Reader::partitions`]).
    pub fn offset(&self) -> i64 {
        match &self.mode {
            Mode::Assigned(parts) if parts.len() == 1 => self.engine.position(&parts[0]).unwrap_or(-1),
            _ => -1,
        }
    }

    /// The partition of a one-partition reader.
    fn partition_mode(&self, what: &str) -> Result<&TopicPartition> {
        match &self.mode {
            Mode::Assigned(parts) if parts.len() == 1 => Ok(&parts[0]),
            Mode::Assigned(_) => {
                Err(Error::InvalidArgument(format!("{what} needs a one-partition reader; use seek for one of several")))
            }
            Mode::Group { .. } => Err(Error::InvalidArgument(format!("{what} is not available with a consumer group"))),
        }
    }

    /// Moves partition `tp` of a reader without a group to `offset` (Java `seek`); what was
    /// fetched of it before is dropped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] in group mode, or when `tp` is not being read.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if let Mode::Group { .. } = self.mode {
            return Err(Error::InvalidArgument("seek is not available with a consumer group".into()));
        }
        *self.pending.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        self.engine.seek(tp, offset)
    }

    /// Moves the reader to `offset` (kafka-go `SetOffset`); messages fetched before are
    /// dropped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] in group mode.
    pub fn set_offset(&mut self, offset: i64) -> Result<()> {
        *self.pending.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        let tp = self.partition_mode("set_offset")?.clone();
        self.engine.seek(&tp, offset)
    }

    /// Moves the reader to the first message at or after `t` (kafka-go `SetOffsetAt`;
    /// ListOffsets by timestamp at the partition leader). Kafka finds the first offset, in
    /// offset order, whose timestamp is at or after `t` (with CreateTime, timestamps need not
    /// grow with offsets). When no message is that late Kafka answers -1, and the reader moves
    /// to the end of the log as it was just before the lookup: the next read returns the
    /// first message written after it, whatever its timestamp, and nothing written during the
    /// lookup is skipped. A reader of several partitions ([`ReaderConfig::assign`]) moves each
    /// of them so (Java `offsetsForTimes` then `seek`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] in group mode; ListOffsets' error (partitions looked up
    /// before it stay moved).
    pub async fn set_offset_at(&mut self, t: SystemTime) -> Result<()> {
        *self.pending.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        let parts = match &self.mode {
            Mode::Assigned(parts) => parts.clone(),
            Mode::Group { .. } => {
                return Err(Error::InvalidArgument("set_offset_at is not available with a consumer group".into()))
            }
        };
        let (cluster, iso) = (&self.engine.cluster, self.config.isolation);
        for tp in &parts {
            // The end first: had it been asked after a -1, a message written in between with
            // a timestamp at or after `t` would be skipped.
            let end = list_offset(cluster, tp, -1, iso).await?;
            let offset = match list_offset(cluster, tp, to_millis(t), iso).await? {
                -1 => end,
                o => o,
            };
            self.engine.seek(tp, offset)?;
        }
        Ok(())
    }

    /// Messages between the next offsets to read and the high watermarks of the latest
    /// fetches (under [`IsolationLevel::ReadCommitted`] their last stable offsets, as the Java
    /// consumer's `records-lag`), over every partition read (kafka-go `Lag`); -1 before the
    /// first fetch.
    pub fn lag(&self) -> i64 {
        self.engine.lag()
    }

    /// Asks the partition leader for the end of the log now (ListOffsets latest: the high
    /// watermark, or the last stable offset under [`IsolationLevel::ReadCommitted`], which
    /// an open transaction holds back) and returns the messages between it and the next
    /// offset to read (kafka-go `ReadLag`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] in group mode; ListOffsets' error.
    pub async fn read_lag(&self) -> Result<i64> {
        let tp = self.partition_mode("read_lag")?;
        let end = list_offset(&self.engine.cluster, tp, -1, self.config.isolation).await?;
        Ok((end - self.offset()).max(0))
    }

    /// A health check of the reader's cluster: [`Cluster::ping`] (connect, ApiVersions,
    /// Metadata within `timeout`), on a connection of its own, so it never waits behind a
    /// long-polling fetch.
    ///
    /// # Errors
    /// As [`Cluster::ping`].
    pub async fn ping(&self, timeout: Duration) -> Result<crate::cluster::Ping> {
        self.engine.cluster.ping(timeout).await
    }

    /// The counters so far.
    pub fn stats(&self) -> ReaderStats {
        let c = &self.engine.counters;
        let (messages, bytes) = self.engine.handed_out();
        ReaderStats {
            messages,
            bytes,
            fetches: c.fetches.load(Ordering::Relaxed),
            incremental_fetches: c.incremental.load(Ordering::Relaxed),
            fetch_partitions: c.named.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            buffered_bytes: c.buffered.load(Ordering::Relaxed),
            offset: self.offset(),
            lag: self.lag(),
            rebalances: self.membership().map_or(0, |m| m.rebalances),
            dials: self.engine.cluster.dials(),
        }
    }

    /// Stops reading (kafka-go `Close`). In group mode first commits what is marked for
    /// commit and leaves the group (a static member stays, so that a restart within the
    /// session timeout does not rebalance), within [`ReaderConfig::close_timeout`]. A close
    /// that arrives during a rebalance lets the rebalance finish first, so the final commit
    /// carries the new generation.
    ///
    /// # Cancellation
    /// Dropping the future once it has started leaves the close to the group task, which
    /// still commits and leaves in the background.
    ///
    /// # Errors
    /// The final commit's error (OffsetCommit); [`Error::CommitFailed`] when the group did
    /// not let the reader commit and leave within the close timeout (the reader stops
    /// anyway; what it had not committed is read again by the partitions' next owner).
    pub async fn close(self) -> Result<()> {
        let mut result = Ok(());
        if let Mode::Group { cmds, .. } = &self.mode {
            let (tx, rx) = oneshot::channel();
            if cmds.send(Cmd::Close(tx)).await.is_ok() {
                match tokio::time::timeout(self.config.close_timeout, rx).await {
                    Ok(Ok(r)) => return r,
                    Ok(Err(_)) => {}
                    Err(_) => {
                        result = Err(Error::CommitFailed(format!(
                            "the group did not let the reader commit and leave within the close timeout ({:?})",
                            self.config.close_timeout
                        )))
                    }
                }
            }
        }
        self.engine.close();
        result
    }
}

impl Reader {
    /// Stops at once, as if the process died: no commit, no LeaveGroup, connections
    /// dropped. The group notices only when the session timeout passes. For testing how an
    /// application copes with a member that crashes; use [`Reader::close`] otherwise.
    pub fn abort(self) {
        if let Mode::Group { task, .. } = &self.mode {
            task.abort();
        }
        self.engine.close();
    }
}

/// `read_message`'s work: the OnRead commit through `commit_first`, then the next message,
/// marked for commit in group mode (`mark`).
async fn read_next(engine: &Engine, commit_first: Option<&mpsc::Sender<Cmd>>, mark: bool) -> Result<Message> {
    if let Some(cmds) = commit_first {
        commit(cmds, Vec::new()).await?;
    }
    engine.next(mark).await
}

/// Asks the group task to commit what is marked, and whether `offsets` made it.
async fn commit(cmds: &mpsc::Sender<Cmd>, offsets: Vec<(TopicPartition, u64, i64)>) -> Result<()> {
    let (tx, rx) = oneshot::channel();
    cmds.send(Cmd::Commit(offsets, tx)).await.map_err(|_| Error::Closed)?;
    rx.await.map_err(|_| Error::Closed)?
}

impl futures_core::Stream for Reader {
    type Item = Result<Message>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pending.get_mut().unwrap_or_else(|e| e.into_inner()).is_none() {
            let engine = this.engine.clone();
            let mark = matches!(this.mode, Mode::Group { .. });
            let cmds = this.commit_first().cloned();
            let read: Pending = Box::pin(async move { read_next(&engine, cmds.as_ref(), mark).await });
            *this.pending.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(read);
        }
        let pending = this.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(fut) = pending.as_mut() else { return Poll::Pending };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                *pending = None;
                match r {
                    Err(Error::Closed) => Poll::Ready(None),
                    r => Poll::Ready(Some(r)),
                }
            }
        }
    }
}

#[cfg(test)]
mod sync_tests {
    fn is_send_sync<T: Send + Sync>() {}

    /// A task that holds `&Reader` across an await (`commit_messages`) must be `Send`.
    #[test]
    fn the_reader_is_send_and_sync() {
        is_send_sync::<super::Reader>();
    }
}
