//! Any bytes, decoded as a response (or a request) of an API key and version taken from the
//! input, must give a value or an error, never a panic, and never hold more heap than
//! `MESSAGE_FACTOR` times the input. Input: byte 0 bit 0 picks response (0) or request (1);
//! for a response bytes 1-4 are the API key and version (big-endian i16 each) and the rest a
//! response frame (header + body); for a request the rest is a request frame.
#![no_main]

use bytes::Bytes;
use kafkit_protocol::frame::{decode_request, decode_response};
use kafkit_protocol::ApiKey;
use kafkit_protocol_fuzz::{peak_during, Counting, MESSAGE_FACTOR, SLACK};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static A: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let input = Bytes::copy_from_slice(&data[1..]);
    let len = input.len();
    let peak = peak_during(|| {
        if data[0] & 1 == 1 {
            let _ = decode_request(input);
        } else if input.len() >= 4 {
            let key = i16::from_be_bytes([input[0], input[1]]);
            let version = i16::from_be_bytes([input[2], input[3]]);
            let Some(key) = ApiKey::from_key(key) else { return };
            let _ = decode_response(input.slice(4..), key, version.into());
        }
    });
    assert!(peak <= MESSAGE_FACTOR * len + SLACK, "decoding {len} bytes held {peak} heap bytes");
});
