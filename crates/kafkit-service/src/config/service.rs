//! Settings of this layer: the consumer runtime (`[consumer]`), shutdown (`[shutdown]`) and
//! health (`[health]`).

use super::client::BackoffSettings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How records of one partition may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Ordering {
    /// One record (or batch) of a partition at a time, in offset order: kafkax's loop, the
    /// Java consumer's poll loop. The default.
    #[default]
    Partition,
    /// Records of one key in offset order, records of different keys at once, up to
    /// `consumer.key_concurrency` per partition (Confluent Parallel Consumer's `KEY`
    /// ordering). Records without a key count as one key.
    Key,
}

/// What happens to in-flight work of partitions a rebalance takes away, before their final
/// commit (the Java `ConsumerRebalanceListener.onPartitionsRevoked` work).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RevokeMode {
    /// Handlers run to the end, with their retries and dead-letter writes, within the
    /// reader's rebalance timeout (then they are cancelled). The default.
    #[default]
    Finish,
    /// Handler calls already running finish; no further retry starts. A record whose call
    /// fails is left to the partition's next owner.
    Stop,
    /// Handler futures are dropped at once; their records go to the next owner.
    Cancel,
}

/// Where a retry happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RetryMode {
    /// The partition waits out the backoff and calls the handler again (kafkax; Spring
    /// Kafka's `DefaultErrorHandler`). The default.
    #[default]
    InPlace,
    /// The record is written to a retry topic (`retry.topic_pattern`, one per attempt) and
    /// the partition goes on; the service reads the retry topics too and calls the handler
    /// once the backoff has passed (Spring Kafka's `@RetryableTopic`, non-blocking retries).
    Topics,
}

/// Whether a batch handler gets records of one partition or of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BatchScope {
    /// A batch holds records of one partition; partitions' batches run in parallel. The
    /// default.
    #[default]
    Partition,
    /// A batch holds records of every partition of the topic this member reads (in offset
    /// order per partition), one batch of the topic at a time.
    Topic,
}

/// Retries of a record whose handler asked for one (`Failure::Retry`). Section
/// `[consumer.retry]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Handler calls per record, the first included; past them the record is dead-lettered.
    /// Default 3.
    pub max_attempts: u32,
    /// Waits between calls: `min` doubling to `max`, ±`jitter`. Default 200 ms to 10 s,
    /// 0.2.
    pub backoff: BackoffSettings,
    /// `in-place` or `topics`. Default `in-place`.
    pub mode: RetryMode,
    /// The retry topic of attempt `{n}` (2 and up) of `{topic}`, read by `{group}`. Default
    /// `"{topic}.retry-{n}"`. The topics must exist.
    pub topic_pattern: String,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 3,
            backoff: BackoffSettings { min: Duration::from_millis(200), max: Duration::from_secs(10), jitter: 0.2 },
            mode: RetryMode::InPlace,
            topic_pattern: "{topic}.retry-{n}".into(),
        }
    }
}

/// The dead-letter topic. Section `[consumer.dead_letter]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterSettings {
    /// Send records that failed for good there. When false, such a record stops the service
    /// (it is never skipped). Default true.
    pub enabled: bool,
    /// The topic's name from `{topic}` (the record's original topic) and `{group}`. Default
    /// `"{topic}.DLT"` (Spring Kafka's `DeadLetterPublishingRecoverer`). The topic must exist.
    pub topic_pattern: String,
    /// One topic for every topic, instead of the pattern. Default unset.
    pub topic: Option<String>,
    /// Waits between tries of a dead-letter write that failed; the partition stays stopped
    /// meanwhile. Default 1 s to 30 s, 0.2.
    pub retry_backoff: BackoffSettings,
}

impl Default for DeadLetterSettings {
    fn default() -> Self {
        DeadLetterSettings {
            enabled: true,
            topic_pattern: "{topic}.DLT".into(),
            topic: None,
            retry_backoff: BackoffSettings { min: Duration::from_secs(1), max: Duration::from_secs(30), jitter: 0.2 },
        }
    }
}

/// Batches for batch handlers. Section `[consumer.batch]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSettings {
    /// Most records per batch. Default 100.
    pub max_records: usize,
    /// How long the first record of a batch waits for more. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// `partition` or `topic`. Default `partition`.
    pub scope: BatchScope,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings { max_records: 100, max_wait: Duration::from_millis(100), scope: BatchScope::Partition }
    }
}

