//! Primitive types of the Kafka wire format (protocol guide, "Protocol Primitive Types"):
//! fixed-width big-endian integers, varints, strings, bytes, arrays, UUIDs and tagged fields,
//! in their classic and compact (flexible-version, KIP-482) encodings.
//!
//! Decoders take `&mut Bytes` and advance it; they check the remaining length before every
//! read and never reserve memory for a length read off the wire beyond what the remaining
//! input can hold. Encoders append to a `BytesMut`.

use crate::codec_error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::Uuid;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Result of a decoder.
pub type DResult<T> = Result<T, DecodeError>;

/// A tagged field this crate's schema does not know (KIP-482), kept as raw bytes so a
/// decoded message encodes back to the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawTaggedField {
    /// The tag number.
    pub tag: u32,
    /// The field's encoded value.
    pub data: Bytes,
}

/// A length that does not fit the length prefix of its encoding.
#[derive(Debug)]
pub struct TooLong(pub usize);

impl TooLong {
    /// Names the field that was too long.
    #[cold]
    pub fn at(self, message: &'static str, field: &'static str) -> EncodeError {
        EncodeError::TooLong { message, field, len: self.0 }
    }
}

#[cold]
fn eof(needed: usize, remaining: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::UnexpectedEof { needed, remaining })
}

/// Fails unless `n` bytes remain.
#[inline]
pub fn need(buf: &Bytes, n: usize) -> DResult<()> {
    if buf.len() < n {
        Err(eof(n, buf.len()))
    } else {
        Ok(())
    }
}

macro_rules! fixed {
    ($get:ident, $put:ident, $t:ty, $n:expr, $bget:ident, $bput:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub fn $get(buf: &mut Bytes) -> DResult<$t> {
            need(buf, $n)?;
            Ok(buf.$bget())
        }
        #[doc = concat!("Writes a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub fn $put(buf: &mut BytesMut, v: $t) {
            buf.$bput(v)
        }
    };
}
fixed!(get_i8, put_i8, i8, 1, get_i8, put_i8);
fixed!(get_i16, put_i16, i16, 2, get_i16, put_i16);
fixed!(get_i32, put_i32, i32, 4, get_i32, put_i32);
fixed!(get_i64, put_i64, i64, 8, get_i64, put_i64);
fixed!(get_u16, put_u16, u16, 2, get_u16, put_u16);
fixed!(get_u32, put_u32, u32, 4, get_u32, put_u32);
fixed!(get_f64, put_f64, f64, 8, get_f64, put_f64);

/// Reads a boolean (one byte; any non-zero value is `true`, as in the Java client).
#[inline]
pub fn get_bool(buf: &mut Bytes) -> DResult<bool> {
    Ok(get_i8(buf)? != 0)
}
/// Writes a boolean as one byte, 0 or 1.
#[inline]
pub fn put_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(v as u8)
}
/// Reads a 16-byte UUID.
#[inline]
pub fn get_uuid(buf: &mut Bytes) -> DResult<Uuid> {
    need(buf, 16)?;
    let mut b = [0u8; 16];
    buf.copy_to_slice(&mut b);
    Ok(Uuid::from_bytes(b))
}
/// Writes a 16-byte UUID.
#[inline]
pub fn put_uuid(buf: &mut BytesMut, v: &Uuid) {
    buf.put_slice(v.as_bytes())
}

