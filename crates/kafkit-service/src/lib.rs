//! # kafkit-service
//!
//! The layer a team writes on top of a Kafka client, done once: layered configuration,
//! a handler per topic with classified failures, retries with backoff (in place or through
//! retry topics), dead-letter topics, batch handlers, several topics per consumer,
//! key-ordered parallelism, graceful shutdown, health and stats. It stands on kafkit's
//! [`Reader`](kafkit::Reader) (a consumer-group member), [`Writer`](kafkit::Writer) and
//! [`Cluster`](kafkit::Cluster), and works with any Kafka broker.
//!
//! ```no_run
//! use kafkit_service::{Classify, Config, Record, Service};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: u64, amount: f64 }
//!
//! # #[cfg(feature = "serde")]
//! #[tokio::main]
//! async fn main() -> kafkit_service::Result<()> {
//!     // Defaults, then service.toml, then KAFKIT_* variables (reader.group_id = "billing").
//!     let config = Config::load(Some("service.toml".as_ref()))?;
//!     let mut service = Service::connect(&config).await?;
//!     let out = service.producer();
//!     service.handle("orders", move |r: Record| {
//!         let out = out.clone();
//!         async move {
//!             let order: Order = r.json().or_dead_letter()?; // poison: to orders.DLT
//!             out.send_json("invoices", order.id.to_string(), &order.amount).await.or_retry()?;
//!             Ok(())
//!         }
//!     });
//!     service.run().await // until SIGTERM or SIGINT; a second one forces the exit
//! }
//! # #[cfg(not(feature = "serde"))]
//! # fn main() {}
//! ```
//!
//! ## What matches what
//!
//! | here | kafkax | Java client / Spring Kafka |
//! |---|---|---|
//! | [`Config`] layers: defaults, file, `KAFKIT_*`, code | embedded YAML, `KAFKAX_*`, functional options | `application.yml`, `SPRING_KAFKA_*` |
//! | [`Service::handle`] / [`Service::handle_batch`] | handler func, batch consumer | `@KafkaListener` (record / batch) |
//! | [`Failure`]: [`Action::Retry`], [`Action::DeadLetter`], [`Action::Stop`] | `OnError` | retryable / not-retryable exceptions of `DefaultErrorHandler` |
//! | `consumer.retry` in place / `topics` | exponential backoff retries | `DefaultErrorHandler` backoff / `@RetryableTopic` |
//! | `consumer.dead_letter`, headers in [`dlt`] | dead-letter topic, original topic and error headers | `DeadLetterPublishingRecoverer`, `kafka_dlt-*` headers |
//! | `consumer.ordering = "key"` | - | Confluent Parallel Consumer `KEY` ordering |
//! | [`ServiceHandle::health`], [`kafkit::Cluster::ping`] | `Ping` | actuator health |
//! | [`ServiceHandle::stats`] | stats | `records-lag`, listener timers |
//! | [`Service::run`] | `RunWithGracefulShutdown` | container `stop()` |
//!
//! ## Delivery: at least once, precisely
//!
//! A record's offset is committed only after the record was handled (its handler
//! returned `Ok`), written to the dead-letter topic (acknowledged), or written to its next
//! retry topic (acknowledged); and only as far as the **lowest offset of its partition that
//! is not finished**: with `ordering = "key"`, records after one still running are finished
//! but not committed past it. Commits go every `consumer.commit_interval` (1 s), when
//! partitions are revoked (before the rebalance goes on) and at shutdown.
//!
//! Before every commit the service's producers are flushed (`Service::producer`, and those
//! added with `Service::add_producer`; feature `serde`), so a commit never covers a record
//! whose outputs written through them are unacknowledged. A flush resolves once what was
//! queued before it is acknowledged *or has failed*; the commit goes only when nothing
//! failed that its caller was not told of:
//!
//! - a flush that does not end within the commit timeout (the reader's
//!   `rebalance_timeout`, kept within 5 to 30 s), or a failure that may still be told to a
//!   `send*` call awaiting it, skips that commit: the next one tries again; a skipped
//!   revocation or shutdown commit leaves those records to be handled again.
//! - a delivery that failed with no one told (a record queued with `Producer::queue`, or
//!   written on the producer's writer directly, that failed; a producer that stopped) means
//!   a finished record's output may be lost: from then on nothing is committed and the
//!   service stops with [`Error::OutputLost`]. The records finished since the last commit are
//!   handled again (after a restart, or by the partitions' next owner), their outputs
//!   written again.
//!
//! A failed `send*`, and a failed dead-letter or retry-topic write, is told to its caller
//! (the handler gets the error; the runtime tries the dead-letter write again), so it does
//! not hold the commits.
//!
//! What may be handled again, and when:
//!
//! - **After a crash** (the process killed, the machine lost): every record of a
//!   partition from its last committed offset on. That is, the records finished after the
//!   last commit (at most `consumer.commit_interval` of work), those in flight, and, with key
//!   ordering, those finished above the lowest unfinished one. A record dead-lettered or sent
//!   to a retry topic after the last commit is written there again.
//! - **After a graceful shutdown** that ends within `shutdown.timeout` (and whose last
//!   flush acknowledges every output): nothing that was finished. Records whose work was cut short are handled again: a call still running at
//!   `shutdown.drain_timeout` (cancelled), a record waiting for a retry (no new retry starts
//!   once the shutdown has begun) or for a dead-letter topic that cannot be written.
//! - **After a rebalance**: nothing finished by the member that gave the partition up
//!   (`finish` and `stop` revocations commit first; `cancel` drops running calls, whose
//!   records the next owner handles again). Partitions **lost** (the member's session
//!   expired) are not committed: the next owner handles again what was finished since the
//!   last commit.
//! - Never: a record is not skipped. A failure that is neither retried nor dead-lettered
//!   stops the service ([`Error::Stopped`]) with the record uncommitted; a dead-letter topic
//!   that cannot be written stops its partition (it waits, trying again with
//!   `consumer.dead_letter.retry_backoff`) instead of committing past the record.
//!
//! A handler should therefore be idempotent, or its outputs deduplicated downstream (by key,
//! or by the source position it was given: [`Record::partition`], [`Record::offset`]).
//!
//! ## Features
//!
//! - `serde`: the helpers. JSON: the `json` module (a message from any `Serialize`, a value
//!   into any `Deserialize` with errors naming topic, partition and offset), `Record::json`,
//!   `Producer::send_json`. Typed headers: the `headers` module, `Record::header`. The
//!   producer conveniences: `Producer` (`send`, `send_with_headers`, `send_json`, `queue`),
//!   `Service::producer`, `Service::add_producer`. Adds serde_json.
//! - `json`: the former name of `serde` (an alias).
//! - `http`: the health endpoint (`health.listen`: `/health/ready`, `/health/live`,
//!   `/stats`); hyper 1. Implies `serde`.
//! - `example`: the example order service, binary `kafkit-orders` (`examples/orders.rs`).
//!   Implies `serde`.
//!
//! The default build has neither serde_json nor an HTTP server. The configuration needs
//! serde (the crate, not the feature) in every build, and the dead-letter headers are
//! written in every build. Without `serde` a handler writes its outputs with a
//! [`kafkit::Writer`] of its own, which the service does not flush before its commits.
#![deny(missing_docs, unsafe_code, rustdoc::broken_intra_doc_links)]

pub mod config;
pub mod dlt;
mod error;
pub mod handler;
#[cfg(feature = "serde")]
pub mod headers;
mod outputs;
// The dead-letter headers are written and read with it in every build.
#[cfg(not(feature = "serde"))]
#[allow(dead_code)]
mod headers;
pub mod health;
#[cfg(feature = "serde")]
pub mod json;
#[cfg(feature = "serde")]
mod producer;
mod runtime;
pub mod shutdown;
pub mod stats;

pub use config::{Config, ConfigBuilder, ConfigError, Settings};
pub use error::{Error, Result};
pub use handler::{
    Action, Batch, BatchFailure, BatchHandler, BatchOutcome, Classify, Failure, Handler, Origin, Outcome, Record,
};
pub use health::{Health, MemberHealth};
#[cfg(feature = "serde")]
pub use producer::Producer;
pub use runtime::{Service, ServiceHandle};
pub use shutdown::Phase;
pub use stats::{Latency, TopicStats};