/// What one topic changes of the `[consumer]` settings. Section
/// `[consumer.topics.<topic>]`; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicSettings {
    /// Read this topic in a group of its own (a separate membership and commits).
    pub group_id: Option<String>,
    /// `partition` or `key`.
    pub ordering: Option<Ordering>,
    /// `retry.max_attempts` for this topic.
    pub max_attempts: Option<u32>,
    /// `retry.mode` for this topic.
    pub retry_mode: Option<RetryMode>,
    /// `dead_letter.enabled` for this topic.
    pub dead_letter: Option<bool>,
    /// The dead-letter topic of this topic.
    pub dead_letter_topic: Option<String>,
    /// `batch.max_records` for this topic.
    pub batch_max_records: Option<usize>,
    /// `batch.max_wait` for this topic.
    #[serde(with = "humantime_serde::option")]
    pub batch_max_wait: Option<Duration>,
    /// `batch.scope` for this topic.
    pub batch_scope: Option<BatchScope>,
}

/// The consumer runtime. Section `[consumer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSettings {
    /// Partitions whose records are handled at the same time, per group membership (the
    /// rest wait their turn). Default 16.
    pub partition_concurrency: usize,
    /// `partition` or `key`. Default `partition`.
    pub ordering: Ordering,
    /// With `ordering = "key"`: records of one partition handled at once, each of another
    /// key. Default 16.
    pub key_concurrency: usize,
    /// Records fetched and not yet handled that a partition may hold before its fetching
    /// pauses. Default 500.
    pub max_buffered: usize,
    /// How often finished offsets are committed (also on revocation and shutdown). Default
    /// 1 s.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// `finish`, `stop` or `cancel`. Default `finish`.
    pub on_revoke: RevokeMode,
    /// Retries.
    pub retry: RetrySettings,
    /// The dead-letter topic.
    pub dead_letter: DeadLetterSettings,
    /// Batches for batch handlers.
    pub batch: BatchSettings,
    /// Per-topic changes, by topic name.
    pub topics: BTreeMap<String, TopicSettings>,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            partition_concurrency: 16,
            ordering: Ordering::Partition,
            key_concurrency: 16,
            max_buffered: 500,
            commit_interval: Duration::from_secs(1),
            on_revoke: RevokeMode::Finish,
            retry: RetrySettings::default(),
            dead_letter: DeadLetterSettings::default(),
            batch: BatchSettings::default(),
            topics: BTreeMap::new(),
        }
    }
}

/// Graceful shutdown. Section `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// Stop on SIGINT and SIGTERM (a second one forces the exit). Default true.
    pub signals: bool,
    /// The longest a shutdown may take, from the signal to `run` returning (kafkax's
    /// graceful timeout). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Of that, how long in-flight handlers may take to finish; then they are cancelled and
    /// their records left uncommitted. Default 20 s.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings { signals: true, timeout: Duration::from_secs(30), drain_timeout: Duration::from_secs(20) }
    }
}

/// Health. Section `[health]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Not live when one handler call has run longer than this. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub handler_stall: Duration,
    /// Not live when a member's loop (fetching, commits, rebalances) has not turned for this
    /// long. Default 1 min.
    #[serde(with = "humantime_serde")]
    pub loop_stall: Duration,
    /// Not live when a member with partitions to fetch has fetched no record and had no
    /// Fetch request answered for this long (a broker gone silent; see
    /// `MemberHealth::fetch_age`). Keep it above `reader.max_wait` (each fetch waits that
    /// long for records) and the time a leader change takes. Default 1 min. No Java or
    /// librdkafka setting matches it.
    #[serde(with = "humantime_serde")]
    pub fetch_stall: Duration,
    /// How often the cluster is pinged for `connected`. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// The ping's timeout. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub ping_timeout: Duration,
    /// Where the HTTP endpoint listens (`host:port`; feature `http`): `/health/ready`,
    /// `/health/live`, `/stats`. Default unset (no endpoint).
    pub listen: Option<String>,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            handler_stall: Duration::from_secs(300),
            loop_stall: Duration::from_secs(60),
            fetch_stall: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(5),
            listen: None,
        }
    }
}
