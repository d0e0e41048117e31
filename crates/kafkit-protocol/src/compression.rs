//! Compression codecs of record batches: gzip, snappy, lz4 and zstd (the `compression.type`
//! producer setting; codec ids are the low 3 bits of a batch's attributes).
//!
//! Decompression is capped: output beyond the limit given (by default
//! [`DEFAULT_MAX_DECOMPRESSED_BYTES`]) is an error, so a small hostile batch cannot make the
//! decoder allocate without bound.

use crate::{DecodeError, DecodeErrorKind, EncodeError};
use bytes::{BufMut, Bytes, BytesMut};
use std::io::{Read, Write};

/// The default cap on the decompressed size of one record batch: 64 MiB.
///
/// The broker's own limits (`message.max.bytes`, default 1 MiB compressed) make larger
/// legitimate batches rare; raise it with `DecodeOptions::max_decompressed_bytes` if your
/// producers send highly compressible batches bigger than this.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// A record batch compression codec (Java `compression.type`, librdkafka
/// `compression.codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression (codec 0).
    #[default]
    None,
    /// gzip, RFC 1952 (codec 1).
    Gzip,
    /// snappy (codec 2). Written in the xerial framing the Java client writes; read in both
    /// that framing and raw snappy (what some other clients write).
    Snappy,
    /// lz4, frame format (codec 3).
    Lz4,
    /// zstd (codec 4; needs Produce v7+ / Fetch v10+, KIP-110).
    Zstd,
}

impl Compression {
    /// The codec id in a batch's attributes.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
    /// The codec with this id.
    pub const fn from_id(id: u8) -> Option<Compression> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }
    /// The name used by the Java and librdkafka settings (`none`, `gzip`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" | "" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            other => return Err(format!("unknown compression {other:?} (none, gzip, snappy, lz4, zstd)")),
        })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Uncompressed block size of the xerial framing (the Java client's `SnappyOutputStream`).
const XERIAL_BLOCK: usize = 32 * 1024;

fn cerr(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Compression(e.to_string())
}

/// Appends `input` compressed with `codec` to `out` (default levels: gzip 6, zstd 3, as the
/// Java client).
///
/// # Errors
/// [`EncodeError::Compression`] if the codec fails (it does not on valid input).
pub fn compress(codec: Compression, input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(6));
            enc.write_all(input).map_err(cerr)?;
            enc.finish().map_err(cerr)?;
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.put_i32(1); // version
            out.put_i32(1); // minimum compatible version
            let mut enc = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_BLOCK) {
                let start = out.len();
                out.put_i32(0);
                let max = snap::raw::max_compress_len(chunk.len());
                out.resize(start + 4 + max, 0);
                let n = enc.compress(chunk, &mut out[start + 4..]).map_err(cerr)?;
                out.truncate(start + 4 + n);
                out[start..start + 4].copy_from_slice(&(n as i32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            // 64 KiB blocks, as the Java client (KafkaLZ4BlockOutputStream) and librdkafka write.
            let info = lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max64KB);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out.writer());
            enc.write_all(input).map_err(cerr)?;
            enc.finish().map_err(cerr)?;
        }
        Compression::Zstd => {
            let start = out.len();
            let max = zstd::zstd_safe::compress_bound(input.len());
            out.resize(start + max, 0);
            let n = ZSTD_CTX.with(|c| {
                let mut c = c.borrow_mut();
                c.compress_to_buffer(input, &mut out[start..]).map_err(cerr)
            })?;
            out.truncate(start + n);
        }
    }
    Ok(())
}

thread_local! {
    static ZSTD_CTX: std::cell::RefCell<zstd::bulk::Compressor<'static>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(3).expect("zstd level 3 is valid"));
}

/// Writes raw (unframed) snappy, as some non-Java clients do. Kept for tests and for the test
/// cluster; [`compress`] writes the Java client's xerial framing.
///
/// # Errors
/// [`EncodeError::Compression`] if the codec fails.
pub fn compress_raw_snappy(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    let v = snap::raw::Encoder::new().compress_vec(input).map_err(cerr)?;
    out.extend_from_slice(&v);
    Ok(())
}

