//! What an application writes: a handler per topic, called with a [`Record`] (or a
//! [`Batch`]), that returns success or a classified [`Failure`].

#[cfg(feature = "serde")]
use crate::headers::HeaderValue;
use bytes::Bytes;
use kafkit::{Header, Message};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a failed handler call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Call again after a backoff, up to `consumer.retry.max_attempts` calls (in place or
    /// through retry topics); then dead-letter the record. Spring Kafka's retryable
    /// exceptions.
    Retry,
    /// Send the record to the dead-letter topic now (a poison record; Spring Kafka's
    /// not-retryable exceptions).
    DeadLetter,
    /// Stop the service: `run` shuts down and returns [`crate::Error::Stopped`]; the record
    /// is not committed, so it is read again after a restart.
    Stop,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::DeadLetter => "dead-letter",
            Action::Stop => "stop",
        }
    }
}

/// A classified failure: what to do, a kind (by default the Rust type of the error; the
/// dead-letter header `kafkit.dlt.error.kind`, as Spring's `kafka_dlt-exception-fqcn`) and a
/// message.
#[derive(Clone)]
pub struct Failure {
    action: Action,
    kind: String,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    fn new<E: fmt::Display>(action: Action, e: E) -> Failure {
        Failure { action, kind: short_type_name::<E>(), message: e.to_string(), source: None }
    }
    /// Retry, then dead-letter.
    pub fn retry<E: fmt::Display>(e: E) -> Failure {
        Failure::new(Action::Retry, e)
    }
    /// Dead-letter at once.
    pub fn dead_letter<E: fmt::Display>(e: E) -> Failure {
        Failure::new(Action::DeadLetter, e)
    }
    /// Stop the service.
    pub fn stop<E: fmt::Display>(e: E) -> Failure {
        Failure::new(Action::Stop, e)
    }
    /// Keeps `e` as the failure's source too.
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Failure {
        self.source = Some(Arc::new(e));
        self
    }
    /// Sets the kind.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Failure {
        self.kind = kind.into();
        self
    }
    /// What it asks for.
    pub fn action(&self) -> Action {
        self.action
    }
    /// The kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The source error, when one was kept.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync)> {
        self.source.as_deref()
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("action", &self.action)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.kind, self.action.name(), self.message)
    }
}

fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    // `&str`, `alloc::string::String`: say nothing more than "error".
    match full {
        "&str" | "alloc::string::String" | "&alloc::string::String" => "error".to_string(),
        _ => full.trim_start_matches('&').to_string(),
    }
}

/// Classifies a `Result`'s error: `parse(&bytes).or_dead_letter()?`.
pub trait Classify<T> {
    /// An error becomes [`Failure::retry`].
    fn or_retry(self) -> Result<T, Failure>;
    /// An error becomes [`Failure::dead_letter`].
    fn or_dead_letter(self) -> Result<T, Failure>;
    /// An error becomes [`Failure::stop`].
    fn or_stop(self) -> Result<T, Failure>;
}

impl<T, E: fmt::Display> Classify<T> for Result<T, E> {
    fn or_retry(self) -> Result<T, Failure> {
        self.map_err(Failure::retry)
    }
    fn or_dead_letter(self) -> Result<T, Failure> {
        self.map_err(Failure::dead_letter)
    }
    fn or_stop(self) -> Result<T, Failure> {
        self.map_err(Failure::stop)
    }
}

/// What a record handler returns.
pub type Outcome = Result<(), Failure>;

/// Where a record was first read, before any retry topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The record's timestamp.
    pub time: Option<SystemTime>,
}

/// A record given to a handler: the message as read, where it was first read, and which
/// call this is.
#[derive(Debug, Clone)]
pub struct Record {
    pub(crate) message: Message,
    pub(crate) attempt: u32,
    pub(crate) group: Arc<str>,
    pub(crate) origin: Origin,
}

