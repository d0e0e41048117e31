//! # kafkit
//!
//! A pure-Rust client for Apache Kafka, on tokio.
//!
//! - [`Dialer`] and [`Conn`]: one broker, pipelined requests, cancel-safe writes, ApiVersions
//!   negotiation, TLS ([`TlsConfig`]) and SASL ([`Sasl`]); any request of
//!   [`kafkit_protocol::messages`] can be sent through it.
//! - [`Cluster`]: metadata, routing to leaders, controller and coordinators, retries.
//! - [`Writer`]: batching, balancers, acks, compression, the idempotent producer by default.
//! - [`Reader`]: one partition, or a consumer-group member ([`ReaderConfig::group`]) with
//!   assignors, static membership, commit modes, rebalance events, pause/resume and
//!   per-partition lag.
//! - [`admin::Client`]: topics, configs, groups and their offsets, ACLs, SCRAM credentials and
//!   more, with per-item results.
//!
//! ```no_run
//! # async fn run() -> kafkit::Result<()> {
//! use kafkit::Dialer;
//! use kafkit_protocol::messages::MetadataRequest;
//!
//! let conn = Dialer::new().dial("localhost:9092").await?;
//! let meta = conn.request(&MetadataRequest::default().with_topics(None)).await?;
//! for b in &meta.brokers {
//!     println!("broker {} at {}:{}", b.node_id, b.host, b.port);
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs, unsafe_code, rustdoc::broken_intra_doc_links)]

pub mod admin;
pub mod cluster;
pub mod consumer;
mod error;
mod fetch;
mod message;
pub mod net;
pub mod producer;
mod topic_ids;

#[cfg(test)]
mod hostile_tests;

pub use cluster::{Cluster, ClusterConfig, Workload};
pub use consumer::{
    CommitMode, CooperativeStickyAssignor, OffsetReset, RangeAssignor, Reader, ReaderConfig, ReaderStats,
    RebalanceEvent, RebalanceKind, RoundRobinAssignor, StartOffset, TopicPartition,
};
pub use error::{Error, Result};
pub use kafkit_protocol as protocol;
pub use kafkit_protocol::compression::Compression;
pub use message::{Broker, Header, Message, Partition, TopicConfig};
pub use net::{
    Acks, Batch, Conn, Dialer, IsolationLevel, OAuthToken, PartitionConn, Sasl, Secret, SecurityOptions, TlsConfig,
    TokenProvider, WriteResult,
};
pub use producer::{
    Balancer, Completion, Crc32Balancer, Delivered, DeliveryFuture, GroupMetadata, Hash, LeastBytes, Murmur2Balancer,
    ReferenceHash, RoundRobin, WriteErrors, Writer, WriterConfig, WriterStats, DEFAULT_QUEUE_CAPACITY,
};
