//! Dead-letter and retry records: their topics' names and their headers.
//!
//! A dead-letter record keeps the original key, value and headers (less this layer's retry
//! headers) and adds:
//!
//! | header | value (UTF-8 text) | Spring Kafka's |
//! |---|---|---|
//! | `kafkit.dlt.original.topic` | the topic the record was first read from | `kafka_dlt-original-topic` |
//! | `kafkit.dlt.original.partition` | its partition, decimal | `kafka_dlt-original-partition` |
//! | `kafkit.dlt.original.offset` | its offset, decimal | `kafka_dlt-original-offset` |
//! | `kafkit.dlt.original.timestamp` | its timestamp, ms since the epoch (-1: none) | `kafka_dlt-original-timestamp` |
//! | `kafkit.dlt.consumer.group` | the group that gave up on it | `kafka_dlt-original-consumer-group` |
//! | `kafkit.dlt.error.message` | the last failure's message | `kafka_dlt-exception-message` |
//! | `kafkit.dlt.error.kind` | the last failure's kind ([`Failure::kind`]) | `kafka_dlt-exception-fqcn` |
//! | `kafkit.dlt.error.action` | `dead-letter` (the handler asked) or `retries-exhausted` | - |
//! | `kafkit.dlt.attempts` | handler calls made, decimal | `kafka_dlt-...` none (`retry_topic-attempts` in retry topics) |
//! | `kafkit.dlt.failure.first` | the first failure's time, ms since the epoch | - |
//! | `kafkit.dlt.failure.last` | the last failure's time, ms since the epoch | - |
//!
//! A record on its way through retry topics carries the same facts under `kafkit.retry.*`
//! (`original.topic`, `original.partition`, `original.offset`, `original.timestamp`,
//! `attempts`, `failure.first`, `failure.last`, `error.message`, `error.kind`) and
//! `kafkit.retry.due`: the time (ms) before which it is not handled again.

use crate::handler::{Failure, Origin};
use crate::headers::{get, HeaderValue};
use kafkit::{Header, Message};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `kafkit.dlt.original.topic`.
pub const DLT_ORIGINAL_TOPIC: &str = "kafkit.dlt.original.topic";
/// `kafkit.dlt.original.partition`.
pub const DLT_ORIGINAL_PARTITION: &str = "kafkit.dlt.original.partition";
/// `kafkit.dlt.original.offset`.
pub const DLT_ORIGINAL_OFFSET: &str = "kafkit.dlt.original.offset";
/// `kafkit.dlt.original.timestamp`.
pub const DLT_ORIGINAL_TIMESTAMP: &str = "kafkit.dlt.original.timestamp";
/// `kafkit.dlt.consumer.group`.
pub const DLT_CONSUMER_GROUP: &str = "kafkit.dlt.consumer.group";
/// `kafkit.dlt.error.message`.
pub const DLT_ERROR_MESSAGE: &str = "kafkit.dlt.error.message";
/// `kafkit.dlt.error.kind`.
pub const DLT_ERROR_KIND: &str = "kafkit.dlt.error.kind";
/// `kafkit.dlt.error.action`.
pub const DLT_ERROR_ACTION: &str = "kafkit.dlt.error.action";
/// `kafkit.dlt.attempts`.
pub const DLT_ATTEMPTS: &str = "kafkit.dlt.attempts";
/// `kafkit.dlt.failure.first`.
pub const DLT_FAILURE_FIRST: &str = "kafkit.dlt.failure.first";
/// `kafkit.dlt.failure.last`.
pub const DLT_FAILURE_LAST: &str = "kafkit.dlt.failure.last";

const RETRY_PREFIX: &str = "kafkit.retry.";
const R_TOPIC: &str = "kafkit.retry.original.topic";
const R_PARTITION: &str = "kafkit.retry.original.partition";
const R_OFFSET: &str = "kafkit.retry.original.offset";
const R_TIMESTAMP: &str = "kafkit.retry.original.timestamp";
const R_ATTEMPTS: &str = "kafkit.retry.attempts";
const R_FIRST: &str = "kafkit.retry.failure.first";
const R_LAST: &str = "kafkit.retry.failure.last";
const R_MESSAGE: &str = "kafkit.retry.error.message";
const R_KIND: &str = "kafkit.retry.error.kind";
/// `kafkit.retry.due`: not handled again before this time (ms since the epoch).
pub const RETRY_DUE: &str = "kafkit.retry.due";

