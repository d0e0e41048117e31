//! The service's error type.

use std::time::Duration;

/// What can stop a service or keep it from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration could not be loaded (every problem, each with its key and source).
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// Settings that load but cannot work together (naming the key).
    #[error("settings: {0}")]
    Settings(String),
    /// The client's error: connecting, a fatal group or fetch error, a commit.
    #[error(transparent)]
    Kafka(#[from] kafkit::Error),
    /// A handler returned [`Action::Stop`](crate::Action::Stop) (or a record failed for good
    /// with the dead-letter topic disabled). The record was not committed.
    #[error("{topic}/{partition} offset {offset}: {failure}")]
    Stopped {
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// The failure.
        failure: String,
    },
    /// A delivery of the service's producers failed and no caller was told of it (a record
    /// queued with `Producer::queue`, or written on the writer itself, that failed), or a
    /// producer stopped: an output of a record already finished may be lost. From then on
    /// the service commits nothing: the records finished since the last commit are handled
    /// again by the partitions' next owner (after a restart), their outputs written again.
    #[error("an output was lost: {0}")]
    OutputLost(String),
    /// The shutdown did not finish within `shutdown.timeout`: what was finished by then was
    /// committed as far as it could be.
    #[error("the shutdown did not finish within {0:?}")]
    ShutdownTimeout(Duration),
    /// A second signal ended the shutdown at once: in-flight work was dropped and not
    /// committed.
    #[error("a second signal forced the exit")]
    Forced,
    /// A JSON value did not encode or decode.
    #[cfg(feature = "serde")]
    #[error(transparent)]
    Json(#[from] crate::json::JsonError),
    /// Something the API cannot do (a topic registered twice, no handler).
    #[error("invalid: {0}")]
    Invalid(String),
}

/// `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
