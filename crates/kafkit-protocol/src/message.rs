//! The traits every generated message implements.

use crate::codec_error::{DecodeError, EncodeError};
use crate::messages::ApiKey;
use crate::wire::DResult;
use crate::{ApiVersion, VersionRange};
use bytes::{Bytes, BytesMut};
use std::fmt::Debug;

/// The encoding of one generated struct (a message or a struct nested in one) at a version.
///
/// Used by generated code; applications use [`Message`]. `v` is the version of the
/// enclosing message.
#[doc(hidden)]
pub trait Struct: Sized {
    /// Appends the struct's encoding at version `v`.
    fn encode_inner(&self, buf: &mut BytesMut, v: i16) -> Result<(), EncodeError>;
    /// The encoded size at version `v` (exact when `encode_inner` succeeds).
    fn len_inner(&self, v: i16) -> usize;
    /// Reads the struct at version `v`.
    fn decode_inner(buf: &mut Bytes, v: i16) -> DResult<Self>;
    /// The fewest bytes any encoding of this struct takes at version `v`: array lengths read
    /// off the wire are checked against it before anything is reserved.
    fn min_size(v: i16) -> usize;
    /// A proptest strategy for values that version `v` can carry.
    #[cfg(feature = "proptest")]
    fn strategy(v: i16) -> proptest::strategy::BoxedStrategy<Self>;
}

/// A Kafka protocol message: a request, a response, a header or a data schema, generated
/// from Apache Kafka's JSON message schemas.
///
/// Every message encodes and decodes at every version in [`Message::VERSIONS`]: the client
/// encodes requests and decodes responses, a broker (or kafkit's test cluster) the reverse.
pub trait Message: Struct + Clone + Debug + PartialEq + Default + Send + Sync + 'static {
    /// The schema name, such as `ProduceRequest`.
    const NAME: &'static str;
    /// The schema's `validVersions`.
    const VERSIONS: VersionRange;
    /// The schema's `flexibleVersions` (KIP-482: compact encodings and tagged fields).
    const FLEXIBLE_VERSIONS: VersionRange;
    /// The schema's `deprecatedVersions` (empty when none).
    const DEPRECATED_VERSIONS: VersionRange;

    /// Whether `version` uses the flexible (compact, tagged-field) encoding.
    fn is_flexible(version: ApiVersion) -> bool {
        Self::FLEXIBLE_VERSIONS.contains(version)
    }

    /// Appends the message body (no size prefix, no header) encoded at `version`.
    ///
    /// # Errors
    /// [`EncodeError::UnsupportedVersion`] outside [`Message::VERSIONS`];
    /// [`EncodeError::FieldNotInVersion`] when a field that `version` does not carry holds a
    /// non-default value, even one the schema marks ignorable: nothing is dropped silently
    /// (the Java serializer drops ignorable fields, which is how a read_committed Fetch sent
    /// at v3 would quietly become read_uncommitted); [`EncodeError::NullNotAllowed`];
    /// [`EncodeError::TooLong`].
    fn encode(&self, buf: &mut BytesMut, version: ApiVersion) -> Result<(), EncodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(EncodeError::UnsupportedVersion { message: Self::NAME, version });
        }
        self.encode_inner(buf, version.0)
    }

    /// The encoded body as a new buffer.
    ///
    /// # Errors
    /// As [`Message::encode`].
    fn encode_to_bytes(&self, version: ApiVersion) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len(version)?);
        self.encode(&mut buf, version)?;
        Ok(buf.freeze())
    }

    /// The size in bytes of the body encoded at `version`.
    ///
    /// # Errors
    /// [`EncodeError::UnsupportedVersion`] outside [`Message::VERSIONS`].
    fn encoded_len(&self, version: ApiVersion) -> Result<usize, EncodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(EncodeError::UnsupportedVersion { message: Self::NAME, version });
        }
        Ok(self.len_inner(version.0))
    }

    /// Reads a message body encoded at `version` from the front of `buf`, advancing it.
    /// Byte fields of the result share `buf`'s memory (no copy).
    ///
    /// # Errors
    /// A [`DecodeError`] naming this message, the version and the field where the bytes
    /// stopped making sense. Never panics, whatever the input.
    fn decode(buf: &mut Bytes, version: ApiVersion) -> Result<Self, DecodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(DecodeError::new(crate::DecodeErrorKind::UnsupportedVersion).in_message(Self::NAME, version));
        }
        Self::decode_inner(buf, version.0).map_err(|e| e.in_message(Self::NAME, version))
    }

    /// A proptest strategy for messages that `version` can carry (feature `proptest`).
    #[cfg(feature = "proptest")]
    fn arbitrary(version: ApiVersion) -> proptest::strategy::BoxedStrategy<Self> {
        <Self as Struct>::strategy(version.0)
    }
}

/// A request: it knows its API key and the response it gets.
pub trait Request: Message {
    /// The API key (the request header's `request_api_key`).
    const API_KEY: ApiKey;
    /// The versions a client negotiates: [`Message::VERSIONS`] without a latest version the
    /// schema marks unstable (`latestVersionUnstable`, such as InitProducerId v6 in Kafka
    /// 4.4), which brokers serve only when configured to and the Java client never sends.
    /// Such a version still encodes and decodes, for code that asks for it by number.
    const STABLE_VERSIONS: VersionRange;
    /// The matching response.
    type Response: Response;
}

/// A response to a [`Request`].
pub trait Response: Message {
    /// The API key.
    const API_KEY: ApiKey;
    /// The matching request.
    type Request: Request;
}
