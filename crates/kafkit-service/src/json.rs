//! JSON helpers (feature `serde`): a [`Message`] from any `Serialize`, a value into any
//! `Deserialize` with the error naming the topic, partition and offset.

use crate::handler::Record;
use bytes::Bytes;
use kafkit::{Header, Message};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// The `content-type` header [`message`] adds.
pub const CONTENT_TYPE: &str = "content-type";

/// A value that did not encode, or a record whose value did not decode.
#[derive(Debug)]
pub struct JsonError {
    /// `topic/partition offset N` of the record, when decoding one.
    pub at: Option<String>,
    /// The type asked for, or encoded.
    pub type_name: &'static str,
    /// serde_json's error (line and column in the value).
    pub source: serde_json::Error,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: the value is not a JSON {}: {}", self.type_name, self.source),
            None => write!(f, "a {} does not serialize to JSON: {}", self.type_name, self.source),
        }
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A message whose value is `value` as JSON, with `key` and the header `content-type:
/// application/json`.
///
/// # Errors
/// [`JsonError`] when `value` does not serialize (a map with non-string keys, ...).
pub fn message<T: Serialize + ?Sized>(key: impl Into<Option<Bytes>>, value: &T) -> Result<Message, JsonError> {
    let bytes = serde_json::to_vec(value).map_err(|source| JsonError {
        at: None,
        type_name: std::any::type_name::<T>(),
        source,
    })?;
    let mut m = Message::new(key.into(), Some(Bytes::from(bytes)));
    m.headers.push(Header { key: CONTENT_TYPE.into(), value: Some(Bytes::from_static(b"application/json")) });
    Ok(m)
}

/// `m`'s value read as a `T`.
///
/// # Errors
/// [`JsonError`] naming `m`'s topic, partition and offset (a null value reads as JSON
/// `null`).
pub fn value<T: DeserializeOwned>(m: &Message) -> Result<T, JsonError> {
    let bytes = m.value.as_deref().unwrap_or(b"null");
    serde_json::from_slice(bytes).map_err(|source| JsonError {
        at: Some(format!("{}/{} offset {}", m.topic, m.partition, m.offset)),
        type_name: std::any::type_name::<T>(),
        source,
    })
}

impl Record {
    /// The value read as JSON into a `T`: `let order: Order = record.json().or_dead_letter()?;`.
    ///
    /// # Errors
    /// [`JsonError`] naming the topic, partition and offset.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        value(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Order {
        id: u32,
        amount: f64,
    }

    #[test]
    fn json_round_trips_and_errors_name_the_record() {
        let m = message(Some(Bytes::from("k")), &Order { id: 7, amount: 1.5 }).unwrap();
        assert_eq!(m.value.as_deref(), Some(&br#"{"id":7,"amount":1.5}"#[..]));
        assert_eq!(crate::headers::get::<String>(&m.headers, CONTENT_TYPE), Some(Ok("application/json".into())));
        let read = Message { topic: "orders".into(), partition: 2, offset: 41, ..m };
        assert_eq!(value::<Order>(&read).unwrap(), Order { id: 7, amount: 1.5 });
        let bad = Message { value: Some(Bytes::from("{\"id\": \"seven\"}")), ..read };
        let e = value::<Order>(&bad).unwrap_err().to_string();
        assert!(e.starts_with("orders/2 offset 41: the value is not a JSON"), "{e}");
        assert!(e.contains("Order") && e.contains("line 1"), "{e}");
    }
}