/// `pattern` with `{topic}`, `{group}` and `{n}` filled in.
pub fn topic_name(pattern: &str, topic: &str, group: &str, n: u32) -> String {
    pattern.replace("{topic}", topic).replace("{group}", group).replace("{n}", &n.to_string())
}

/// What a record's retry headers say (all default for a record read from its own topic).
#[derive(Debug, Clone)]
pub(crate) struct RetryState {
    pub origin: Origin,
    /// Handler calls made before this read.
    pub attempts: u32,
    pub first_failure: Option<SystemTime>,
    pub last_failure: Option<SystemTime>,
    pub due: Option<SystemTime>,
}

impl RetryState {
    /// From `m`'s headers when it came through a retry topic (`from_retry`), else fresh.
    pub fn of(m: &Message, from_retry: bool) -> RetryState {
        let fresh = RetryState {
            origin: Origin { topic: m.topic.clone(), partition: m.partition, offset: m.offset, time: m.time },
            attempts: 0,
            first_failure: None,
            last_failure: None,
            due: None,
        };
        if !from_retry {
            return fresh;
        }
        let h = &m.headers;
        let val = |name: &str| get::<i64>(h, name).and_then(Result::ok);
        let time = |name: &str| get::<SystemTime>(h, name).and_then(Result::ok);
        RetryState {
            origin: Origin {
                topic: get::<String>(h, R_TOPIC).and_then(Result::ok).map(Arc::from).unwrap_or(fresh.origin.topic),
                partition: val(R_PARTITION).map_or(m.partition, |p| p as i32),
                offset: val(R_OFFSET).unwrap_or(m.offset),
                time: time(R_TIMESTAMP).or(m.time),
            },
            attempts: val(R_ATTEMPTS).map_or(0, |a| a.max(0) as u32),
            first_failure: time(R_FIRST),
            last_failure: time(R_LAST),
            due: time(RETRY_DUE),
        }
    }
}

fn header<T: HeaderValue>(name: &str, v: &T) -> Header {
    Header { key: name.to_string(), value: Some(v.to_header()) }
}

fn ms(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(-1, |d| d.as_millis() as i64)
}

/// The original headers without this layer's retry headers.
fn kept_headers(m: &Message) -> Vec<Header> {
    m.headers.iter().filter(|h| !h.key.starts_with(RETRY_PREFIX)).cloned().collect()
}

/// The dead-letter record of `m` for `topic`.
pub(crate) fn dead_letter_message(
    m: &Message,
    topic: &str,
    group: &str,
    st: &RetryState,
    failure: &Failure,
    exhausted: bool,
) -> Message {
    let mut headers = kept_headers(m);
    headers.extend([
        header(DLT_ORIGINAL_TOPIC, &st.origin.topic.to_string()),
        header(DLT_ORIGINAL_PARTITION, &st.origin.partition),
        header(DLT_ORIGINAL_OFFSET, &st.origin.offset),
        header(DLT_ORIGINAL_TIMESTAMP, &ms(st.origin.time)),
        header(DLT_CONSUMER_GROUP, &group.to_string()),
        header(DLT_ERROR_MESSAGE, &failure.message().to_string()),
        header(DLT_ERROR_KIND, &failure.kind().to_string()),
        header(DLT_ERROR_ACTION, &(if exhausted { "retries-exhausted" } else { "dead-letter" }).to_string()),
        header(DLT_ATTEMPTS, &st.attempts),
        header(DLT_FAILURE_FIRST, &ms(st.first_failure)),
        header(DLT_FAILURE_LAST, &ms(st.last_failure)),
    ]);
    Message { topic: Arc::from(topic), key: m.key.clone(), value: m.value.clone(), headers, ..Message::default() }
}

