//! # kafkit-protocol
//!
//! The Kafka wire protocol, on its own: no I/O, no async runtime.
//!
//! - [`messages`]: every request and response of every API, all versions in the schemas'
//!   `validVersions`, plus the request/response headers and the data schemas (consumer
//!   protocol subscription/assignment, ...). Generated from Apache Kafka's JSON message
//!   schemas by `kafkit-codegen`; each implements [`Message`] (encode and decode at any
//!   version), requests implement [`Request`] (API key, response type).
//! - [`frame`]: request and response headers, picking the header version from the API
//!   version as the schemas say.
//! - [`record`]: record batches (magic 2) and the legacy message sets (magic 0 and 1).
//! - [`compression`]: gzip, snappy (raw and xerial-framed), lz4 (frame) and zstd, with a cap
//!   on decompressed size.
//! - [`ErrorCode`]: every protocol error code.
//!
//! ## Decoding hostile bytes
//! Every decoder returns a value or a [`DecodeError`] naming the message, the version and
//! the field where it failed. None panics, and none reserves memory for a length read off
//! the wire before checking that the remaining input can hold that many elements, so the
//! memory a decode uses stays within a small multiple of its input (plus, for compressed
//! record batches, the configured decompression limit). The fuzz targets in `fuzz/` check
//! exactly this.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use kafkit_protocol::messages::{MetadataRequest, metadata_request::MetadataRequestTopic};
//! use kafkit_protocol::{ApiVersion, Message};
//!
//! let req = MetadataRequest::default()
//!     .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some("orders".into()))]));
//! let mut buf = BytesMut::new();
//! req.encode(&mut buf, ApiVersion(12)).unwrap();
//! let back = MetadataRequest::decode(&mut buf.freeze(), ApiVersion(12)).unwrap();
//! assert_eq!(back, req);
//!
//! // Garbage gives an error that says where it went wrong; it never panics.
//! let err = MetadataRequest::decode(&mut Bytes::from_static(&[0xff, 0xff]), ApiVersion(12)).unwrap_err();
//! assert!(err.to_string().starts_with("decoding MetadataRequest v12"));
//! ```
#![deny(missing_docs, unsafe_code, rustdoc::broken_intra_doc_links)]

mod codec_error;
pub mod compression;
mod error_code;
pub mod frame;
mod message;
pub mod messages;
pub mod pool;
pub mod record;
#[cfg(feature = "proptest")]
#[doc(hidden)]
pub mod testing;
mod uuid;
mod version;
pub mod wire;

pub use codec_error::{DecodeError, DecodeErrorKind, EncodeError};
pub use error_code::ErrorCode;
pub use message::{Message, Request, Response, Struct};
pub use messages::ApiKey;
pub use uuid::Uuid;
pub use version::{ApiVersion, VersionRange};
