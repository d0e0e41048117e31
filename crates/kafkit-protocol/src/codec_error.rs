//! Errors of encoding and decoding protocol messages.

use crate::ApiVersion;
use std::fmt;

/// What went wrong while decoding bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before the value did.
    UnexpectedEof {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix was negative (other than -1 for null) or larger than what follows.
    InvalidLength(i64),
    /// A null was read where the schema does not allow one at this version.
    UnexpectedNull,
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A variable-length integer ran over its maximum width.
    VarintTooLong,
    /// The version is outside the message's valid versions.
    UnsupportedVersion,
    /// A tagged field was malformed (wrong size, tags out of order).
    InvalidTaggedField(u32),
    /// The value was read but bytes were left over where none may be.
    TrailingBytes(usize),
    /// An API key that no known API carries.
    UnknownApiKey(i16),
    /// An API that only brokers and controllers send to one another, which this build leaves
    /// out (kafkit-protocol's `broker-internal` feature builds it).
    BrokerInternalApi(i16),
    /// A structural error in a record batch or message set.
    Corrupt(&'static str),
    /// A checksum did not match.
    ChecksumMismatch {
        /// The checksum written in the data.
        expected: u32,
        /// The checksum computed over the data.
        actual: u32,
    },
    /// A record batch used a compression codec this crate does not know.
    UnknownCompression(u8),
    /// Decompressing failed, or its output would exceed the configured limit.
    Decompression(String),
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::UnexpectedEof { needed, remaining } => {
                write!(f, "unexpected end of input (needed {needed} bytes, {remaining} left)")
            }
            DecodeErrorKind::InvalidLength(n) => write!(f, "invalid length {n}"),
            DecodeErrorKind::UnexpectedNull => f.write_str("null where the schema allows none"),
            DecodeErrorKind::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeErrorKind::VarintTooLong => f.write_str("varint longer than its maximum width"),
            DecodeErrorKind::UnsupportedVersion => f.write_str("unsupported version"),
            DecodeErrorKind::InvalidTaggedField(t) => write!(f, "malformed tagged field {t}"),
            DecodeErrorKind::TrailingBytes(n) => write!(f, "{n} unexpected trailing bytes"),
            DecodeErrorKind::UnknownApiKey(k) => write!(f, "unknown API key {k}"),
            DecodeErrorKind::BrokerInternalApi(k) => {
                write!(f, "API key {k} is broker-internal (kafkit-protocol's `broker-internal` feature builds it)")
            }
            DecodeErrorKind::Corrupt(what) => write!(f, "corrupt data: {what}"),
            DecodeErrorKind::ChecksumMismatch { expected, actual } => {
                write!(f, "checksum mismatch (stored {expected:#010x}, computed {actual:#010x})")
            }
            DecodeErrorKind::UnknownCompression(c) => write!(f, "unknown compression codec {c}"),
            DecodeErrorKind::Decompression(msg) => write!(f, "decompression failed: {msg}"),
        }
    }
}

/// Decoding failed: what went wrong, and where (message, version and field path).
///
/// Displayed as, for example,
/// `decoding FetchResponse v12 at responses.partitions.records: unexpected end of input (needed 4 bytes, 2 left)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    /// Field names, innermost first.
    path: Vec<&'static str>,
    message: Option<&'static str>,
    version: Option<ApiVersion>,
}

impl DecodeError {
    /// An error of this kind with no location yet.
    #[cold]
    pub fn new(kind: DecodeErrorKind) -> Self {
        DecodeError { kind, path: Vec::new(), message: None, version: None }
    }
    /// Adds a field name to the path (called from the innermost field outwards).
    #[cold]
    #[must_use]
    pub fn field(mut self, name: &'static str) -> Self {
        self.path.push(name);
        self
    }
    /// Names the message and version being decoded (the outermost context).
    #[cold]
    #[must_use]
    pub fn in_message(mut self, message: &'static str, version: ApiVersion) -> Self {
        if self.message.is_none() {
            self.message = Some(message);
            self.version = Some(version);
        }
        self
    }
    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }
    /// The message being decoded (such as `FetchResponse`), when known.
    pub fn message(&self) -> Option<&'static str> {
        self.message
    }
    /// The API version being decoded, when known.
    pub fn version(&self) -> Option<ApiVersion> {
        self.version
    }
    /// The field path, outermost first, joined with `.` (such as `responses.partitions.records`).
    pub fn path(&self) -> String {
        let mut s = String::new();
        for (i, p) in self.path.iter().rev().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(p);
        }
        s
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        DecodeError::new(kind)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("decoding")?;
        if let Some(m) = self.message {
            write!(f, " {m}")?;
        }
        if let Some(v) = self.version {
            write!(f, " {v}")?;
        }
        if !self.path.is_empty() {
            write!(f, " at {}", self.path())?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for DecodeError {}

/// Encoding failed: the value cannot be written at the requested version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The version is outside the message's valid versions.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The requested version.
        version: ApiVersion,
    },
    /// A field holds a non-default value but the version cannot carry the field.
    #[error("field {field} is not in {message} {version} but holds a non-default value")]
    FieldNotInVersion {
        /// The message (or nested struct) name.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The requested version.
        version: ApiVersion,
    },
    /// A field is null but the version does not allow null for it.
    #[error("field {field} of {message} is null, which {version} does not allow")]
    NullNotAllowed {
        /// The message (or nested struct) name.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The requested version.
        version: ApiVersion,
    },
    /// A string, byte array or array is longer than its length prefix can express.
    #[error("field {field} of {message} is too long ({len}) for its length prefix")]
    TooLong {
        /// The message (or nested struct) name.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The length.
        len: usize,
    },
    /// A value outside what the wire format can carry (record batches).
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// Compression failed.
    #[error("compression failed: {0}")]
    Compression(String),
}