fn derr(msg: impl Into<String>) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Decompression(msg.into()))
}

fn too_big(limit: usize) -> DecodeError {
    derr(format!("output exceeds the limit of {limit} bytes"))
}

/// Reads `r` to its end into a vector, failing once the output would pass `limit` bytes.
fn read_capped(r: impl Read, limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1).read_to_end(&mut out).map_err(|e| derr(format!("{e} (output limit {limit} bytes)")))?;
    if out.len() > limit {
        return Err(too_big(limit));
    }
    Ok(out)
}

/// The largest output raw snappy can produce per input byte (a 3-byte copy of 64 bytes).
const SNAPPY_MAX_RATIO: usize = 22;

fn snappy_raw(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let n = snap::raw::decompress_len(input).map_err(|e| derr(e.to_string()))?;
    if n > limit.saturating_sub(out.len()) {
        return Err(too_big(limit));
    }
    if n > input.len().saturating_mul(SNAPPY_MAX_RATIO) + 64 {
        return Err(derr("snappy length header larger than the input can expand to"));
    }
    let start = out.len();
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new().decompress(input, &mut out[start..]).map_err(|e| derr(e.to_string()))?;
    out.truncate(start + written);
    Ok(())
}

/// As [`decompress`], into a buffer from [`crate::pool`] that goes back to the pool when
/// the last `Bytes` pointing into it is dropped: what record batches are decoded with.
///
/// # Errors
/// As [`decompress`].
pub fn decompress_bytes(codec: Compression, input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    match stream_decoder(codec, input, limit)? {
        // Most batches inflate 1.5-4x: a buffer near twice the input is taken, and grown.
        Some(r) => read_pooled(r, input.len().saturating_mul(2).min(limit), limit),
        None => decompress_whole(codec, input, limit).map(Bytes::from),
    }
}

/// The reading decoder of a streamed codec (gzip, lz4, zstd), with its up-front reservations
/// kept within `limit`; `None` for the codecs decoded whole (none, snappy).
fn stream_decoder<'a>(
    codec: Compression,
    input: &'a [u8],
    limit: usize,
) -> Result<Option<Box<dyn Read + 'a>>, DecodeError> {
    Ok(Some(match codec {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Lz4 => {
            check_lz4_block_size(input, limit)?;
            Box::new(lz4_flex::frame::FrameDecoder::new(input))
        }
        Compression::Zstd => Box::new(zstd_decoder(input, limit)?),
        Compression::None | Compression::Snappy => return Ok(None),
    }))
}

/// Reads `r` to its end into a pooled buffer taken for about `expect` bytes, failing past
/// `limit` bytes.
fn read_pooled(mut r: impl Read, expect: usize, limit: usize) -> Result<Bytes, DecodeError> {
    let mut buf = crate::pool::take(expect);
    let mut filled = 0;
    loop {
        let end = crate::pool::room(&mut buf, filled, limit.saturating_add(1));
        match r.read(&mut buf[filled..end]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                crate::pool::give(buf);
                return Err(derr(format!("{e} (output limit {limit} bytes)")));
            }
        }
        if filled > limit {
            crate::pool::give(buf);
            return Err(too_big(limit));
        }
    }
    Ok(crate::pool::freeze(buf, filled))
}

/// The lz4 decoder reserves a buffer of the frame's declared maximum block size (64 KiB to
/// 4 MiB, from the BD byte): refuse sizes past the limit before it does.
fn check_lz4_block_size(input: &[u8], limit: usize) -> Result<(), DecodeError> {
    if input.len() >= 6 && input[..4] == [0x04, 0x22, 0x4d, 0x18] {
        let block = 1usize << (8 + 2 * ((input[5] >> 4) & 0x07) as usize);
        if block > limit.max(64 << 10) {
            return Err(derr(format!("lz4 block size {block} exceeds the limit of {limit} bytes")));
        }
    }
    Ok(())
}