/// Reads an unsigned varint of at most 5 bytes (32 bits).
#[inline]
pub fn get_uvarint(buf: &mut Bytes) -> DResult<u32> {
    let mut v: u32 = 0;
    for i in 0..5 {
        need(buf, 1)?;
        let b = buf.get_u8();
        if i == 4 && b > 0x0f {
            return Err(DecodeErrorKind::VarintTooLong.into());
        }
        v |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeErrorKind::VarintTooLong.into())
}
/// Reads an unsigned varint of at most 10 bytes (64 bits).
#[inline]
pub fn get_uvarlong(buf: &mut Bytes) -> DResult<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        need(buf, 1)?;
        let b = buf.get_u8();
        if i == 9 && b > 0x01 {
            return Err(DecodeErrorKind::VarintTooLong.into());
        }
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeErrorKind::VarintTooLong.into())
}
/// Reads a zig-zag signed varint (32 bits).
#[inline]
pub fn get_varint(buf: &mut Bytes) -> DResult<i32> {
    let u = get_uvarint(buf)?;
    Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
}
/// Reads a zig-zag signed varlong (64 bits).
#[inline]
pub fn get_varlong(buf: &mut Bytes) -> DResult<i64> {
    let u = get_uvarlong(buf)?;
    Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
}
/// Writes an unsigned varint.
#[inline]
pub fn put_uvarint(buf: &mut impl BufMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}
/// Writes an unsigned varlong.
#[inline]
pub fn put_uvarlong(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}
/// Writes a zig-zag signed varint.
#[inline]
pub fn put_varint(buf: &mut impl BufMut, v: i32) {
    put_uvarint(buf, ((v << 1) ^ (v >> 31)) as u32)
}
/// Writes a zig-zag signed varlong.
#[inline]
pub fn put_varlong(buf: &mut impl BufMut, v: i64) {
    put_uvarlong(buf, ((v << 1) ^ (v >> 63)) as u64)
}
/// Encoded size of an unsigned varint.
#[inline]
pub const fn len_uvarint(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}
/// Encoded size of an unsigned varlong.
#[inline]
pub const fn len_uvarlong(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}
/// Encoded size of a zig-zag signed varint.
#[inline]
pub const fn len_varint(v: i32) -> usize {
    len_uvarint(((v << 1) ^ (v >> 31)) as u32)
}
/// Encoded size of a zig-zag signed varlong.
#[inline]
pub const fn len_varlong(v: i64) -> usize {
    len_uvarlong(((v << 1) ^ (v >> 63)) as u64)
}

/// Splits `n` bytes off the front of `buf` (no copy).
#[inline]
pub fn take(buf: &mut Bytes, n: usize) -> DResult<Bytes> {
    need(buf, n)?;
    Ok(buf.split_to(n))
}

/// Reads a length prefix; `None` is null. Classic strings use `i16`, classic bytes and arrays
/// `i32`; compact (flexible) forms use an unsigned varint of length + 1.
#[inline]
fn get_len(buf: &mut Bytes, flex: bool, short: bool) -> DResult<Option<usize>> {
    let n: i64 = if flex {
        get_uvarint(buf)? as i64 - 1
    } else if short {
        get_i16(buf)? as i64
    } else {
        get_i32(buf)? as i64
    };
    if n == -1 {
        Ok(None)
    } else if n < 0 {
        Err(DecodeErrorKind::InvalidLength(n).into())
    } else {
        Ok(Some(n as usize))
    }
}

#[inline]
fn put_len(buf: &mut BytesMut, len: Option<usize>, flex: bool, short: bool) -> Result<(), TooLong> {
    match (len, flex) {
        (None, true) => put_uvarint(buf, 0),
        (None, false) if short => put_i16(buf, -1),
        (None, false) => put_i32(buf, -1),
        (Some(n), true) => {
            if n >= u32::MAX as usize {
                return Err(TooLong(n));
            }
            put_uvarint(buf, n as u32 + 1)
        }
        (Some(n), false) if short => {
            if n > i16::MAX as usize {
                return Err(TooLong(n));
            }
            put_i16(buf, n as i16)
        }
        (Some(n), false) => {
            if n > i32::MAX as usize {
                return Err(TooLong(n));
            }
            put_i32(buf, n as i32)
        }
    }
    Ok(())
}

#[inline]
fn len_len(len: Option<usize>, flex: bool, short: bool) -> usize {
    if flex {
        len_uvarint(len.map_or(0, |n| (n as u32).saturating_add(1)))
    } else if short {
        2
    } else {
        4
    }
}

#[inline]
fn bytes_to_string(b: &[u8]) -> DResult<String> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(DecodeErrorKind::InvalidUtf8.into()),
    }
}

