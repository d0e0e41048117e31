//! Readiness and liveness as states code can read ([`Health`]), and, with the `http`
//! feature, an endpoint that serves them.

use kafkit::TopicPartition;
use serde::Serialize;
use std::time::Duration;

/// One group membership's health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemberHealth {
    /// The consumer group.
    pub group: String,
    /// In a generation of the group (JoinGroup and SyncGroup done).
    pub joined: bool,
    /// The assignment of the current generation has arrived (it may be empty: a group with
    /// more members than partitions).
    pub assigned: bool,
    /// Partitions assigned now.
    pub partitions: usize,
    /// Partitions stopped because a dead-letter or retry-topic write fails, with the error
    /// (`topic/partition: error`).
    pub stopped: Vec<String>,
    /// How long ago the member's loop (fetching, commits, rebalances) last turned.
    #[serde(with = "humantime_serde")]
    pub loop_age: Duration,
    /// How long fetching has made no progress while there is something to fetch: the time
    /// since a record was last fetched or a Fetch request of the member's reader was last
    /// answered (the reader's [`kafkit::ReaderStats`] `fetches` less its `errors` rose),
    /// counted only while a partition is assigned and not paused (a paused partition, one
    /// waiting for its handler or stopped by a dead-letter outage, is not fetched); sampled
    /// every 500 ms. `None` with no partition assigned. A broker gone silent (a fetch that
    /// neither answers nor fails) shows here while the loop still turns.
    #[serde(with = "humantime_serde::option")]
    pub fetch_age: Option<Duration>,
    /// The longest handler call running now.
    #[serde(with = "humantime_serde::option")]
    pub longest_call: Option<Duration>,
}

/// The service's health, from [`crate::ServiceHandle::health`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The last ping of the cluster (connect, ApiVersions, Metadata) succeeded.
    pub connected: bool,
    /// The last ping's error, if it failed.
    pub ping_error: Option<String>,
    /// Shutting down (or stopped).
    pub shutting_down: bool,
    /// Each membership.
    pub members: Vec<MemberHealth>,
    /// `health.handler_stall`.
    #[serde(with = "humantime_serde")]
    pub handler_stall: Duration,
    /// `health.loop_stall`.
    #[serde(with = "humantime_serde")]
    pub loop_stall: Duration,
    /// `health.fetch_stall`.
    #[serde(with = "humantime_serde")]
    pub fetch_stall: Duration,
}

impl Health {
    /// Ready to take traffic (a Kubernetes readiness probe): connected, and every member
    /// joined and assigned, and not shutting down.
    pub fn ready(&self) -> bool {
        self.connected
            && !self.shutting_down
            && !self.members.is_empty()
            && self.members.iter().all(|m| m.joined && m.assigned)
    }
    /// Alive (a liveness probe): for every member, its loop turned within
    /// `health.loop_stall`, fetching made progress within `health.fetch_stall`
    /// ([`MemberHealth::fetch_age`]), and no handler call has run longer than
    /// `health.handler_stall`.
    pub fn live(&self) -> bool {
        self.members.iter().all(|m| {
            m.loop_age <= self.loop_stall
                && m.fetch_age.is_none_or(|a| a <= self.fetch_stall)
                && m.longest_call.is_none_or(|c| c <= self.handler_stall)
        })
    }
    /// Why the service is not ready, or `None`.
    pub fn not_ready_because(&self) -> Option<String> {
        if !self.connected {
            return Some(format!("not connected: {}", self.ping_error.as_deref().unwrap_or("no ping yet")));
        }
        if self.shutting_down {
            return Some("shutting down".into());
        }
        if self.members.is_empty() {
            return Some("not running".into());
        }
        self.members.iter().find(|m| !m.joined || !m.assigned).map(|m| {
            format!("group {}: {}", m.group, if m.joined { "waiting for its assignment" } else { "not joined" })
        })
    }
}

/// `topic/partition: error` for [`MemberHealth::stopped`].
pub(crate) fn stopped(tp: &TopicPartition, why: &str) -> String {
    format!("{tp}: {why}")
}

#[cfg(feature = "http")]
pub(crate) mod http;
