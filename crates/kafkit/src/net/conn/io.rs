//! A connection's two tasks: the writer, which owns the write half and writes frames in
//! the order they were queued, and the reader, which matches response frames to the
//! requests written.

use super::{fail_all, shutdown, ReadHalf, Reply, Shared, WriteHalf};
use crate::error::Error;
use bytes::{Bytes, BytesMut};
use kafkit_protocol::frame::split_frame;
use kafkit_protocol::EncodeError;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Appends a request's whole frame (size prefix, header, body) to a buffer.
pub(super) type Encode = Box<dyn FnOnce(&mut BytesMut) -> Result<(), EncodeError> + Send>;

/// A request's frame as queued.
pub(super) enum Frame {
    /// Encoded when it was queued.
    Ready(Bytes),
    /// Encoded by the writer when it takes the request, into the connection's one frame
    /// buffer: a Produce request, which shares its record batches with the producer rather
    /// than copying them, so requests waiting to be written hold no second copy of their
    /// records. `size` is the frame's expected length, reserved up front.
    Deferred { encode: Encode, size: usize },
}

/// A request waiting for the writer.
pub(super) struct Outgoing {
    pub(super) frame: Frame,
    pub(super) correlation_id: i32,
    /// `None` for requests the broker does not answer (Produce with acks=0).
    pub(super) reply: Option<(i32, Reply)>,
    /// An [`Exclusive`](super::Exclusive) stretch begins here (the frame is empty): the writer takes frames
    /// only from this receiver until its sender is dropped.
    pub(super) exclusive: Option<mpsc::Receiver<Outgoing>>,
}

/// Requests written and not yet answered, in the order they were written.
pub(super) type InFlight = Arc<Mutex<Pending>>;

/// What the reader matches responses against.
#[derive(Default)]
pub(super) struct Pending {
    /// Requests that expect a response, in write order.
    pub(super) replies: VecDeque<(i32, Reply)>,
    /// Correlation ids of recent requests that expect none (Produce with acks=0). A Kafka
    /// broker never answers them; some brokers (this Tansu build) do, and such a response is
    /// dropped rather than taken for a corrupt stream.
    pub(super) unanswered: VecDeque<i32>,
    /// Since when the request at the head of `replies` has been waiting with nothing heard
    /// from the broker: when it was queued, or when the response before it arrived.
    pub(super) waiting_since: Option<std::time::Instant>,
}

/// How many acks=0 correlation ids are remembered.
const UNANSWERED_MEMORY: usize = 1024;

pub(super) async fn write_loop(
    wr: WriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    in_flight: InFlight,
    shared: std::sync::Weak<Shared>,
) {
    let mut w = Writer { wr, scratch: BytesMut::new(), in_flight, shared };
    while let Some(mut out) = rx.recv().await {
        if let Some(mut only) = out.exclusive.take() {
            // An exclusive stretch: its frames alone, until its sender goes.
            while let Some(out) = only.recv().await {
                if !w.write_one(out, !only.is_empty()).await {
                    return;
                }
            }
            continue;
        }
        if !w.write_one(out, !rx.is_empty()).await {
            return;
        }
    }
    // Every Conn is gone: let the broker see the end of the stream.
    let _ = w.wr.shutdown().await;
}

/// The writer task's state.
struct Writer {
    wr: WriteHalf,
    /// Where deferred frames are encoded, one at a time: kept while more requests wait,
    /// given back to the pool when the queue empties, so an idle connection holds no large
    /// buffer.
    scratch: BytesMut,
    in_flight: InFlight,
    shared: std::sync::Weak<Shared>,
}

impl Writer {
    /// Writes one frame (`more`: others wait behind it); `false` when the connection failed.
    async fn write_one(&mut self, out: Outgoing, more: bool) -> bool {
        let ready = match out.frame {
            Frame::Ready(b) => Some(b),
            Frame::Deferred { encode, size } => {
                if self.scratch.capacity() < size {
                    self.scratch = frame_buffer(size);
                }
                self.scratch.clear();
                if let Err(source) = encode(&mut self.scratch) {
                    // Nothing was written: the connection stays good, the request fails.
                    self.scratch.clear();
                    if let Some((_, reply)) = out.reply {
                        let addr = self.shared.upgrade().map(|s| s.addr.clone()).unwrap_or_default();
                        let _ = reply.send(Err(Error::Encode { addr, source }));
                    }
                    return true;
                }
                None
            }
        };
        if !self.expect_reply(out.correlation_id, out.reply) {
            return false;
        }
        let bytes: &[u8] = match &ready {
            Some(b) => b,
            None => &self.scratch,
        };
        if let Err(e) = self.wr.write_all(bytes).await {
            if let Some(s) = self.shared.upgrade() {
                shutdown(&s, &format!("write failed: {e}"));
            }
            return false;
        }
        match ready {
            Some(frame) if frame.len() >= POOLED_FRAME_BYTES => {
                if let Ok(buf) = frame.try_into_mut() {
                    kafkit_protocol::pool::give(Vec::from(buf));
                }
            }
            Some(_) => {}
            None => {
                self.scratch.clear();
                if !more && self.scratch.capacity() >= POOLED_FRAME_BYTES {
                    kafkit_protocol::pool::give(Vec::from(std::mem::take(&mut self.scratch)));
                }
            }
        }
        true
    }

