//! Typed headers (feature `serde`): values written and read as text (UTF-8), so that
//! `kafkit consume` and any other client shows them as they are.
//!
//! | type | written as |
//! |---|---|
//! | `String`, `&str` | the text |
//! | integers | decimal (`"42"`, `"-1"`) |
//! | `bool` | `"true"` / `"false"` |
//! | `SystemTime` | milliseconds since the Unix epoch, decimal (Kafka's timestamp unit) |
//! | `Bytes`, `Vec<u8>` | the bytes as they are |
//!
//! Spring Kafka writes its dead-letter integers as big-endian binary; kafkit's headers are
//! text, so a reader needs no schema to show them.

use bytes::Bytes;
use kafkit::{Header, Message};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A header value that did not read as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header {name}: {value:?} is not {expected}")]
pub struct HeaderError {
    /// The header.
    pub name: String,
    /// Its value, lossily as text.
    pub value: String,
    /// The type asked for.
    pub expected: &'static str,
}

/// A value a header can carry.
pub trait HeaderValue: Sized {
    /// The header bytes.
    fn to_header(&self) -> Bytes;
    /// The value of header bytes; `None` when they are not one.
    fn from_header(bytes: &[u8]) -> Option<Self>;
    /// What the type is called in errors.
    const EXPECTED: &'static str;
}

impl HeaderValue for String {
    fn to_header(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
    fn from_header(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes).ok().map(String::from)
    }
    const EXPECTED: &'static str = "UTF-8 text";
}

impl HeaderValue for Bytes {
    fn to_header(&self) -> Bytes {
        self.clone()
    }
    fn from_header(bytes: &[u8]) -> Option<Self> {
        Some(Bytes::copy_from_slice(bytes))
    }
    const EXPECTED: &'static str = "bytes";
}

impl HeaderValue for Vec<u8> {
    fn to_header(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
    fn from_header(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
    const EXPECTED: &'static str = "bytes";
}

impl HeaderValue for bool {
    fn to_header(&self) -> Bytes {
        Bytes::from_static(if *self { b"true" } else { b"false" })
    }
    fn from_header(bytes: &[u8]) -> Option<Self> {
        match bytes {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }
    const EXPECTED: &'static str = "true or false";
}

macro_rules! int_header {
    ($($t:ty),*) => {$(
        impl HeaderValue for $t {
            fn to_header(&self) -> Bytes {
                Bytes::from(self.to_string())
            }
            fn from_header(bytes: &[u8]) -> Option<Self> {
                std::str::from_utf8(bytes).ok()?.trim().parse().ok()
            }
            const EXPECTED: &'static str = concat!("a decimal ", stringify!($t));
        }
    )*};
}
int_header!(i8, i16, i32, i64, u8, u16, u32, u64, usize);

impl HeaderValue for SystemTime {
    fn to_header(&self) -> Bytes {
        let ms = self.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        ms.to_header()
    }
    fn from_header(bytes: &[u8]) -> Option<Self> {
        let ms = i64::from_header(bytes)?;
        (ms >= 0).then(|| UNIX_EPOCH + Duration::from_millis(ms as u64))
    }
    const EXPECTED: &'static str = "milliseconds since the Unix epoch";
}

/// The last header named `name`, as `T`.
pub fn get<T: HeaderValue>(headers: &[Header], name: &str) -> Option<Result<T, HeaderError>> {
    let h = headers.iter().rev().find(|h| h.key == name)?;
    let bytes = h.value.as_deref().unwrap_or_default();
    Some(T::from_header(bytes).ok_or_else(|| HeaderError {
        name: name.to_string(),
        value: String::from_utf8_lossy(bytes).into_owned(),
        expected: T::EXPECTED,
    }))
}

/// Typed headers on a [`Message`].
pub trait MessageHeaders {
    /// Adds header `name` with `value`.
    #[must_use]
    fn with_typed_header<T: HeaderValue>(self, name: &str, value: &T) -> Self;
    /// The last header named `name`, as `T`.
    fn typed_header<T: HeaderValue>(&self, name: &str) -> Option<Result<T, HeaderError>>;
}

impl MessageHeaders for Message {
    fn with_typed_header<T: HeaderValue>(mut self, name: &str, value: &T) -> Self {
        self.headers.push(Header { key: name.to_string(), value: Some(value.to_header()) });
        self
    }
    fn typed_header<T: HeaderValue>(&self, name: &str) -> Option<Result<T, HeaderError>> {
        get(&self.headers, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_headers_round_trip_as_text() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let m = Message::default()
            .with_typed_header("n", &-42i64)
            .with_typed_header("ok", &true)
            .with_typed_header("at", &t)
            .with_typed_header("who", &"alice".to_string());
        assert_eq!(m.headers[0].value.as_deref(), Some(&b"-42"[..]));
        assert_eq!(m.headers[2].value.as_deref(), Some(&b"1700000000123"[..]));
        assert_eq!(m.typed_header::<i64>("n"), Some(Ok(-42)));
        assert_eq!(m.typed_header::<bool>("ok"), Some(Ok(true)));
        assert_eq!(m.typed_header::<SystemTime>("at"), Some(Ok(t)));
        assert_eq!(m.typed_header::<String>("who"), Some(Ok("alice".into())));
        assert_eq!(m.typed_header::<u32>("missing"), None);
        let e = m.typed_header::<u32>("who").unwrap().unwrap_err();
        assert_eq!(e.to_string(), "header who: \"alice\" is not a decimal u32");
    }
}
