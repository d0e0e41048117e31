//! The client's error type.

use kafkit_protocol::{ApiKey, ApiVersion, DecodeError, EncodeError, ErrorCode};
use std::time::Duration;

/// Result of kafkit's async APIs.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to Kafka, with the broker and API in context.
///
/// Ask it questions rather than matching it where you can: [`Error::is_retriable`],
/// [`Error::is_timeout`], [`Error::error_code`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection could not be made.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The broker address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TCP connection was not made within the dialer's connect timeout.
    #[error("connecting to {addr}: no connection within {timeout:?}")]
    ConnectTimeout {
        /// The broker address.
        addr: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// No response came within the request timeout. The request may still have been applied
    /// by the broker.
    #[error("{api:?} request to {addr}: no response within {timeout:?}")]
    RequestTimeout {
        /// The broker address.
        addr: String,
        /// The API of the request.
        api: ApiKey,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The connection closed, or was closed after an I/O error or a malformed response; every
    /// request waiting on it fails with this.
    #[error("connection to {addr} closed: {reason}")]
    ConnectionClosed {
        /// The broker address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A request could not be encoded at the negotiated version.
    #[error("encoding a request for {addr}: {source}")]
    Encode {
        /// The broker address.
        addr: String,
        /// The cause.
        #[source]
        source: EncodeError,
    },
    /// TLS failed: the broker's certificate is not trusted, does not name the host, has
    /// expired; the broker refused this client's certificate or wants one (a TLS alert); a TLS
    /// connection reached a port that does not speak TLS, or a plaintext one a port that does.
    /// Not retried.
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// The broker address.
        addr: String,
        /// Which check failed.
        reason: String,
    },
    /// SASL authentication failed (wrong credentials, a mechanism the broker does not
    /// enable, a server signature that does not verify). Not retried. Never contains the
    /// password or token.
    #[error("SASL {mechanism} authentication with {addr} failed: {message}")]
    Auth {
        /// The broker address.
        addr: String,
        /// The mechanism, such as `SCRAM-SHA-512`.
        mechanism: String,
        /// What the broker said, or what went wrong.
        message: String,
    },
    /// A response could not be decoded; the connection is closed.
    #[error("response from {addr}: {source}")]
    Decode {
        /// The broker address.
        addr: String,
        /// The cause, naming the message, version and field.
        #[source]
        source: DecodeError,
    },
    /// The broker serves no version of this API that kafkit speaks (decided from ApiVersions).
    #[error("{addr} does not support {api:?} in any version kafkit speaks (broker: {broker})")]
    UnsupportedByBroker {
        /// The broker address.
        addr: String,
        /// The API.
        api: ApiKey,
        /// The versions the broker advertised, such as `0-4`, or `none`.
        broker: String,
    },
    /// The broker answered with an error code.
    #[error("{context}: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The error code.
        code: ErrorCode,
        /// What was being done: API, broker, topic and partition as known.
        context: String,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },
    /// The arguments cannot work (an empty broker list, a bad address, conflicting
    /// settings).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A record was not acknowledged within the writer's delivery timeout (Java
    /// `delivery.timeout.ms`); it may or may not have been written.
    #[error("{topic}/{partition}: not acknowledged within {timeout:?}")]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The writer or reader was closed.
    #[error("closed")]
    Closed,
    /// A consumer-group commit was refused or could not be made: the partition is not
    /// assigned to this reader (revoked or lost in a rebalance), or the message came before
    /// the partition was last assigned to it (Java `CommitFailedException`).
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The producer hit an error it cannot recover from (such as OUT_OF_ORDER_SEQUENCE_NUMBER
    /// with nothing before it missing); every later write fails with this too.
    #[error("producer failed fatally: {0}")]
    Fatal(String),
    /// The open transaction cannot be committed, and the Writer is still usable: abort it
    /// with [`Writer::abort_transaction`](crate::Writer::abort_transaction), then begin
    /// another (the Java client's abortable errors: TRANSACTION_ABORTABLE, a record of the
    /// transaction that failed, TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED,
    /// UNKNOWN_PRODUCER_ID, a group generation that moved on in `send_offsets_to_transaction`).
    #[error("the transaction must be aborted: {0}")]
    TransactionAbortable(String),
    /// A newer producer with the same transactional id has fenced this one (PRODUCER_FENCED,
    /// INVALID_PRODUCER_EPOCH: "zombie fencing", KIP-98; Java `ProducerFencedException`).
    /// Fatal: every later call of the Writer fails with this; make a new Writer.
    #[error("producer fenced: {0}")]
    ProducerFenced(String),
    /// A transactional call made in the wrong state (such as `commit_transaction` with no
    /// transaction begun, or a write outside a transaction; Java `IllegalStateException`).
    /// Nothing was sent; the Writer is unchanged.
    #[error("transaction state: {0}")]
    TransactionState(String),
    /// A broker sent data that breaks the protocol's rules although it decoded: a partition
    /// id that is negative, duplicated or absurdly large in Metadata, an offset that
    /// overflows, a response for a partition that was not asked for. The data is not used:
    /// the topic it concerns fails with this (its other topics go on), or the connection is
    /// closed. Not retriable as such; a metadata refresh may bring sound data.
    #[error("malformed data from {broker}: {what}")]
    Malformed {
        /// The broker address.
        broker: String,
        /// What was wrong, with the topic and partition it concerns.
        what: String,
    },
    /// No broker of the bootstrap list or of the last metadata could be reached within the
    /// deadline; `last` is the last failure seen.
    #[error("no broker reachable ({brokers}): {last}")]
    NoBrokerReachable {
        /// The brokers tried, comma-separated.
        brokers: String,
        /// The last failure, as text.
        last: String,
    },
    /// The group coordinator chose an assignor (or, under KIP-848, a server assignor) that
    /// this member did not offer or does not know.
    #[error("unknown assignor {name:?} chosen for group {group}")]
    UnknownAssignor {
        /// The group.
        group: String,
        /// The protocol or assignor name the coordinator chose.
        name: String,
    },
}

impl Error {
    /// Whether trying again (after a metadata refresh or a backoff) may succeed: timeouts,
    /// closed connections, and broker error codes the Java client retries.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::ConnectTimeout { .. } | Error::RequestTimeout { .. } => true,
            Error::NoBrokerReachable { .. } => true,
            Error::ConnectionClosed { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }
    /// Whether a timeout passed (connecting, waiting for a response, or for delivery).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::ConnectTimeout { .. } | Error::RequestTimeout { .. } | Error::DeliveryTimeout { .. })
            || matches!(self, Error::Broker { code: ErrorCode::RequestTimedOut, .. })
    }
    /// Whether the Writer cannot go on ([`Error::Fatal`], [`Error::ProducerFenced`]).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Fatal(_) | Error::ProducerFenced(_))
    }
    /// The broker's error code, for [`Error::Broker`].
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// An equivalent error, for handing one failure to every record of a batch (`Error`
    /// holds `io::Error`, which is not `Clone`).
    pub(crate) fn dup(&self) -> Error {
        let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            Error::Connect { addr, source } => Error::Connect { addr: addr.clone(), source: io(source) },
            Error::ConnectTimeout { addr, timeout } => Error::ConnectTimeout { addr: addr.clone(), timeout: *timeout },
            Error::RequestTimeout { addr, api, timeout } => {
                Error::RequestTimeout { addr: addr.clone(), api: *api, timeout: *timeout }
            }
            Error::ConnectionClosed { addr, reason } => {
                Error::ConnectionClosed { addr: addr.clone(), reason: reason.clone() }
            }
            Error::Encode { addr, source } => Error::Encode { addr: addr.clone(), source: source.clone() },
            Error::Decode { addr, source } => Error::Decode { addr: addr.clone(), source: source.clone() },
            Error::UnsupportedByBroker { addr, api, broker } => {
                Error::UnsupportedByBroker { addr: addr.clone(), api: *api, broker: broker.clone() }
            }
            Error::Broker { code, context, message } => {
                Error::Broker { code: *code, context: context.clone(), message: message.clone() }
            }
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::DeliveryTimeout { topic, partition, timeout } => {
                Error::DeliveryTimeout { topic: topic.clone(), partition: *partition, timeout: *timeout }
            }
            Error::Closed => Error::Closed,
            Error::Fatal(s) => Error::Fatal(s.clone()),
            Error::TransactionAbortable(s) => Error::TransactionAbortable(s.clone()),
            Error::ProducerFenced(s) => Error::ProducerFenced(s.clone()),
            Error::TransactionState(s) => Error::TransactionState(s.clone()),
            Error::CommitFailed(s) => Error::CommitFailed(s.clone()),
            Error::Malformed { broker, what } => Error::Malformed { broker: broker.clone(), what: what.clone() },
            Error::NoBrokerReachable { brokers, last } => {
                Error::NoBrokerReachable { brokers: brokers.clone(), last: last.clone() }
            }
            Error::UnknownAssignor { group, name } => {
                Error::UnknownAssignor { group: group.clone(), name: name.clone() }
            }
            Error::Tls { addr, reason } => Error::Tls { addr: addr.clone(), reason: reason.clone() },
            Error::Auth { addr, mechanism, message } => {
                Error::Auth { addr: addr.clone(), mechanism: mechanism.clone(), message: message.clone() }
            }
        }
    }

    /// `Ok(())` for a zero error code, else [`Error::Broker`] with this context.
    pub(crate) fn check(code: i16, message: Option<&str>, context: impl FnOnce() -> String) -> Result<()> {
        match ErrorCode::from_code(code) {
            ErrorCode::None => Ok(()),
            code => Err(Error::Broker { code, context: context(), message: message.map(str::to_owned) }),
        }
    }
}

/// Shown in [`Error::UnsupportedByBroker`].
pub(crate) fn range_text(r: Option<(ApiVersion, ApiVersion)>) -> String {
    match r {
        Some((a, b)) => format!("{}-{}", a.0, b.0),
        None => "none".into(),
    }
}