/// The record of `m` for retry topic `topic`, due at `due`.
pub(crate) fn retry_message(m: &Message, topic: &str, st: &RetryState, failure: &Failure, due: SystemTime) -> Message {
    let mut headers = kept_headers(m);
    headers.extend([
        header(R_TOPIC, &st.origin.topic.to_string()),
        header(R_PARTITION, &st.origin.partition),
        header(R_OFFSET, &st.origin.offset),
        header(R_TIMESTAMP, &ms(st.origin.time)),
        header(R_ATTEMPTS, &st.attempts),
        header(R_FIRST, &ms(st.first_failure)),
        header(R_LAST, &ms(st.last_failure)),
        header(R_MESSAGE, &failure.message().to_string()),
        header(R_KIND, &failure.kind().to_string()),
        // Rounded up: "not before" must not come earlier than asked (a floor made a 600 ms
        // backoff 599.93 ms once).
        header(RETRY_DUE, &ms(Some(due + Duration::from_nanos(999_999)))),
    ]);
    Message { topic: Arc::from(topic), key: m.key.clone(), value: m.value.clone(), headers, ..Message::default() }
}

/// Bytes of a header, for tests and tools: `kafkit.dlt.*` values are text.
pub fn header_text(m: &Message, name: &str) -> Option<String> {
    m.headers
        .iter()
        .rev()
        .find(|h| h.key == name)
        .map(|h| String::from_utf8_lossy(h.value.as_deref().unwrap_or_default()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::UNIX_EPOCH;

    #[test]
    fn dead_letters_keep_the_record_and_name_where_it_came_from() {
        let t0 = UNIX_EPOCH + Duration::from_millis(1_000);
        let m = Message {
            topic: Arc::from("orders"),
            partition: 3,
            offset: 17,
            key: Some(Bytes::from("k")),
            value: Some(Bytes::from("v")),
            headers: vec![Header { key: "trace".into(), value: Some(Bytes::from("t-1")) }],
            time: Some(t0),
            ..Message::default()
        };
        let mut st = RetryState::of(&m, false);
        st.attempts = 1;
        st.first_failure = Some(t0 + Duration::from_millis(5));
        st.last_failure = st.first_failure;
        let f = Failure::retry("timeout");
        let due = t0 + Duration::from_secs(1);
        let r = retry_message(&m, "orders.retry-1", &st, &f, due);
        let read_back = Message { topic: Arc::from("orders.retry-1"), partition: 0, offset: 2, ..r };
        let mut st2 = RetryState::of(&read_back, true);
        assert_eq!(st2.origin.topic.as_ref(), "orders");
        assert_eq!((st2.origin.partition, st2.origin.offset, st2.attempts), (3, 17, 1));
        assert_eq!(st2.due, Some(due));
        st2.attempts = 2;
        st2.last_failure = Some(t0 + Duration::from_millis(9));
        let d = dead_letter_message(&read_back, "orders.DLT", "billing", &st2, &Failure::dead_letter("bad"), false);
        assert_eq!(d.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(d.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(header_text(&d, "trace").as_deref(), Some("t-1"));
        assert!(d.headers.iter().all(|h| !h.key.starts_with("kafkit.retry.")));
        for (name, want) in [
            (DLT_ORIGINAL_TOPIC, "orders"),
            (DLT_ORIGINAL_PARTITION, "3"),
            (DLT_ORIGINAL_OFFSET, "17"),
            (DLT_ORIGINAL_TIMESTAMP, "1000"),
            (DLT_CONSUMER_GROUP, "billing"),
            (DLT_ERROR_MESSAGE, "bad"),
            (DLT_ERROR_KIND, "error"),
            (DLT_ERROR_ACTION, "dead-letter"),
            (DLT_ATTEMPTS, "2"),
            (DLT_FAILURE_FIRST, "1005"),
            (DLT_FAILURE_LAST, "1009"),
        ] {
            assert_eq!(header_text(&d, name).as_deref(), Some(want), "{name}");
        }
        assert_eq!(topic_name("{group}.{topic}.retry-{n}", "orders", "billing", 2), "billing.orders.retry-2");
    }
}
