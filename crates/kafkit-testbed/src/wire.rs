//! For the few tests that must play a broker no real one can be made to be (a forged SCRAM
//! signature, a partition id of 2,147,483,000): reading requests off a socket, frame by frame.

use bytes::BytesMut;
use kafkit_protocol::frame::{decode_request, split_frame};
use kafkit_protocol::messages::{RequestHeader, RequestKind};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request frame [`next_request`] takes, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The next request on `sock`, read into `buf` (which keeps what follows it). `None` when the
/// peer closed the connection, or sent a frame over [`MAX_REQUEST_BYTES`] or one that does not
/// decode: the server then drops the connection, as a broker would.
pub async fn next_request(
    sock: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Option<(RequestHeader, RequestKind)> {
    loop {
        match split_frame(buf, MAX_REQUEST_BYTES) {
            Ok(Some(frame)) => return decode_request(frame).ok(),
            Ok(None) => {}
            Err(_) => return None,
        }
        if sock.read_buf(buf).await.unwrap_or(0) == 0 {
            return None;
        }
    }
}
