//! kafkit-service
#![deny(missing_docs, unsafe_code, rustdoc::broken_intra_doc_links)]

pub mod config;
pub mod dlt;
mod error;
pub mod handler;
pub mod headers;
pub mod health;
#[cfg(feature = "json")]
pub mod json;
mod producer;
mod runtime;
pub mod shutdown;
pub mod stats;

pub use config::{Config, ConfigBuilder, ConfigError, Settings};
pub use error::{Error, Result};
pub use handler::{
    Action, Batch, BatchFailure, BatchHandler, BatchOutcome, Classify, Failure, Handler, Outcome, Record,
};
pub use health::Health;
pub use producer::Producer;
pub use runtime::{Service, ServiceHandle};
pub use shutdown::Phase;
pub use stats::TopicStats;
