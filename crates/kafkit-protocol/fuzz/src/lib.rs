//! Shared by the fuzz targets: an allocator that tracks the peak of live heap bytes, so a
//! target can assert that decoding never holds more memory than its input justifies.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live and peak heap bytes.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns the most heap bytes that were live at once above what was live
/// before it started.
pub fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

/// The decoding contract's memory bound for messages: this multiple of the input length,
/// plus a small constant. Generated structs are at most a few dozen times larger in memory
/// than their smallest encoding, and arrays reserve only what the remaining input can hold.
pub const MESSAGE_FACTOR: usize = 64;
/// A constant allowance for small fixed allocations (error paths, string buffers).
pub const SLACK: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static A: Counting = Counting;

    #[test]
    fn peak_sees_what_a_closure_holds_at_once() {
        let peak = peak_during(|| {
            let a = vec![1u8; 100_000];
            let b = vec![2u8; 50_000];
            assert_eq!(a.len() + b.len(), 150_000);
        });
        assert!((150_000..160_000).contains(&peak), "{peak}");
        // A decode of a hostile array length holds next to nothing.
        let peak = peak_during(|| {
            let _ = kafkit_protocol::frame::decode_request(bytes::Bytes::from_static(&[
                0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff,
            ]));
        });
        assert!(peak < 4096, "{peak}");
    }
}
