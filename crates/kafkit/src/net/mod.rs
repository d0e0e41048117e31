//! Connections: [`Dialer`] makes them, [`Conn`] carries requests over one.

mod conn;
mod dialer;
pub(crate) mod ops;
mod partition;
mod sasl;
mod scram;
mod security;
mod tls;

pub use conn::Conn;
pub use dialer::{
    Dialer, DEFAULT_CLIENT_ID, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT,
};
pub(crate) use ops::{create_topics_request, delete_topics_request};
pub use partition::{Acks, Batch, IsolationLevel, PartitionConn, WriteResult, DEFAULT_MAX_WAIT};
pub use sasl::{OAuthToken, Sasl, Secret, TokenFuture, TokenProvider};
pub use scram::ScramMechanism;
pub(crate) use scram::{salted_password, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS};
pub use security::SecurityOptions;
pub use tls::TlsConfig;
