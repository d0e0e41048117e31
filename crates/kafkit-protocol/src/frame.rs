//! Request and response frames: a 4-byte size, a header, a body.
//!
//! The header version follows from the API version, as the schemas say: a request in a
//! flexible version uses `RequestHeader` v2 (tagged fields), otherwise v1 (only
//! ControlledShutdown v0 used v0, and Kafka 4.0 removed that API); a response in a flexible
//! version uses `ResponseHeader` v1, otherwise v0, except ApiVersions, whose response header
//! is always v0 so a client can read it before it knows what the broker speaks (KIP-511).

use crate::message::{Message, Request};
use crate::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use crate::{ApiVersion, DecodeError, DecodeErrorKind, EncodeError};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The request header version for `key` at `version`.
pub fn request_header_version(key: ApiKey, version: ApiVersion) -> ApiVersion {
    if key.flexible_versions().contains(version) {
        ApiVersion(2)
    } else {
        ApiVersion(1)
    }
}

/// The response header version for `key` at `version`.
pub fn response_header_version(key: ApiKey, version: ApiVersion) -> ApiVersion {
    if key == ApiKey::ApiVersions {
        ApiVersion(0)
    } else if key.response_flexible_versions().contains(version) {
        ApiVersion(1)
    } else {
        ApiVersion(0)
    }
}

/// Appends a whole request frame: size, header (`correlation_id`, `client_id`) and `req`
/// encoded at `version`.
///
/// # Errors
/// As [`Message::encode`].
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    req: &R,
    version: ApiVersion,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    let header = RequestHeader::default()
        .with_request_api_key(R::API_KEY.key())
        .with_request_api_version(version.0)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(str::to_owned));
    header.encode(buf, request_header_version(R::API_KEY, version))?;
    req.encode(buf, version)?;
    patch_size(buf, start)
}

/// Appends a whole response frame: size, header and `resp` encoded at `version`. For servers
/// and test brokers.
///
/// # Errors
/// As [`Message::encode`].
pub fn encode_response(
    buf: &mut BytesMut,
    correlation_id: i32,
    resp: &ResponseKind,
    version: ApiVersion,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(buf, response_header_version(resp.api_key(), version))?;
    resp.encode(buf, version)?;
    patch_size(buf, start)
}

fn patch_size(buf: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
    let size = buf.len() - start - 4;
    if size > i32::MAX as usize {
        return Err(EncodeError::Invalid("frame larger than 2 GiB"));
    }
    buf[start..start + 4].copy_from_slice(&(size as i32).to_be_bytes());
    Ok(())
}

/// Splits one whole frame (without its size prefix) off the front of `buf`, if it holds one.
/// `Ok(None)` means more bytes are needed: not an error.
///
/// # Errors
/// [`DecodeErrorKind::InvalidLength`] for a negative size or one above `max_size` (the
/// connection should then be closed).
pub fn split_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Bytes>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 || size as usize > max_size {
        return Err(DecodeError::new(DecodeErrorKind::InvalidLength(size as i64)));
    }
    if buf.len() < 4 + size as usize {
        // The caller makes room: a size prefix alone must not make a big allocation.
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size as usize).freeze()))
}

/// Reads the header of a response frame (as returned by [`split_frame`]) sent for API `key`
/// at `version`, returning the header and leaving `frame` at the body.
///
/// # Errors
/// A [`DecodeError`] if the header is malformed.
pub fn decode_response_header(
    frame: &mut Bytes,
    key: ApiKey,
    version: ApiVersion,
) -> Result<ResponseHeader, DecodeError> {
    ResponseHeader::decode(frame, response_header_version(key, version))
}

/// Reads a whole response frame body for API `key` at `version`: header, then body, and
/// checks nothing is left over.
///
/// # Errors
/// A [`DecodeError`] naming the response, version and field; trailing bytes are an error.
#[inline]
pub fn decode_response(
    mut frame: Bytes,
    key: ApiKey,
    version: ApiVersion,
) -> Result<(ResponseHeader, ResponseKind), DecodeError> {
    let header = decode_response_header(&mut frame, key, version)?;
    let body = ResponseKind::decode(key.key(), &mut frame, version)?;
    if !frame.is_empty() {
        return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(frame.len())));
    }
    Ok((header, body))
}

/// Reads a whole request frame (as returned by [`split_frame`]): the API key and version from
/// the first four bytes, the header at the version they imply, then the body. For servers and
/// test brokers.
///
/// # Errors
/// [`DecodeErrorKind::UnknownApiKey`], or a [`DecodeError`] naming the request and field.
#[inline]
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestKind), DecodeError> {
    if frame.len() < 4 {
        return Err(DecodeError::new(DecodeErrorKind::UnexpectedEof { needed: 4, remaining: frame.len() }));
    }
    let key_num = i16::from_be_bytes([frame[0], frame[1]]);
    let version = ApiVersion(i16::from_be_bytes([frame[2], frame[3]]));
    let key = ApiKey::from_key(key_num).ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownApiKey(key_num)))?;
    let header = RequestHeader::decode(&mut frame, request_header_version(key, version))?;
    let body = RequestKind::decode(key_num, &mut frame, version)?;
    if !frame.is_empty() {
        return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(frame.len())));
    }
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ApiVersionsResponse, MetadataRequest};

    #[test]
    fn header_versions_follow_the_schemas() {
        assert_eq!(request_header_version(ApiKey::Metadata, ApiVersion(8)), ApiVersion(1));
        assert_eq!(request_header_version(ApiKey::Metadata, ApiVersion(9)), ApiVersion(2));
        assert_eq!(response_header_version(ApiKey::Metadata, ApiVersion(9)), ApiVersion(1));
        assert_eq!(response_header_version(ApiKey::ApiVersions, ApiVersion(3)), ApiVersion(0));
        assert_eq!(response_header_version(ApiKey::Produce, ApiVersion(8)), ApiVersion(0));
    }

    #[test]
    fn request_frames_round_trip() {
        let req = MetadataRequest::default().with_topics(None);
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 7, Some("kafkit"), &req, ApiVersion(12)).unwrap();
        let frame = split_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert!(buf.is_empty());
        let (h, body) = decode_request(frame).unwrap();
        assert_eq!(h.correlation_id, 7);
        assert_eq!(h.client_id.as_deref(), Some("kafkit"));
        assert_eq!(body, RequestKind::Metadata(req));
    }

    #[test]
    fn response_frames_round_trip_with_the_api_versions_exception() {
        let resp = ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(35));
        let mut buf = BytesMut::new();
        encode_response(&mut buf, 9, &resp, ApiVersion(3)).unwrap();
        // Header v0: size, then correlation id, then the body's error code straight away.
        assert_eq!(&buf[4..8], &9i32.to_be_bytes());
        assert_eq!(&buf[8..10], &35i16.to_be_bytes());
        let frame = split_frame(&mut buf, 1 << 20).unwrap().unwrap();
        let (h, body) = decode_response(frame, ApiKey::ApiVersions, ApiVersion(3)).unwrap();
        assert_eq!(h.correlation_id, 9);
        assert_eq!(body, resp);
    }

    #[test]
    fn split_frame_waits_for_more_and_refuses_oversized() {
        let mut buf = BytesMut::from(&[0, 0, 0, 5, 1, 2][..]);
        assert_eq!(split_frame(&mut buf, 100).unwrap(), None);
        let mut big = BytesMut::from(&[0x7f, 0, 0, 0][..]);
        assert!(split_frame(&mut big, 100).is_err());
    }
}
