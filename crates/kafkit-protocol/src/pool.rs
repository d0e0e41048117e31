//! Reused buffers for large response frames and decompressed record batches.
//!
//! A consumer reads a fetch response, or decompresses a batch, into a buffer of a megabyte
//! or more, hands out messages that point into it, and drops it once the application has
//! dropped them all. Freshly allocated, every such buffer costs a page fault per 4 KiB page
//! and a return of its pages to the system: a third of a consumer's CPU in profiles. A
//! buffer taken from here goes back here when the last [`Bytes`] pointing into it is
//! dropped, and the next frame or batch reuses its pages.
//!
//! The pool is process-wide and small: it keeps at most [`MAX_BUFFERS`] buffers of at most
//! [`MAX_BUFFER_BYTES`] each, [`MAX_POOLED_BYTES`] in all; past that a returned buffer is
//! freed.

use bytes::Bytes;
use std::sync::Mutex;

/// Buffers the pool keeps at most.
pub const MAX_BUFFERS: usize = 32;
/// Larger buffers are freed, not kept.
pub const MAX_BUFFER_BYTES: usize = 16 << 20;
/// Bytes the pool keeps at most, over all its buffers.
pub const MAX_POOLED_BYTES: usize = 64 << 20;

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    /// Takes free buffer `i` out of the pool.
    fn remove(&mut self, i: usize) -> Vec<u8> {
        let b = self.free.swap_remove(i);
        self.bytes -= b.capacity();
        b
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: Vec::new(), bytes: 0 });

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A buffer to fill for about `want` bytes: from the pool, the shortest of those at least
/// `want` bytes long but no longer than [`near`]`(want)`, else the longest shorter than
/// `want` (to be grown), else a new empty one. Its whole length is initialized (it holds
/// old data), so it can be read into as it is; grow it with [`room`] when it is too short.
///
/// A much longer buffer is left for a larger frame: its initialized pages are resident, and
/// the messages pointing into it would keep all of them alive for a few bytes.
pub fn take(want: usize) -> Vec<u8> {
    let most = near(want);
    let mut p = pool();
    let fits = p.free.iter().enumerate().filter(|(_, b)| (want..=most).contains(&b.len())).min_by_key(|(_, b)| b.len());
    let pick = fits
        .or_else(|| p.free.iter().enumerate().filter(|(_, b)| b.len() < want).max_by_key(|(_, b)| b.len()))
        .map(|(i, _)| i);
    match pick {
        Some(i) => p.remove(i),
        None => Vec::new(),
    }
}

/// The longest buffer [`take`] hands out for `want` bytes: twice that, plus 64 KiB.
pub fn near(want: usize) -> usize {
    want.saturating_mul(2).saturating_add(64 << 10)
}

/// An empty buffer with room for `want` bytes and no more than `most`: the smallest such
/// one from the pool, else a new one of exactly `want`. For a buffer whose size is
/// accounted (a producer's batch counts its whole capacity against `queue_bytes`), where
/// [`take`]'s much larger buffer would cost more than it saves.
pub fn take_within(want: usize, most: usize) -> Vec<u8> {
    let found = {
        let mut p = pool();
        let pick = p
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| (want..=most).contains(&b.capacity()))
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        pick.map(|i| p.remove(i))
    };
    match found {
        Some(mut b) => {
            b.clear();
            b
        }
        None => Vec::with_capacity(want),
    }
}

/// Gives back a buffer that is not needed after all.
pub fn give(buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_BUFFER_BYTES {
        return;
    }
    let mut p = pool();
    if p.free.len() < MAX_BUFFERS && p.bytes + buf.capacity() <= MAX_POOLED_BYTES {
        p.bytes += buf.capacity();
        p.free.push(buf);
    }
}

/// The first `len` bytes of `buf` as [`Bytes`]; `buf` goes back to the pool when the last
/// `Bytes` pointing into it is dropped.
///
/// # Panics
/// Never: a `len` past the buffer's length is cut to it.
pub fn freeze(buf: Vec<u8>, len: usize) -> Bytes {
    let len = len.min(buf.len());
    Bytes::from_owner(Pooled { buf, len })
}