    /// Queues the reply (or notes the correlation id of a request with none) before the
    /// first byte is written, so the reader can always match; `false` when poisoned.
    fn expect_reply(&self, correlation_id: i32, reply: Option<(i32, Reply)>) -> bool {
        let Ok(mut q) = self.in_flight.lock() else { return false };
        match reply {
            Some(reply) => {
                if q.replies.is_empty() {
                    q.waiting_since = Some(std::time::Instant::now());
                }
                q.replies.push_back(reply)
            }
            None => {
                if q.unanswered.len() == UNANSWERED_MEMORY {
                    q.unanswered.pop_front();
                }
                q.unanswered.push_back(correlation_id);
            }
        }
        true
    }
}

/// An empty buffer with room for a frame of `size` bytes: a large one from the pool, no
/// more than about twice `size` (its pages are reused, not faulted in afresh for every
/// request).
fn frame_buffer(size: usize) -> BytesMut {
    if size < POOLED_FRAME_BYTES {
        return BytesMut::with_capacity(size);
    }
    let v = kafkit_protocol::pool::take_within(size, 2 * size + 4096);
    // Empty with spare capacity, so `Bytes` keeps its allocation and hands it back whole.
    Bytes::from(v).try_into_mut().unwrap_or_else(|_| BytesMut::with_capacity(size))
}

/// Makes room to read into. A frame whose size prefix is in is given room toward its
/// end, growing at most to twice what has arrived (plus 64 KiB), so a large response is
/// copied a few times rather than once per 64 KiB, and a size prefix alone never makes a big
/// allocation.
fn reserve_for_frame(buf: &mut BytesMut) {
    const STEP: usize = 64 * 1024;
    let declared = (buf.len() >= 4).then(|| i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]).max(0) as usize + 4);
    let missing = declared.map_or(STEP, |d| d.saturating_sub(buf.len()).max(STEP / 8));
    let want = missing.min(buf.len().max(STEP));
    let spare = buf.capacity() - buf.len();
    if spare < STEP / 8 || spare < want / 2 {
        buf.reserve(want);
    }
}

/// Frames at least this long are read straight into a buffer of their own from the pool
/// (`kafkit_protocol::pool`), which the messages pointing into them give back once dropped.
pub(super) const POOLED_FRAME_BYTES: usize = 128 << 10;

pub(super) async fn read_loop(
    mut rd: ReadHalf,
    in_flight: InFlight,
    shared: std::sync::Weak<Shared>,
    max_response_bytes: usize,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let reason = loop {
        match split_frame(&mut buf, max_response_bytes) {
            Ok(Some(frame)) => match dispatch(frame, &in_flight, &shared) {
                Ok(()) => continue,
                Err(reason) => break reason,
            },
            Ok(None) => {}
            Err(e) => {
                break crate::net::tls::answered_with_tls(&buf).unwrap_or_else(|| format!("bad response frame: {e}"))
            }
        }
        let declared = (buf.len() >= 4).then(|| i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]).max(0) as usize);
        if let Some(size) = declared.filter(|s| *s >= POOLED_FRAME_BYTES) {
            // A large frame (split_frame checked its size): the rest of it goes straight
            // into a pooled buffer. `buf` holds less than this one frame.
            let mut body = kafkit_protocol::pool::take(size);
            let mut filled = buf.len() - 4;
            kafkit_protocol::pool::room(&mut body, filled, size);
            body[..filled].copy_from_slice(&buf[4..]);
            buf.clear();
            let mut failed = None;
            while filled < size {
                let end = kafkit_protocol::pool::room(&mut body, filled, size);
                match rd.read(&mut body[filled..end]).await {
                    Ok(0) => {
                        failed = Some("the broker closed the connection".to_string());
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) => {
                        failed = Some(format!("read failed: {e}"));
                        break;
                    }
                }
            }
            if let Some(reason) = failed {
                kafkit_protocol::pool::give(body);
                break reason;
            }
            match dispatch(kafkit_protocol::pool::freeze(body, size), &in_flight, &shared) {
                Ok(()) => continue,
                Err(reason) => break reason,
            }
        }
        reserve_for_frame(&mut buf);
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                break crate::net::tls::answered_with_tls(&buf)
                    .unwrap_or_else(|| "the broker closed the connection".to_string())
            }
            Ok(_) => {}
            Err(e) => break crate::net::tls::read_failure(&e),
        }
    };
    match shared.upgrade() {
        Some(s) => shutdown(&s, &reason),
        None => fail_all(&in_flight, "", &reason),
    }
}

/// Hands a response frame to the request waiting for it. `Err` is why the connection must
/// close.
fn dispatch(frame: Bytes, in_flight: &InFlight, shared: &std::sync::Weak<Shared>) -> std::result::Result<(), String> {
    let got = (frame.len() >= 4).then(|| i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]));
    let next = {
        let Ok(mut q) = in_flight.lock() else { return Err("connection state poisoned".to_string()) };
        let expected = q.replies.front().map(|r| r.0);
        if got.is_some() && got != expected {
            if let Some(i) = q.unanswered.iter().position(|c| Some(*c) == got) {
                q.unanswered.remove(i);
                return Ok(());
            }
        }
        let next = q.replies.pop_front();
        q.waiting_since = (!q.replies.is_empty()).then(std::time::Instant::now);
        next
    };
    let Some((corr, reply)) = next else {
        return Err("a response arrived for no request".to_string());
    };
    if got != Some(corr) {
        let _ = reply.send(Err(Error::ConnectionClosed {
            addr: shared.upgrade().map(|s| s.addr.clone()).unwrap_or_default(),
            reason: "response correlation id out of order".into(),
        }));
        return Err("response correlation id out of order".to_string());
    }
    let _ = reply.send(Ok(frame));
    Ok(())
}
