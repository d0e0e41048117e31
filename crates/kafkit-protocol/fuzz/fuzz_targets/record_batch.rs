//! Any bytes, read as a partition's records (v2 batches and legacy message sets, every codec),
//! must give batches or an error, never a panic, and never hold more heap than a multiple of
//! the input plus the decompression limit.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafkit_protocol::record::{DecodeOptions, RecordSet};
use kafkit_protocol_fuzz::{peak_during, Counting, MESSAGE_FACTOR, SLACK};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static A: Counting = Counting;

/// The decompression limit under test.
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let len = input.len();
    let opts = DecodeOptions::default().with_max_decompressed_bytes(LIMIT);
    let mut ok = Vec::new();
    let peak = peak_during(|| {
        for b in RecordSet::new(input.clone(), opts) {
            match b {
                Ok(b) => ok.push(b),
                Err(_) => break,
            }
        }
    });
    // Decompressed output may grow to twice the limit while a vector doubles, and codecs
    // keep windows and block buffers of at most the limit.
    assert!(peak <= MESSAGE_FACTOR * len + 4 * LIMIT + SLACK, "decoding {len} bytes held {peak} heap bytes");
    // What decodes must encode and decode again to the same records.
    for b in ok.iter().filter(|b| b.magic == 2) {
        let mut buf = BytesMut::new();
        b.encode(&mut buf).expect("a decoded batch encodes");
        let again: Vec<_> = RecordSet::new(buf.freeze(), opts).collect::<Result<_, _>>().expect("re-decodes");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].records, b.records);
    }
});