struct Pooled {
    buf: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.buf));
    }
}

/// Grows `buf` (zero-filled) so that `filled` bytes plus the next read fit: toward `want`
/// bytes in all, but at most to twice what is filled plus 64 KiB, so that a length
/// announced by a peer is never allocated before its bytes arrive. Returns the length the
/// next read may fill up to.
pub fn room(buf: &mut Vec<u8>, filled: usize, want: usize) -> usize {
    let limit = want.min(filled.saturating_mul(2) + (64 << 10));
    if buf.len() < limit && buf.len() - filled.min(buf.len()) < 16 << 10 {
        // Exactly: `resize` alone may double the capacity, and a frame of 2 MiB read in
        // steps would then sit in 4 MiB. The steps grow geometrically themselves.
        buf.reserve_exact(limit - buf.len());
        buf.resize(limit, 0);
    }
    buf.len().min(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_taken_again_with_its_contents_initialized() {
        let mut b = take(1 << 20);
        b.clear();
        let marker = (1 << 20) + 123_457;
        b.resize(marker, 7);
        let bytes = freeze(b, 10);
        assert_eq!(&bytes[..], &[7u8; 10][..]);
        let half = bytes.slice(2..5);
        drop(bytes);
        // Still referenced: not back yet.
        assert!(pool().free.iter().all(|b| b.len() != marker));
        drop(half);
        let again = take(marker);
        assert_eq!(again.len(), marker, "the same buffer comes back, whole");
        assert!(again.capacity() >= marker);
        give(again);
    }

    #[test]
    fn take_within_never_hands_out_a_buffer_outside_its_bounds() {
        // A capacity no other test gives back. A test running at once may still take it
        // (`take` falls back to the longest buffer); a new buffer then comes back, within
        // the bounds too.
        let odd = (3 << 20) + 4099;
        give(Vec::with_capacity(odd));
        let small = take_within(1000, 2000);
        assert!((1000..=2000).contains(&small.capacity()));
        assert!(small.is_empty());
        let b = take_within(odd - 10, odd + 10);
        assert!(b.is_empty() && b.capacity() >= odd - 10 && b.capacity() <= odd + 10);
        give(b);
    }

    #[test]
    fn room_grows_with_what_has_arrived_not_with_what_is_announced() {
        let mut b = Vec::new();
        let end = room(&mut b, 0, 100 << 20);
        assert_eq!(end, 64 << 10);
        let end = room(&mut b, 64 << 10, 100 << 20);
        assert_eq!(end, 192 << 10);
        // A short frame: exactly its length.
        let mut b = Vec::new();
        assert_eq!(room(&mut b, 0, 10), 10);
    }

    #[test]
    fn a_buffer_far_longer_than_asked_for_is_left_for_a_larger_frame() {
        // A length no other test gives back.
        let (long, short) = ((7 << 20) + 77, (1 << 20) + 77);
        give(vec![1u8; long]);
        let b = take(short);
        assert_ne!(b.len(), long, "a 7 MiB buffer is not pinned for 1 MiB");
        give(b);
    }

    #[test]
    fn room_grows_a_buffer_to_the_frame_not_past_it() {
        let want = (2 << 20) + 150;
        let (mut b, mut filled) = (Vec::new(), 0);
        while filled < want {
            filled = room(&mut b, filled, want);
        }
        assert_eq!(b.len(), want);
        assert!(b.capacity() < want + (want >> 2), "capacity {} for a frame of {want}", b.capacity());
    }

    #[test]
    fn huge_buffers_are_not_kept() {
        let big = vec![0u8; MAX_BUFFER_BYTES + 1];
        give(big);
        assert!(pool().free.iter().all(|b| b.capacity() <= MAX_BUFFER_BYTES));
    }
}
