//! Settings of the [`kafkit::Reader`] (section `[reader]`), field by field.

use super::types::{AssignorSetting, CommitSetting, IsolationSetting, ResetSetting, Size, StartSetting};
use kafkit::{IsolationLevel, OffsetReset, ReaderConfig, TopicPartition};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Every setting of [`ReaderConfig`] but the cluster (section `[cluster]`, shared). Defaults
/// are kafkit's. The service reads as a group member: `group_id` is its group, the topics
/// are those it has handlers for, and it commits what its handlers finished (`commit` is for
/// plain readers built with [`ReaderSettings::to_config`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReaderSettings {
    /// The topic of a one-partition reader (partition mode). Default empty.
    pub topic: String,
    /// The partition of a one-partition reader. Default 0.
    pub partition: i32,
    /// Partitions to read without a group (Java `assign`), each `"topic:partition"`.
    /// Default none.
    #[serde(with = "super::types::list")]
    pub partitions: Vec<String>,
    /// The consumer group (Java `group.id`, kafka-go `GroupID`): the service's group.
    /// Default unset.
    pub group_id: Option<String>,
    /// Topics a plain group reader subscribes to (kafka-go `GroupTopics`). The service adds
    /// those it has handlers for. Default none.
    #[serde(with = "super::types::list")]
    pub group_topics: Vec<String>,
    /// Static membership (KIP-345, Java `group.instance.id`). Default unset.
    pub group_instance_id: Option<String>,
    /// Java `session.timeout.ms`. Default 45 s.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Java `heartbeat.interval.ms`. Default 3 s.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long the group waits for members to rejoin, and the reader for the application
    /// to finish a revocation (Java `max.poll.interval.ms` plays this part). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub rebalance_timeout: Duration,
    /// Assignors in order of preference (Java `partition.assignment.strategy`). Default
    /// `["range", "roundrobin"]`.
    #[serde(with = "super::types::list")]
    pub assignors: Vec<AssignorSetting>,
    /// When a plain group reader commits what `read_message` returned: `"on-read"` or an
    /// interval. Default `"5s"` (Java `auto.commit.interval.ms`).
    pub commit: CommitSetting,
    /// How often the group leader looks for new partitions. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub partition_watch_interval: Duration,
    /// How long closing may take to commit and leave the group. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub close_timeout: Duration,
    /// Where partitions without a committed offset start: `"first"`, `"last"` or an offset
    /// (Java `auto.offset.reset` for a new group). Default `"first"`.
    pub start: StartSetting,
    /// Java `fetch.min.bytes`. Default 1 byte.
    pub min_bytes: Size,
    /// Java `max.partition.fetch.bytes`. Default 1 MiB.
    pub max_bytes: Size,
    /// Fetches in flight per partition leader. Default 2.
    pub fetch_concurrency: usize,
    /// Java `fetch.max.bytes`. Default 50 MiB.
    pub fetch_max_bytes: Size,
    /// Java `fetch.max.wait.ms`. Default 500 ms.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// Memory the reader may hold of fetched, unread messages, their fetch responses
    /// included (`kafkit::ReaderConfig::prefetch_bytes`). Default 8 MiB.
    pub prefetch_bytes: Size,
    /// Java `isolation.level`: `read-uncommitted` or `read-committed`. Default
    /// `read-uncommitted`.
    pub isolation: IsolationSetting,
    /// What OFFSET_OUT_OF_RANGE does: `earliest`, `latest`, `fail`. Default `earliest`.
    pub reset: ResetSetting,
}