impl Record {
    /// A record as a handler would get it, for an application's unit tests.
    pub fn for_test(message: Message, attempt: u32, group: &str) -> Record {
        let origin = Origin {
            topic: message.topic.clone(),
            partition: message.partition,
            offset: message.offset,
            time: message.time,
        };
        Record { message, attempt, group: group.into(), origin }
    }
    /// The message as read (from the topic, or from a retry topic).
    pub fn message(&self) -> &Message {
        &self.message
    }
    /// The message.
    pub fn into_message(self) -> Message {
        self.message
    }
    /// The topic it was read from.
    pub fn topic(&self) -> &str {
        &self.message.topic
    }
    /// The partition it was read from.
    pub fn partition(&self) -> i32 {
        self.message.partition
    }
    /// Its offset there.
    pub fn offset(&self) -> i64 {
        self.message.offset
    }
    /// Where it was first read (the same as above unless it came through a retry topic).
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
    /// The key.
    pub fn key(&self) -> Option<&Bytes> {
        self.message.key.as_ref()
    }
    /// The value.
    pub fn value(&self) -> Option<&Bytes> {
        self.message.value.as_ref()
    }
    /// The headers, in order.
    pub fn headers(&self) -> &[Header] {
        &self.message.headers
    }
    /// The last header named `name`, read as `T` ([`HeaderValue`]); `None` when there is
    /// none, `Some(Err)` when it does not read as `T`. Feature `serde`.
    #[cfg(feature = "serde")]
    pub fn header<T: HeaderValue>(&self, name: &str) -> Option<Result<T, crate::headers::HeaderError>> {
        crate::headers::get(&self.message.headers, name)
    }
    /// The record's timestamp.
    pub fn time(&self) -> Option<SystemTime> {
        self.message.time
    }
    /// Which call this is: 1 for the first, then 2, ... up to `consumer.retry.max_attempts`.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// The consumer group reading it.
    pub fn group(&self) -> &str {
        &self.group
    }
}

/// Records given to a batch handler at once, each in offset order within its partition.
#[derive(Debug, Clone)]
pub struct Batch {
    pub(crate) records: Vec<Record>,
}

impl Batch {
    /// A batch as a handler would get it, for an application's unit tests.
    pub fn for_test(records: Vec<Record>) -> Batch {
        Batch { records }
    }
    /// The records.
    pub fn records(&self) -> &[Record] {
        &self.records
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.records.len()
    }
    /// Whether there are none (never, for a batch the service hands over).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// The records, by value.
    pub fn into_records(self) -> Vec<Record> {
        self.records
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a Record;
    type IntoIter = std::slice::Iter<'a, Record>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

/// How a batch failed.
#[derive(Debug, Clone)]
pub enum BatchFailure {
    /// Every record of the batch failed so.
    All(Failure),
    /// These records (by index in [`Batch::records`]) failed; the others are handled. Only
    /// these are retried (as a smaller batch) or dead-lettered.
    Records(Vec<(usize, Failure)>),
}

impl From<Failure> for BatchFailure {
    fn from(f: Failure) -> Self {
        BatchFailure::All(f)
    }
}

/// What a batch handler returns.
pub type BatchOutcome = Result<(), BatchFailure>;

/// Handles one record at a time (kafkax's handler func). Any
/// `Fn(Record) -> impl Future<Output = Outcome>` is one.
pub trait Handler: Send + Sync + 'static {
    /// Handles `record`.
    fn call(&self, record: Record) -> BoxFuture<Outcome>;
}

impl<F, Fut> Handler for F
where
    F: Fn(Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    fn call(&self, record: Record) -> BoxFuture<Outcome> {
        Box::pin(self(record))
    }
}

/// Handles records in batches (kafkax's batch consumer). Any
/// `Fn(Batch) -> impl Future<Output = BatchOutcome>` is one.
pub trait BatchHandler: Send + Sync + 'static {
    /// Handles `batch`.
    fn call(&self, batch: Batch) -> BoxFuture<BatchOutcome>;
}

impl<F, Fut> BatchHandler for F
where
    F: Fn(Batch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = BatchOutcome> + Send + 'static,
{
    fn call(&self, batch: Batch) -> BoxFuture<BatchOutcome> {
        Box::pin(self(batch))
    }
}

/// A registered handler.
#[derive(Clone)]
pub(crate) enum AnyHandler {
    Record(Arc<dyn Handler>),
    Batch(Arc<dyn BatchHandler>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Timeout;
    impl fmt::Display for Timeout {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the payment service did not answer")
        }
    }

    #[test]
    fn failures_are_classified_and_named() {
        let f = Err::<(), _>(Timeout).or_retry().unwrap_err();
        assert_eq!(f.action(), Action::Retry);
        assert!(f.kind().ends_with("tests::Timeout"), "{}", f.kind());
        assert_eq!(f.message(), "the payment service did not answer");
        let f = Failure::dead_letter("bad json").with_kind("Poison");
        assert_eq!((f.action(), f.kind()), (Action::DeadLetter, "Poison"));
        assert_eq!(Failure::stop(String::from("x")).kind(), "error");
    }
}