/// Reads a nullable string.
#[inline]
pub fn get_nullable_string(buf: &mut Bytes, flex: bool) -> DResult<Option<String>> {
    match get_len(buf, flex, true)? {
        None => Ok(None),
        Some(n) => {
            need(buf, n)?;
            let s = bytes_to_string(&buf[..n])?;
            buf.advance(n);
            Ok(Some(s))
        }
    }
}
/// Reads a non-null string.
#[inline]
pub fn get_string(buf: &mut Bytes, flex: bool) -> DResult<String> {
    get_nullable_string(buf, flex)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}
/// Writes a nullable string.
#[inline]
pub fn put_nullable_string(buf: &mut BytesMut, v: Option<&str>, flex: bool) -> Result<(), TooLong> {
    put_len(buf, v.map(str::len), flex, true)?;
    if let Some(s) = v {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}
/// Writes a string.
#[inline]
pub fn put_string(buf: &mut BytesMut, v: &str, flex: bool) -> Result<(), TooLong> {
    put_nullable_string(buf, Some(v), flex)
}
/// Encoded size of a nullable string.
#[inline]
pub fn len_nullable_string(v: Option<&str>, flex: bool) -> usize {
    len_len(v.map(str::len), flex, true) + v.map_or(0, str::len)
}
/// Encoded size of a string.
#[inline]
pub fn len_string(v: &str, flex: bool) -> usize {
    len_nullable_string(Some(v), flex)
}

/// Reads nullable bytes (also the `records` type), without copying.
#[inline]
pub fn get_nullable_bytes(buf: &mut Bytes, flex: bool) -> DResult<Option<Bytes>> {
    match get_len(buf, flex, false)? {
        None => Ok(None),
        Some(n) => Ok(Some(take(buf, n)?)),
    }
}
/// Reads non-null bytes.
#[inline]
pub fn get_bytes(buf: &mut Bytes, flex: bool) -> DResult<Bytes> {
    get_nullable_bytes(buf, flex)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}
/// Writes nullable bytes.
#[inline]
pub fn put_nullable_bytes(buf: &mut BytesMut, v: Option<&[u8]>, flex: bool) -> Result<(), TooLong> {
    put_len(buf, v.map(<[u8]>::len), flex, false)?;
    if let Some(b) = v {
        buf.put_slice(b);
    }
    Ok(())
}
/// Writes bytes.
#[inline]
pub fn put_bytes(buf: &mut BytesMut, v: &[u8], flex: bool) -> Result<(), TooLong> {
    put_nullable_bytes(buf, Some(v), flex)
}
/// Encoded size of nullable bytes.
#[inline]
pub fn len_nullable_bytes(v: Option<&[u8]>, flex: bool) -> usize {
    len_len(v.map(<[u8]>::len), flex, false) + v.map_or(0, <[u8]>::len)
}
/// Encoded size of bytes.
#[inline]
pub fn len_bytes(v: &[u8], flex: bool) -> usize {
    len_nullable_bytes(Some(v), flex)
}

/// Reads a nullable array whose elements each take at least `min_elem` bytes; the length is
/// checked against the remaining input before anything is reserved.
#[inline]
pub fn get_nullable_array<T>(
    buf: &mut Bytes,
    flex: bool,
    min_elem: usize,
    mut elem: impl FnMut(&mut Bytes) -> DResult<T>,
) -> DResult<Option<Vec<T>>> {
    let Some(n) = get_len(buf, flex, false)? else {
        return Ok(None);
    };
    let min = min_elem.max(1);
    if n.saturating_mul(min) > buf.len() {
        return Err(DecodeErrorKind::InvalidLength(n as i64).into());
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(elem(buf)?);
    }
    Ok(Some(out))
}
/// Reads a non-null array.
#[inline]
pub fn get_array<T>(
    buf: &mut Bytes,
    flex: bool,
    min_elem: usize,
    elem: impl FnMut(&mut Bytes) -> DResult<T>,
) -> DResult<Vec<T>> {
    get_nullable_array(buf, flex, min_elem, elem)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}
/// Writes an array length prefix (`None` for null).
#[inline]
pub fn put_array_len(buf: &mut BytesMut, len: Option<usize>, flex: bool) -> Result<(), TooLong> {
    put_len(buf, len, flex, false)
}
/// Encoded size of an array length prefix.
#[inline]
pub fn len_array_len(len: Option<usize>, flex: bool) -> usize {
    len_len(len, flex, false)
}

/// Writes the tagged-field section's unknown fields whose tag is below `below` (all when
/// `None`), advancing `iter`.
#[inline]
pub fn put_unknown_tagged<'a>(
    buf: &mut BytesMut,
    iter: &mut std::iter::Peekable<std::slice::Iter<'a, RawTaggedField>>,
    below: Option<u32>,
) {
    while let Some(f) = iter.peek() {
        if below.is_some_and(|b| f.tag >= b) {
            break;
        }
        put_uvarint(buf, f.tag);
        put_uvarint(buf, f.data.len() as u32);
        buf.put_slice(&f.data);
        iter.next();
    }
}
/// Encoded size of unknown tagged fields (without the count).
#[inline]
pub fn len_unknown_tagged(fields: &[RawTaggedField]) -> usize {
    fields.iter().map(|f| len_uvarint(f.tag) + len_uvarint(f.data.len() as u32) + f.data.len()).sum()
}
/// Writes the header of one known tagged field: its tag and size.
#[inline]
pub fn put_tag_header(buf: &mut BytesMut, tag: u32, size: usize) {
    put_uvarint(buf, tag);
    put_uvarint(buf, size as u32);
}
/// Encoded size of one known tagged field whose value takes `size` bytes.
#[inline]
pub fn len_tagged(tag: u32, size: usize) -> usize {
    len_uvarint(tag) + len_uvarint(size as u32) + size
}
/// Reads one tagged field's header and splits its value off `buf`.
#[inline]
pub fn get_tagged(buf: &mut Bytes) -> DResult<(u32, Bytes)> {
    let tag = get_uvarint(buf)?;
    let size = get_uvarint(buf)? as usize;
    let data = take(buf, size).map_err(|_| DecodeError::new(DecodeErrorKind::InvalidTaggedField(tag)))?;
    Ok((tag, data))
}
/// Checks a known tagged field's value was read to its end.
#[inline]
pub fn tagged_done(tag: u32, data: &Bytes) -> DResult<()> {
    if data.is_empty() {
        Ok(())
    } else {
        Err(DecodeErrorKind::InvalidTaggedField(tag).into())
    }
}
/// Reads a nullable-struct marker: -1 is null, anything else (the Java client writes 1)
/// means a struct follows.
#[inline]
pub fn get_struct_marker(buf: &mut Bytes) -> DResult<bool> {
    Ok(get_i8(buf)? >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_sizes_agree() {
        for v in [0u32, 1, 127, 128, 16383, 16384, u32::MAX] {
            let mut b = BytesMut::new();
            put_uvarint(&mut b, v);
            assert_eq!(b.len(), len_uvarint(v));
            assert_eq!(get_uvarint(&mut b.freeze()).unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 300, -300] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), len_varlong(v));
            assert_eq!(get_varlong(&mut b.freeze()).unwrap(), v);
        }
        for v in [0i32, -1, 1, i32::MIN, i32::MAX] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), len_varint(v));
            assert_eq!(get_varint(&mut b.freeze()).unwrap(), v);
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(get_uvarint(&mut b).unwrap_err().kind(), &DecodeErrorKind::VarintTooLong);
    }

    #[test]
    fn huge_array_length_is_refused_before_allocating() {
        let mut b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let err = get_array(&mut b, false, 4, get_i32).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::InvalidLength(i32::MAX as i64));
    }

    #[test]
    fn compact_string_null_and_empty() {
        let mut b = BytesMut::new();
        put_nullable_string(&mut b, None, true).unwrap();
        put_string(&mut b, "", true).unwrap();
        put_string(&mut b, "héllo", false).unwrap();
        assert_eq!(&b[..3], &[0, 1, 0]);
        let mut r = b.freeze();
        assert_eq!(get_nullable_string(&mut r, true).unwrap(), None);
        assert_eq!(get_string(&mut r, true).unwrap(), "");
        assert_eq!(get_string(&mut r, false).unwrap(), "héllo");
        assert!(r.is_empty());
    }
}