impl Default for ReaderSettings {
    fn default() -> Self {
        // Exhaustive: a field added to ReaderConfig fails to compile here until mapped.
        let ReaderConfig {
            cluster: _,
            topic,
            partition,
            partitions,
            group_id,
            group_topics,
            group_instance_id,
            session_timeout,
            heartbeat_interval,
            rebalance_timeout,
            assignors,
            commit,
            partition_watch_interval,
            close_timeout,
            start,
            min_bytes,
            max_bytes,
            fetch_max_bytes,
            fetch_concurrency,
            max_wait,
            prefetch_bytes,
            isolation,
            reset,
        } = ReaderConfig::new("", 0);
        let assignors = assignors
            .iter()
            .map(|a| match a.name() {
                "roundrobin" => AssignorSetting::Roundrobin,
                "cooperative-sticky" => AssignorSetting::CooperativeSticky,
                _ => AssignorSetting::Range,
            })
            .collect();
        ReaderSettings {
            topic,
            partition,
            partitions: partitions.iter().map(|tp| format!("{}:{}", tp.topic, tp.partition)).collect(),
            group_id,
            group_topics,
            group_instance_id,
            session_timeout,
            heartbeat_interval,
            rebalance_timeout,
            assignors,
            commit: CommitSetting(commit),
            partition_watch_interval,
            close_timeout,
            start: StartSetting(start),
            min_bytes: Size::bytes(min_bytes.max(0) as u64),
            max_bytes: Size::bytes(max_bytes.max(0) as u64),
            fetch_concurrency,
            fetch_max_bytes: Size::bytes(fetch_max_bytes.max(0) as u64),
            max_wait,
            prefetch_bytes: Size::bytes(prefetch_bytes as u64),
            isolation: match isolation {
                IsolationLevel::ReadCommitted => IsolationSetting::ReadCommitted,
                IsolationLevel::ReadUncommitted => IsolationSetting::ReadUncommitted,
            },
            reset: match reset {
                OffsetReset::Latest => ResetSetting::Latest,
                OffsetReset::Fail => ResetSetting::Fail,
                OffsetReset::Earliest => ResetSetting::Earliest,
            },
        }
    }
}

impl ReaderSettings {
    /// kafkit's [`ReaderConfig`] on `cluster`. Every field is set here (no `..default()`): a
    /// field added to `ReaderConfig` fails to compile until it is mapped.
    ///
    /// # Errors
    /// A partition not written `topic:partition`, a size that does not fit, no assignor;
    /// each naming its key.
    pub fn to_config(&self, cluster: kafkit::ClusterConfig) -> Result<ReaderConfig, String> {
        let mut partitions = Vec::with_capacity(self.partitions.len());
        for p in &self.partitions {
            let parsed = p.rsplit_once(':').and_then(|(t, n)| Some(TopicPartition::new(t, n.parse::<i32>().ok()?)));
            match parsed {
                Some(tp) if !tp.topic.is_empty() && tp.partition >= 0 => partitions.push(tp),
                _ => return Err(format!("reader.partitions: {p:?} is not \"topic:partition\"")),
            }
        }
        if self.assignors.is_empty() {
            return Err("reader.assignors: at least one assignor is needed".into());
        }
        Ok(ReaderConfig {
            cluster,
            topic: self.topic.clone(),
            partition: self.partition,
            partitions,
            group_id: self.group_id.clone(),
            group_topics: self.group_topics.clone(),
            group_instance_id: self.group_instance_id.clone(),
            session_timeout: self.session_timeout,
            heartbeat_interval: self.heartbeat_interval,
            rebalance_timeout: self.rebalance_timeout,
            assignors: self.assignors.iter().map(|a| a.build()).collect(),
            commit: self.commit.0,
            partition_watch_interval: self.partition_watch_interval,
            close_timeout: self.close_timeout,
            start: self.start.0,
            min_bytes: self.min_bytes.to_i32("reader.min_bytes")?,
            max_bytes: self.max_bytes.to_i32("reader.max_bytes")?,
            fetch_max_bytes: self.fetch_max_bytes.to_i32("reader.fetch_max_bytes")?,
            fetch_concurrency: self.fetch_concurrency,
            max_wait: self.max_wait,
            prefetch_bytes: self.prefetch_bytes.to_usize("reader.prefetch_bytes")?,
            isolation: self.isolation.into(),
            reset: self.reset.into(),
        })
    }
}