/// A zstd decoder whose window (up to 2^window_log_max bytes, reserved up front) stays
/// within the output limit, and 16 MiB: more than any producer's default level asks for.
fn zstd_decoder(input: &[u8], limit: usize) -> Result<impl Read + '_, DecodeError> {
    let zerr = |e: std::io::Error| derr(format!("{e} (output limit {limit} bytes)"));
    let mut dec = zstd::stream::read::Decoder::with_buffer(input).map_err(zerr)?;
    let log = (usize::BITS - limit.max(1024).saturating_sub(1).leading_zeros()).min(24);
    dec.window_log_max(log).map_err(zerr)?;
    Ok(dec)
}

/// Decompresses `input`, failing if the output would pass `limit` bytes.
///
/// # Errors
/// [`DecodeErrorKind::Decompression`] for corrupt input or output past `limit`.
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    match stream_decoder(codec, input, limit)? {
        Some(r) => read_capped(r, limit),
        None => decompress_whole(codec, input, limit),
    }
}

/// The codecs without a stream decoder: none (a copy) and snappy (raw or xerial-framed).
fn decompress_whole(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if codec == Compression::None {
        if input.len() > limit {
            return Err(too_big(limit));
        }
        return Ok(input.to_vec());
    }
    let mut out = Vec::new();
    if input.len() >= 16 && input[..8] == XERIAL_MAGIC {
        let mut rest = &input[16..];
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(derr("truncated xerial snappy block header"));
            }
            let n = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if n < 0 || n as usize > rest.len() - 4 {
                return Err(derr("xerial snappy block length out of range"));
            }
            snappy_raw(&rest[4..4 + n as usize], limit, &mut out)?;
            rest = &rest[4 + n as usize..];
        }
    } else {
        snappy_raw(input, limit, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for c in ALL {
            let mut out = BytesMut::new();
            compress(c, &input, &mut out).unwrap();
            assert_eq!(decompress(c, &out, 1 << 20).unwrap(), input, "{c}");
        }
    }

    #[test]
    fn pooled_decompression_gives_the_same_bytes_and_keeps_the_limit() {
        let input: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 253).to_le_bytes()).collect();
        for c in ALL {
            let mut out = BytesMut::new();
            compress(c, &input, &mut out).unwrap();
            // Twice: the second time into a buffer the first one gave back to the pool.
            for _ in 0..2 {
                assert_eq!(decompress_bytes(c, &out, 2 << 20).unwrap(), input, "{c}");
            }
            let err = decompress_bytes(c, &out, 1000).unwrap_err();
            assert!(matches!(err.kind(), DecodeErrorKind::Decompression(m) if m.contains("limit")), "{c}: {err}");
        }
    }

    #[test]
    fn output_past_the_limit_is_an_error() {
        let zeros = vec![0u8; 1 << 20];
        for c in ALL {
            let mut out = BytesMut::new();
            compress(c, &zeros, &mut out).unwrap();
            let err = decompress(c, &out, 1000).unwrap_err();
            assert!(matches!(err.kind(), DecodeErrorKind::Decompression(m) if m.contains("limit")), "{c}: {err}");
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let mut out = BytesMut::new();
        compress_raw_snappy(b"hello hello hello", &mut out).unwrap();
        assert_eq!(decompress(Compression::Snappy, &out, 100).unwrap(), b"hello hello hello");
    }

    #[test]
    fn snappy_length_header_cannot_claim_more_than_the_input_holds() {
        // Varint length 2^28 followed by nothing.
        let bomb = [0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(decompress(Compression::Snappy, &bomb, usize::MAX).is_err());
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        for c in &ALL[1..] {
            assert!(decompress(*c, b"\x00\x01garbage\xff\xfe", 1 << 20).is_err(), "{c}");
        }
    }
}
