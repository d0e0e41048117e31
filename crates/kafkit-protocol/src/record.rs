//! Record batches: the `records` field of Produce requests and Fetch responses.
//!
//! - [`RecordBatch`]: the v2 format (magic 2, Kafka 0.11+, KIP-98): encode and decode, CRC32C
//!   checked, every compression codec, transactional and control batches.
//! - The legacy message sets (magic 0 and 1, including compressed wrapper messages) that older
//!   topics still hold are read into the same [`RecordBatch`] shape by [`RecordSet`];
//!   [`encode_legacy`] writes them (for tests and test brokers).
//! - [`RecordSet`] iterates the batches of a fetched partition and stops quietly at a trailing
//!   partial batch (brokers cut fetch responses at a byte limit, not at a batch boundary).
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use kafkit_protocol::compression::Compression;
//! use kafkit_protocol::record::{Record, RecordBatch, RecordSet, DecodeOptions};
//!
//! let mut batch = RecordBatch::new(1_700_000_000_000);
//! batch.compression = Compression::Lz4;
//! batch.records.push(Record::new(Some(Bytes::from("key")), Some(Bytes::from("value"))));
//! batch.records.push(Record::new(None, Some(Bytes::from("second"))).with_offset_delta(1));
//! let mut buf = BytesMut::new();
//! batch.encode(&mut buf).unwrap();
//!
//! let batches: Vec<_> = RecordSet::new(buf.freeze(), DecodeOptions::default())
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(batches[0].records[1].value.as_deref(), Some(&b"second"[..]));
//! assert_eq!(batches[0].offset_of(&batches[0].records[1]), 1);
//! ```

use crate::compression::{self, Compression, DEFAULT_MAX_DECOMPRESSED_BYTES};
use crate::wire::{len_varint, len_varlong, put_varint};
use crate::{DecodeError, DecodeErrorKind, EncodeError};
use bytes::{BufMut, Bytes, BytesMut};

/// Size of a v2 batch header, from `base_offset` to `records_count` inclusive.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Bytes before the batch length is known: `base_offset` (8) and `batch_length` (4).
const LOG_OVERHEAD: usize = 12;
/// Offset of the CRC32C-covered span (from `attributes` to the end of the batch).
const CRC_START: usize = 21;
/// The fewest bytes one encoded record takes (length, attributes, two deltas, key and value
/// lengths, header count: one byte each).
const MIN_RECORD_SIZE: usize = 7;

/// How a batch's timestamps were set (attribute bit 3; `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch; every record's timestamp is the batch's
    /// `max_timestamp`.
    LogAppendTime,
}

/// A record header: a string key and an optional value (KIP-82).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The key.
    pub key: String,
    /// The value (`None` is a null value, distinct from empty).
    pub value: Option<Bytes>,
}

/// One record of a batch. Offsets and timestamps are deltas from the batch's base; see
/// [`RecordBatch::offset_of`] and [`RecordBatch::timestamp_of`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Record attributes (unused by Kafka so far; 0).
    pub attributes: i8,
    /// Milliseconds after the batch's `base_timestamp`.
    pub timestamp_delta: i64,
    /// Position after the batch's `base_offset`.
    pub offset_delta: i32,
    /// The key (`None` is a null key).
    pub key: Option<Bytes>,
    /// The value (`None` is a null value: a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with this key and value and zero deltas.
    pub fn new(key: Option<Bytes>, value: Option<Bytes>) -> Self {
        Record { key, value, ..Record::default() }
    }
    /// Sets the offset delta.
    #[must_use]
    pub fn with_offset_delta(mut self, d: i32) -> Self {
        self.offset_delta = d;
        self
    }
    /// Sets the timestamp delta (milliseconds).
    #[must_use]
    pub fn with_timestamp_delta(mut self, d: i64) -> Self {
        self.timestamp_delta = d;
        self
    }
    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(Header { key: key.into(), value });
        self
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            attributes: self.attributes,
            timestamp_delta: self.timestamp_delta,
            offset_delta: self.offset_delta,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
        }
    }

    /// The record's encoded size, including its length prefix.
    pub fn encoded_len(&self) -> usize {
        self.parts().encoded_len()
    }

    fn encode(&self, buf: &mut BytesMut) {
        self.parts().encode(buf);
    }
}

/// Where records are encoded: a `BytesMut`, or a builder's pooled `Vec<u8>`.
trait Sink: BufMut {
    fn reserve(&mut self, n: usize);
}

impl Sink for BytesMut {
    fn reserve(&mut self, n: usize) {
        BytesMut::reserve(self, n);
    }
}

impl Sink for Vec<u8> {
    fn reserve(&mut self, n: usize) {
        Vec::reserve(self, n);
    }
}

/// A record's fields, borrowed: from a [`Record`], or from what a producer appends to a
/// [`RecordBatchBuilder`].
struct Parts<'a> {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [Header],
}

impl Parts<'_> {
    fn body_len(&self) -> usize {
        let opt = |b: Option<&[u8]>| b.map_or(len_varint(-1), |b| len_varint(b.len() as i32) + b.len());
        1 + len_varlong(self.timestamp_delta)
            + len_varint(self.offset_delta)
            + opt(self.key)
            + opt(self.value)
            + len_varint(self.headers.len() as i32)
            + self
                .headers
                .iter()
                .map(|h| len_varint(h.key.len() as i32) + h.key.len() + opt(h.value.as_deref()))
                .sum::<usize>()
    }

    fn encoded_len(&self) -> usize {
        let n = self.body_len();
        len_varint(n as i32) + n
    }

    /// Appends the record. The fixed-size prefix (length, attributes, deltas, key length) is
    /// gathered on the stack and copied once: this is the producer's hot loop.
    fn encode(&self, buf: &mut impl Sink) {
        let body = self.body_len();
        let mut pre = [0u8; 32];
        let mut p = uvarint_into(&mut pre, zigzag64(body as i64));
        // Exactly this record (`body` counts what follows the length): a reserve that asked for
        // more would grow a buffer sized by `uncompressed_len` at its last record.
        buf.reserve(p + body);
        pre[p] = self.attributes as u8;
        p += 1;
        p += uvarint_into(&mut pre[p..], zigzag64(self.timestamp_delta));
        p += uvarint_into(&mut pre[p..], zigzag64(self.offset_delta as i64));
        p += uvarint_into(&mut pre[p..], zigzag64(self.key.map_or(-1, |k| k.len() as i64)));
        buf.put_slice(&pre[..p]);
        if let Some(k) = self.key {
            buf.put_slice(k);
        }
        let n = uvarint_into(&mut pre, zigzag64(self.value.map_or(-1, |v| v.len() as i64)));
        buf.put_slice(&pre[..n]);
        if let Some(v) = self.value {
            buf.put_slice(v);
        }
        if self.headers.is_empty() {
            buf.put_u8(0);
            return;
        }
        put_varint(buf, self.headers.len() as i32);
        for h in self.headers {
            put_varint(buf, h.key.len() as i32);
            buf.put_slice(h.key.as_bytes());
            match &h.value {
                None => put_varint(buf, -1),
                Some(b) => {
                    put_varint(buf, b.len() as i32);
                    buf.put_slice(b);
                }
            }
        }
    }
}

/// Fills in the length and CRC of the one whole v2 batch `batch`.
fn seal(batch: &mut [u8]) -> Result<(), EncodeError> {
    let len = batch.len() - LOG_OVERHEAD;
    if len > i32::MAX as usize {
        return Err(EncodeError::Invalid("record batch larger than 2 GiB"));
    }
    batch[8..12].copy_from_slice(&(len as i32).to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Builds one v2 record batch as its records arrive (the Java producer's
/// `MemoryRecordsBuilder`): [`RecordBatchBuilder::append`] encodes each record at once, so
/// a producer holds a record once, encoded, rather than keeping the message until its batch
/// goes; [`RecordBatchBuilder::finish`] writes the header, compressing the records first
/// when asked. Offsets count from 0; timestamps are deltas from the first record's.
///
/// ```
/// use kafkit_protocol::compression::Compression;
/// use kafkit_protocol::record::{DecodeOptions, RecordBatch, RecordBatchBuilder};
///
/// let mut b = RecordBatchBuilder::with_capacity(64);
/// b.append(1_700_000_000_000, Some(b"k"), Some(b"v1"), &[]);
/// b.append(1_700_000_000_005, None, Some(b"v2"), &[]);
/// let mut bytes = b.finish(Compression::Lz4, 7, 0, 42).unwrap();
/// let batch = RecordBatch::decode(&mut bytes, &DecodeOptions::default()).unwrap();
/// assert_eq!((batch.records.len(), batch.base_sequence, batch.max_timestamp), (2, 42, 1_700_000_000_005));
/// ```
///
/// Its buffer comes from [`crate::pool`]: an uncompressed batch goes back there when the
/// last `Bytes` of it is dropped (a producer's acknowledged batch), and the next batch
/// reuses its pages.
#[derive(Debug)]
pub struct RecordBatchBuilder {
    /// Room for the header, then the records, uncompressed.
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// Record bytes the buffer grows to at most by doubling (see `with_limit`).
    limit: usize,
}

impl RecordBatchBuilder {
    /// An empty batch with room for `capacity` bytes of encoded records before it grows.
    /// The buffer is one from [`crate::pool`] of at least that size and at most twice it
    /// (plus a page), else a new one of exactly that size: a batch's memory is its buffer's
    /// capacity, and a producer counts all of it.
    pub fn with_capacity(capacity: usize) -> Self {
        let want = RECORD_BATCH_OVERHEAD.saturating_add(capacity);
        let mut buf = crate::pool::take_within(want, want.saturating_mul(2).saturating_add(4096));
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        RecordBatchBuilder { buf, count: 0, base_timestamp: -1, max_timestamp: -1, limit: usize::MAX }
    }

    /// Stops the buffer's growth by doubling at `limit` bytes of records (a producer's
    /// batch size): past it, it grows by exactly what each record needs. A full batch then
    /// sits in one allocation of about its own size, not in one of twice that.
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Encodes a record with this timestamp (milliseconds since the epoch), key, value
    /// and headers as the batch's next one.
    pub fn append(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) {
        let parts = self.next(timestamp, key, value, headers);
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let need = parts.encoded_len();
        if self.buf.capacity() - self.buf.len() < need {
            let len = self.buf.len();
            let target = (self.buf.capacity() * 2).min(RECORD_BATCH_OVERHEAD.saturating_add(self.limit));
            self.buf.reserve_exact(need.max(target.saturating_sub(len)));
        }
        parts.encode(&mut self.buf);
        self.count = self.count.saturating_add(1);
    }

    /// The bytes [`RecordBatchBuilder::append`] would add for this record now.
    pub fn record_len(&self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        self.next(timestamp, key, value, headers).encoded_len()
    }

    /// The next record's fields: its deltas from the first record's timestamp (its own, for
    /// the first) and from offset 0.
    fn next<'a>(
        &self,
        timestamp: i64,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        headers: &'a [Header],
    ) -> Parts<'a> {
        let base = if self.count == 0 { timestamp } else { self.base_timestamp };
        Parts {
            attributes: 0,
            timestamp_delta: timestamp.wrapping_sub(base),
            offset_delta: self.count,
            key,
            value,
            headers,
        }
    }

    /// Records appended.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the records appended, encoded and uncompressed.
    pub fn records_len(&self) -> usize {
        self.buf.len() - RECORD_BATCH_OVERHEAD
    }

    /// Bytes the batch's buffer holds, used or not: what it costs in memory.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The whole batch: compressed with `compression`, with this producer id, epoch and
    /// base sequence (-1 for a producer that is not idempotent). Uncompressed, the bytes
    /// appended become the batch without a copy.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] if the batch is larger than 2 GiB;
    /// [`EncodeError::Compression`] if the codec fails.
    pub fn finish(
        self,
        compression: Compression,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<Bytes, EncodeError> {
        let mut header = RecordBatch::new(self.base_timestamp);
        header.max_timestamp = self.max_timestamp;
        header.compression = compression;
        header.producer_id = producer_id;
        header.producer_epoch = producer_epoch;
        header.base_sequence = base_sequence;
        if compression == Compression::None {
            let mut buf = self.buf;
            header.write_header(&mut buf, self.count - 1, self.count);
            seal(&mut buf)?;
            let len = buf.len();
            return Ok(crate::pool::freeze(buf, len));
        }
        let records = &self.buf[RECORD_BATCH_OVERHEAD..];
        let mut out = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + records.len() / 2);
        out.put_bytes(0, RECORD_BATCH_OVERHEAD);
        let compressed = compression::compress(compression, records, &mut out);
        crate::pool::give(self.buf);
        compressed?;
        header.write_header(&mut out, self.count - 1, self.count);
        seal(&mut out)?;
        Ok(out.freeze())
    }
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes `v` as an unsigned varint at the start of `out` (at least 10 bytes), returning the
/// bytes written.
#[inline]
fn uvarint_into(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Options for decoding record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// The most bytes one batch may decompress to; more is an error. Default
    /// [`DEFAULT_MAX_DECOMPRESSED_BYTES`] (64 MiB).
    pub max_decompressed_bytes: usize,
    /// Whether to check each batch's CRC (Java `check.crcs`, default true).
    pub verify_crc: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES, verify_crc: true }
    }
}

impl DecodeOptions {
    /// Sets [`DecodeOptions::max_decompressed_bytes`].
    #[must_use]
    pub fn with_max_decompressed_bytes(mut self, n: usize) -> Self {
        self.max_decompressed_bytes = n;
        self
    }
    /// Sets [`DecodeOptions::verify_crc`].
    #[must_use]
    pub fn with_verify_crc(mut self, v: bool) -> Self {
        self.verify_crc = v;
        self
    }
}

/// A record batch. Magic 2 batches are read and written as they are; legacy (magic 0 and 1)
/// message sets are read into this shape, one batch per wrapper message or per uncompressed
/// message, with `producer_id` -1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// The partition leader epoch when the batch was appended (-1 from a producer).
    pub partition_leader_epoch: i32,
    /// Format version: 2, or 0/1 for legacy message sets.
    pub magic: i8,
    /// Compression of the records.
    pub compression: Compression,
    /// How timestamps were set.
    pub timestamp_type: TimestampType,
    /// Part of a transaction (attribute bit 4).
    pub is_transactional: bool,
    /// A control batch: a transaction commit or abort marker (attribute bit 5).
    pub is_control: bool,
    /// The batch's `base_timestamp` is a delete horizon (attribute bit 6, KIP-534).
    pub has_delete_horizon: bool,
    /// Offset delta of the last record (the batch may have fewer records after compaction).
    pub last_offset_delta: i32,
    /// Timestamp of the first record, milliseconds since the epoch (`first_timestamp`).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch, milliseconds since the epoch.
    pub max_timestamp: i64,
    /// Producer id (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch (-1 when not idempotent).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 when not idempotent).
    pub base_sequence: i32,
    /// The records.
    pub records: Vec<Record>,
}

impl Default for RecordBatch {
    fn default() -> Self {
        RecordBatch::new(0)
    }
}

/// The kind of a control record (the key's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// A transaction abort marker (0).
    Abort,
    /// A transaction commit marker (1).
    Commit,
    /// Another kind (KRaft uses control records of its own).
    Other(i16),
}

/// A control record: the transaction marker a control batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// The key's version (0).
    pub version: i16,
    /// Commit, abort, or another kind.
    pub kind: ControlRecordType,
    /// The transaction coordinator's epoch (from the value; -1 if absent).
    pub coordinator_epoch: i32,
}

impl ControlRecord {
    /// The record carrying this marker.
    pub fn to_record(&self) -> Record {
        let kind = match self.kind {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(k) => k,
        };
        let mut key = BytesMut::with_capacity(4);
        key.put_i16(self.version);
        key.put_i16(kind);
        let mut value = BytesMut::with_capacity(6);
        value.put_i16(0);
        value.put_i32(self.coordinator_epoch);
        Record::new(Some(key.freeze()), Some(value.freeze()))
    }
}

impl RecordBatch {
    /// An empty v2 batch at offset 0 with this base timestamp, not idempotent.
    pub fn new(base_timestamp: i64) -> Self {
        RecordBatch {
            base_offset: 0,
            partition_leader_epoch: -1,
            magic: 2,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            is_transactional: false,
            is_control: false,
            has_delete_horizon: false,
            last_offset_delta: -1,
            base_timestamp,
            max_timestamp: base_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
        }
    }

    /// The v2 attributes field.
    pub fn attributes(&self) -> i16 {
        let mut a = self.compression.id() as i16;
        if self.timestamp_type == TimestampType::LogAppendTime {
            a |= 1 << 3;
        }
        if self.is_transactional {
            a |= 1 << 4;
        }
        if self.is_control {
            a |= 1 << 5;
        }
        if self.has_delete_horizon {
            a |= 1 << 6;
        }
        a
    }

    /// The absolute offset of `r`, a record of this batch.
    pub fn offset_of(&self, r: &Record) -> i64 {
        self.base_offset + r.offset_delta as i64
    }
    /// The timestamp of `r` in milliseconds: the batch's `max_timestamp` under
    /// [`TimestampType::LogAppendTime`], else base plus delta.
    pub fn timestamp_of(&self, r: &Record) -> i64 {
        match self.timestamp_type {
            TimestampType::LogAppendTime => self.max_timestamp,
            TimestampType::CreateTime => self.base_timestamp.wrapping_add(r.timestamp_delta),
        }
    }
    /// The offset of the last record the batch covers (`base_offset + last_offset_delta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    /// The offset after this batch: where the next fetch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The marker of a control batch; `None` for a data batch.
    pub fn control_record(&self) -> Option<Result<ControlRecord, DecodeError>> {
        if !self.is_control {
            return None;
        }
        let r = self.records.first()?;
        Some(parse_control(r))
    }

    /// The encoded size of the batch, uncompressed.
    pub fn uncompressed_len(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.records.iter().map(Record::encoded_len).sum::<usize>()
    }

    /// Appends the batch in the v2 format (whatever `magic` says; see [`encode_legacy`] for
    /// magic 0 and 1), compressing the records with `compression`. `last_offset_delta` is
    /// written as given, or as the last record's offset delta when it is -1.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] if the batch is larger than 2 GiB;
    /// [`EncodeError::Compression`] if the codec fails.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let start = buf.len();
        let last_offset_delta = if self.last_offset_delta == -1 {
            self.records.last().map_or(-1, |r| r.offset_delta)
        } else {
            self.last_offset_delta
        };
        buf.reserve(RECORD_BATCH_OVERHEAD);
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        self.write_header(&mut buf[start..], last_offset_delta, self.records.len() as i32);
        if self.compression == Compression::None {
            for r in &self.records {
                r.encode(buf);
            }
        } else {
            let mut raw = BytesMut::with_capacity(self.records.iter().map(Record::encoded_len).sum());
            for r in &self.records {
                r.encode(&mut raw);
            }
            compression::compress(self.compression, &raw, buf)?;
        }
        seal(&mut buf[start..])
    }

    /// Writes the header of this batch, with `count` records, into the first
    /// [`RECORD_BATCH_OVERHEAD`] bytes of `out`, leaving the length and CRC to [`seal`].
    fn write_header(&self, mut out: &mut [u8], last_offset_delta: i32, count: i32) {
        out.put_i64(self.base_offset);
        out.put_i32(0); // batch_length, by seal
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(2);
        out.put_u32(0); // crc, by seal
        out.put_i16(self.attributes());
        out.put_i32(last_offset_delta);
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(count);
    }

    /// Rewrites the producer id, producer epoch and base sequence of one encoded v2 batch
    /// in place and recomputes its CRC, leaving the records (compressed or not) untouched:
    /// what an idempotent producer does to unacknowledged batches when it bumps its epoch
    /// (KIP-360).
    ///
    /// # Errors
    /// [`DecodeError`] when `batch` is not one whole v2 batch.
    pub fn set_producer_state(
        batch: &mut [u8],
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<(), DecodeError> {
        if batch.len() < RECORD_BATCH_OVERHEAD || batch[16] != 2 {
            return Err(corrupt("not a v2 record batch"));
        }
        let len = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
        if usize::try_from(len).ok() != Some(batch.len() - LOG_OVERHEAD) {
            return Err(corrupt("batch length differs from the bytes given"));
        }
        batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
        batch[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
        batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
        let crc = crc32c::crc32c(&batch[CRC_START..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Sets the transactional attribute (bit 4) of one encoded v2 batch in place and
    /// recomputes its CRC: a transactional producer's batches carry it (KIP-98), so the
    /// broker ties them to the producer's open transaction.
    ///
    /// # Errors
    /// [`DecodeError`] when `batch` is not one whole v2 batch.
    pub fn set_transactional(batch: &mut [u8]) -> Result<(), DecodeError> {
        if batch.len() < RECORD_BATCH_OVERHEAD || batch[16] != 2 {
            return Err(corrupt("not a v2 record batch"));
        }
        let len = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
        if usize::try_from(len).ok() != Some(batch.len() - LOG_OVERHEAD) {
            return Err(corrupt("batch length differs from the bytes given"));
        }
        batch[22] |= 1 << 4;
        let crc = crc32c::crc32c(&batch[CRC_START..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Reads one v2 batch from the front of `buf`, advancing it.
    ///
    /// # Errors
    /// A [`DecodeError`]: truncated input, a magic other than 2, a CRC mismatch, an unknown
    /// codec, corrupt or oversized compressed data, malformed records.
    pub fn decode(buf: &mut Bytes, opts: &DecodeOptions) -> Result<RecordBatch, DecodeError> {
        crate::wire::need(buf, LOG_OVERHEAD)?;
        let len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if len < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
            return Err(corrupt("batch length shorter than a batch header"));
        }
        crate::wire::need(buf, LOG_OVERHEAD + len as usize)?;
        let data = buf.split_to(LOG_OVERHEAD + len as usize);
        if data[16] != 2 {
            return Err(corrupt("magic is not 2"));
        }
        decode_v2(data, opts, Vec::new())
    }
}

#[cold]
fn corrupt(what: &'static str) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Corrupt(what))
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Decodes one whole v2 batch (`data` is exactly the batch), its records into `records`
/// (an empty vector, perhaps with room from an earlier batch).
fn decode_v2(data: Bytes, opts: &DecodeOptions, records: Vec<Record>) -> Result<RecordBatch, DecodeError> {
    let h = &data[..];
    let stored_crc = u32::from_be_bytes([h[17], h[18], h[19], h[20]]);
    if opts.verify_crc {
        let actual = crc32c::crc32c(&h[CRC_START..]);
        if actual != stored_crc {
            return Err(DecodeError::new(DecodeErrorKind::ChecksumMismatch { expected: stored_crc, actual }));
        }
    }
    let attributes = be_i16(&h[21..]);
    let codec = (attributes & 0x07) as u8;
    let compression =
        Compression::from_id(codec).ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownCompression(codec)))?;
    let count = be_i32(&h[57..]);
    if count < 0 {
        return Err(corrupt("negative record count"));
    }
    let mut batch = RecordBatch {
        base_offset: be_i64(&h[0..]),
        partition_leader_epoch: be_i32(&h[12..]),
        magic: 2,
        compression,
        timestamp_type: if attributes & (1 << 3) != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        is_transactional: attributes & (1 << 4) != 0,
        is_control: attributes & (1 << 5) != 0,
        has_delete_horizon: attributes & (1 << 6) != 0,
        last_offset_delta: be_i32(&h[23..]),
        base_timestamp: be_i64(&h[27..]),
        max_timestamp: be_i64(&h[35..]),
        producer_id: be_i64(&h[43..]),
        producer_epoch: be_i16(&h[51..]),
        base_sequence: be_i32(&h[53..]),
        records: Vec::new(),
    };
    let body = if compression == Compression::None {
        data.slice(RECORD_BATCH_OVERHEAD..)
    } else {
        compression::decompress_bytes(compression, &data[RECORD_BATCH_OVERHEAD..], opts.max_decompressed_bytes)?
    };
    batch.records = decode_records(&body, count as usize, records)?;
    Ok(batch)
}

/// A cursor over a records section; reads are bounds-checked.
struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= self.end {
            return Err(DecodeError::new(DecodeErrorKind::UnexpectedEof { needed: 1, remaining: 0 }));
        }
        let b = self.data[self.pos];
        self.pos += 1;
        Ok(b)
    }
    #[inline]
    fn uvarlong(&mut self) -> Result<u64, DecodeError> {
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(first as u64);
        }
        let mut v = (first & 0x7f) as u64;
        for i in 1..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(DecodeErrorKind::VarintTooLong.into());
            }
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeErrorKind::VarintTooLong.into())
    }
    #[inline]
    fn varint(&mut self) -> Result<i32, DecodeError> {
        let u = self.uvarlong()?;
        if u > u32::MAX as u64 {
            return Err(DecodeErrorKind::VarintTooLong.into());
        }
        let u = u as u32;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }
    #[inline]
    fn varlong(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarlong()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    /// A varint-length-prefixed byte string; -1 is null.
    #[inline]
    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let n = self.varint()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(DecodeErrorKind::InvalidLength(n as i64).into());
        }
        let n = n as usize;
        if n > self.end - self.pos {
            return Err(DecodeError::new(DecodeErrorKind::UnexpectedEof { needed: n, remaining: self.end - self.pos }));
        }
        let b = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(Some(b))
    }
}

fn decode_records(body: &Bytes, count: usize, mut records: Vec<Record>) -> Result<Vec<Record>, DecodeError> {
    records.clear();
    records.reserve(count.min(body.len() / MIN_RECORD_SIZE));
    let mut c = Cursor { data: body, pos: 0, end: body.len() };
    for i in 0..count {
        let r = decode_record(&mut c).map_err(|e| e.field(RECORD_FIELD[i.min(1)]))?;
        records.push(r);
    }
    if c.pos != body.len() {
        return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(body.len() - c.pos)).field("records"));
    }
    Ok(records)
}

const RECORD_FIELD: [&str; 2] = ["records[0]", "records"];

#[inline]
fn decode_record(c: &mut Cursor<'_>) -> Result<Record, DecodeError> {
    let len = c.varint()?;
    if len < 0 || len as usize > c.end - c.pos {
        return Err(DecodeErrorKind::InvalidLength(len as i64).into());
    }
    let outer_end = c.end;
    let end = c.pos + len as usize;
    c.end = end;
    let attributes = c.byte()? as i8;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = c.nullable_bytes()?;
    let value = c.nullable_bytes()?;
    let n_headers = c.varint()?;
    if n_headers < 0 {
        return Err(DecodeErrorKind::InvalidLength(n_headers as i64).into());
    }
    let mut headers = Vec::new();
    if n_headers > 0 {
        // Each header takes at least two bytes (key and value lengths).
        if n_headers as usize > (c.end - c.pos) / 2 {
            return Err(DecodeErrorKind::InvalidLength(n_headers as i64).into());
        }
        headers.reserve(n_headers as usize);
        for _ in 0..n_headers {
            let k = c.nullable_bytes()?.ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull))?;
            let key = std::str::from_utf8(&k).map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8))?.to_owned();
            headers.push(Header { key, value: c.nullable_bytes()? });
        }
    }
    if c.pos != end {
        return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(end - c.pos)));
    }
    c.end = outer_end;
    Ok(Record { attributes, timestamp_delta, offset_delta, key, value, headers })
}

fn parse_control(r: &Record) -> Result<ControlRecord, DecodeError> {
    let key = r.key.as_deref().ok_or_else(|| corrupt("control record without a key"))?;
    if key.len() < 4 {
        return Err(corrupt("control record key shorter than 4 bytes"));
    }
    let kind = match be_i16(&key[2..]) {
        0 => ControlRecordType::Abort,
        1 => ControlRecordType::Commit,
        k => ControlRecordType::Other(k),
    };
    let coordinator_epoch = match r.value.as_deref() {
        Some(v) if v.len() >= 6 => be_i32(&v[2..]),
        _ => -1,
    };
    Ok(ControlRecord { version: be_i16(key), kind, coordinator_epoch })
}

/// The batches in a partition's `records` bytes (a Fetch response's partition data, or a
/// Produce request's), in order; any mix of v2 batches and legacy message sets.
///
/// A batch cut off at the end of the data (brokers cut fetch responses at a byte limit) ends
/// the iteration without an error; [`RecordSet::truncated`] then tells how many bytes were
/// left. Any other problem yields one `Err` and ends the iteration.
#[derive(Debug, Clone)]
pub struct RecordSet {
    data: Bytes,
    opts: DecodeOptions,
    /// A records vector given back with [`RecordSet::recycle`], for the next batch.
    spare: Vec<Record>,
    /// Legacy batches already decoded from one message set (yielded in order).
    pending: std::collections::VecDeque<RecordBatch>,
    done: bool,
    truncated: usize,
}

impl RecordSet {
    /// Iterates the batches in `data`.
    pub fn new(data: Bytes, opts: DecodeOptions) -> Self {
        RecordSet { data, opts, spare: Vec::new(), pending: Default::default(), done: false, truncated: 0 }
    }
    /// Bytes of a trailing partial batch that were skipped (0 if none, or not reached yet).
    pub fn truncated(&self) -> usize {
        self.truncated
    }

    /// Gives back a yielded batch's `records` vector, emptied (with `drain`), so that the
    /// next batch is decoded into its room rather than a fresh allocation.
    pub fn recycle(&mut self, mut records: Vec<Record>) {
        records.clear();
        if records.capacity() > self.spare.capacity() {
            self.spare = records;
        }
    }

    /// The offset after the last whole batch still to be read, from the batch headers alone
    /// (no checksum, no decompression): where the next fetch of the partition starts.
    /// `None` when no whole batch is left, or when a header is malformed (reading the
    /// batches then gives the error).
    pub fn next_offset(&self) -> Option<i64> {
        let mut rest = &self.data[..];
        let mut next = None;
        while rest.len() >= LOG_OVERHEAD + 5 {
            let len = usize::try_from(be_i32(&rest[8..])).ok()?;
            let total = LOG_OVERHEAD.checked_add(len)?;
            if total > rest.len() {
                break;
            }
            let base = be_i64(rest);
            let after = match rest[16] {
                2 if total >= RECORD_BATCH_OVERHEAD => {
                    base.checked_add(i64::from(be_i32(&rest[23..])))?.checked_add(1)?
                }
                // A legacy message's offset is its own, or a compressed wrapper's last inner one.
                0 | 1 => base.checked_add(1)?,
                _ => return None,
            };
            next = Some(next.map_or(after, |n: i64| n.max(after)));
            rest = &rest[total..];
        }
        next
    }

    fn next_inner(&mut self) -> Option<Result<RecordBatch, DecodeError>> {
        if let Some(b) = self.pending.pop_front() {
            return Some(Ok(b));
        }
        if self.done || self.data.is_empty() {
            return None;
        }
        if self.data.len() < LOG_OVERHEAD + 5 {
            self.truncated = self.data.len();
            self.data.clear();
            return None;
        }
        let len = be_i32(&self.data[8..]);
        if len < 0 {
            return Some(Err(corrupt("negative batch length")));
        }
        let total = LOG_OVERHEAD + len as usize;
        if total > self.data.len() {
            self.truncated = self.data.len();
            self.data.clear();
            return None;
        }
        let magic = self.data[16];
        let data = self.data.split_to(total);
        match magic {
            2 => {
                if (len as usize) < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD {
                    return Some(Err(corrupt("batch length shorter than a batch header")));
                }
                Some(decode_v2(data, &self.opts, std::mem::take(&mut self.spare)))
            }
            0 | 1 => match decode_legacy(data, &self.opts, 0) {
                Ok(batches) => {
                    self.pending.extend(batches);
                    self.pending.pop_front().map(Ok)
                }
                Err(e) => Some(Err(e)),
            },
            _ => Some(Err(corrupt("unknown magic"))),
        }
    }
}

impl Iterator for RecordSet {
    type Item = Result<RecordBatch, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.next_inner();
        if matches!(r, Some(Err(_))) {
            self.done = true;
            self.pending.clear();
        }
        r
    }
}

/// Decodes one legacy message (`data` is exactly its offset, size and body) into batches:
/// one for an uncompressed message, one for a compressed wrapper.
fn decode_legacy(data: Bytes, opts: &DecodeOptions, depth: u8) -> Result<Vec<RecordBatch>, DecodeError> {
    // offset(8) size(4) crc(4) magic(1) attributes(1) [timestamp(8)] key value
    if data.len() < LOG_OVERHEAD + 4 + 2 + 8 {
        return Err(corrupt("legacy message shorter than its header"));
    }
    let offset = be_i64(&data);
    let stored_crc = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
    if opts.verify_crc {
        let actual = crc32fast::hash(&data[16..]);
        if actual != stored_crc {
            return Err(DecodeError::new(DecodeErrorKind::ChecksumMismatch { expected: stored_crc, actual }));
        }
    }
    let magic = data[16] as i8;
    let attributes = data[17];
    let mut c = Cursor { data: &data, pos: 18, end: data.len() };
    let mut timestamp = -1i64;
    if magic == 1 {
        if c.end - c.pos < 8 {
            return Err(corrupt("legacy message shorter than its header"));
        }
        timestamp = be_i64(&data[c.pos..]);
        c.pos += 8;
    }
    let key = legacy_bytes(&mut c)?;
    let value = legacy_bytes(&mut c)?;
    if c.pos != c.end {
        return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(c.end - c.pos)));
    }
    let codec = attributes & 0x07;
    let compression =
        Compression::from_id(codec).ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownCompression(codec)))?;
    let timestamp_type =
        if magic == 1 && attributes & 0x08 != 0 { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
    let legacy_batch = |base_offset: i64, base_timestamp: i64| RecordBatch {
        base_offset,
        magic,
        compression,
        timestamp_type,
        base_timestamp,
        max_timestamp: base_timestamp,
        last_offset_delta: 0,
        ..RecordBatch::new(base_timestamp)
    };
    if compression == Compression::None {
        let mut b = legacy_batch(offset, timestamp);
        b.records.push(Record::new(key, value));
        return Ok(vec![b]);
    }
    if depth > 0 {
        return Err(corrupt("compressed message inside a compressed message"));
    }
    let inner = value.ok_or_else(|| corrupt("compressed wrapper message without a value"))?;
    let inner = compression::decompress_bytes(compression, &inner, opts.max_decompressed_bytes)?;
    // The inner messages, uncompressed.
    let mut msgs: Vec<(i64, i64, Option<Bytes>, Option<Bytes>)> = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        if rest.len() < LOG_OVERHEAD {
            return Err(corrupt("truncated message inside a compressed wrapper"));
        }
        let size = be_i32(&rest[8..]);
        if size < 0 || LOG_OVERHEAD + size as usize > rest.len() {
            return Err(corrupt("truncated message inside a compressed wrapper"));
        }
        let one = rest.split_to(LOG_OVERHEAD + size as usize);
        for b in decode_legacy(one, opts, depth + 1)? {
            let ts = b.base_timestamp;
            for r in b.records {
                msgs.push((b.base_offset, ts, r.key, r.value));
            }
        }
    }
    let Some(last_inner) = msgs.last().map(|m| m.0) else {
        return Ok(Vec::new());
    };
    // Magic 1 wrappers hold relative inner offsets and the absolute offset of the last one
    // (KIP-31); magic 0 inner offsets are absolute.
    let shift = if magic == 1 { offset - last_inner } else { 0 };
    let base_offset = msgs[0].0 + shift;
    let base_ts = if timestamp_type == TimestampType::LogAppendTime { timestamp } else { msgs[0].1 };
    let mut b = legacy_batch(base_offset, base_ts);
    b.max_timestamp = if timestamp_type == TimestampType::LogAppendTime {
        timestamp
    } else {
        msgs.iter().map(|m| m.1).max().unwrap_or(base_ts)
    };
    for (off, ts, key, value) in msgs {
        let mut r = Record::new(key, value);
        r.offset_delta = (off + shift - base_offset) as i32;
        r.timestamp_delta = ts.wrapping_sub(base_ts);
        b.records.push(r);
    }
    b.last_offset_delta = b.records.last().map_or(0, |r| r.offset_delta);
    Ok(vec![b])
}

fn legacy_bytes(c: &mut Cursor<'_>) -> Result<Option<Bytes>, DecodeError> {
    if c.end - c.pos < 4 {
        return Err(DecodeError::new(DecodeErrorKind::UnexpectedEof { needed: 4, remaining: c.end - c.pos }));
    }
    let n = be_i32(&c.data[c.pos..]);
    c.pos += 4;
    if n == -1 {
        return Ok(None);
    }
    if n < 0 || n as usize > c.end - c.pos {
        return Err(DecodeErrorKind::InvalidLength(n as i64).into());
    }
    let b = c.data.slice(c.pos..c.pos + n as usize);
    c.pos += n as usize;
    Ok(Some(b))
}

/// Appends `batch` as a legacy message set of magic `batch.magic` (0 or 1): one message per
/// record, or one compressed wrapper message holding them when `batch.compression` is set.
/// Headers cannot be carried and are an error. For tests and test brokers that must serve
/// old-format data.
///
/// # Errors
/// [`EncodeError::Invalid`] for a magic other than 0 or 1, or records with headers.
pub fn encode_legacy(batch: &RecordBatch, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let magic = batch.magic;
    if magic != 0 && magic != 1 {
        return Err(EncodeError::Invalid("legacy magic must be 0 or 1"));
    }
    if batch.records.iter().any(|r| !r.headers.is_empty()) {
        return Err(EncodeError::Invalid("legacy messages cannot carry headers"));
    }
    fn message(
        buf: &mut BytesMut,
        magic: i8,
        offset: i64,
        attributes: u8,
        ts: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        let start = buf.len();
        buf.put_i64(offset);
        buf.put_i32(0);
        buf.put_u32(0);
        buf.put_i8(magic);
        buf.put_u8(attributes);
        if magic == 1 {
            buf.put_i64(ts);
        }
        for b in [key, value] {
            match b {
                None => buf.put_i32(-1),
                Some(b) => {
                    buf.put_i32(b.len() as i32);
                    buf.put_slice(b);
                }
            }
        }
        let size = (buf.len() - start - LOG_OVERHEAD) as i32;
        buf[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
        let crc = crc32fast::hash(&buf[start + 16..]);
        buf[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
    }
    let ts_bit = if magic == 1 && batch.timestamp_type == TimestampType::LogAppendTime { 0x08 } else { 0 };
    if batch.compression == Compression::None {
        for r in &batch.records {
            message(
                buf,
                magic,
                batch.offset_of(r),
                ts_bit,
                batch.timestamp_of(r),
                r.key.as_deref(),
                r.value.as_deref(),
            );
        }
        return Ok(());
    }
    let mut inner = BytesMut::new();
    for r in &batch.records {
        let off = if magic == 1 { r.offset_delta as i64 } else { batch.offset_of(r) };
        message(&mut inner, magic, off, 0, batch.timestamp_of(r), r.key.as_deref(), r.value.as_deref());
    }
    let mut compressed = BytesMut::new();
    compression::compress(batch.compression, &inner, &mut compressed)?;
    let last = batch.records.last().map_or(batch.base_offset, |r| batch.offset_of(r));
    message(buf, magic, last, batch.compression.id() | ts_bit, batch.max_timestamp, None, Some(&compressed));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(compression: Compression) -> RecordBatch {
        let mut b = RecordBatch::new(1_700_000_000_000);
        b.base_offset = 42;
        b.compression = compression;
        b.producer_id = 7;
        b.producer_epoch = 1;
        b.base_sequence = 100;
        b.max_timestamp = b.base_timestamp + 5;
        for i in 0..10 {
            let mut r = Record::new(
                if i % 3 == 0 { None } else { Some(Bytes::from(format!("k{i}"))) },
                if i == 4 { None } else { Some(Bytes::from(vec![i as u8; i * 10])) },
            )
            .with_offset_delta(i as i32)
            .with_timestamp_delta(i as i64 / 2);
            if i % 2 == 0 {
                r = r.with_header("h", Some(Bytes::from_static(b"v"))).with_header("null", None);
            }
            b.records.push(r);
        }
        b.last_offset_delta = 9;
        b
    }

    fn all() -> [Compression; 5] {
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
    }

    #[test]
    fn producer_state_is_rewritten_in_place_like_a_fresh_encoding() {
        for c in all() {
            let b = sample(c);
            let mut buf = BytesMut::new();
            b.encode(&mut buf).unwrap();
            let mut want = b.clone();
            (want.producer_id, want.producer_epoch, want.base_sequence) = (99, 3, 5000);
            RecordBatch::set_producer_state(&mut buf, 99, 3, 5000).unwrap();
            let got = RecordBatch::decode(&mut buf.clone().freeze(), &DecodeOptions::default()).unwrap();
            assert_eq!((got.producer_id, got.producer_epoch, got.base_sequence), (99, 3, 5000));
            assert_eq!(got.records, want.records);
            if c == Compression::None {
                let mut fresh = BytesMut::new();
                want.encode(&mut fresh).unwrap();
                assert_eq!(buf, fresh, "the same bytes as encoding with the new state");
            }
        }
        let mut short = vec![0u8; 10];
        assert!(RecordBatch::set_producer_state(&mut short, 1, 1, 1).is_err());
        let mut buf = BytesMut::new();
        sample(Compression::None).encode(&mut buf).unwrap();
        buf.extend_from_slice(b"extra");
        assert!(RecordBatch::set_producer_state(&mut buf, 1, 1, 1).is_err(), "two batches or trailing bytes");
    }

    #[test]
    fn a_built_batch_is_the_encoding_of_the_same_records() {
        for c in all() {
            let mut want = sample(c);
            want.base_offset = 0;
            want.max_timestamp = want.base_timestamp + want.records.iter().map(|r| r.timestamp_delta).max().unwrap();
            let mut b = RecordBatchBuilder::with_capacity(16);
            for r in &want.records {
                let t = want.base_timestamp + r.timestamp_delta;
                b.append(t, r.key.as_deref(), r.value.as_deref(), &r.headers);
            }
            assert_eq!((b.len(), b.is_empty()), (10, false));

            assert_eq!(b.records_len(), want.uncompressed_len() - RECORD_BATCH_OVERHEAD);
            let got = b.finish(c, 7, 1, 100).unwrap();
            let mut buf = BytesMut::new();
            want.encode(&mut buf).unwrap();
            assert_eq!(got, buf.freeze(), "{c}: byte for byte");
            let mut bytes = got.clone();
            assert_eq!(RecordBatch::decode(&mut bytes, &DecodeOptions::default()).unwrap(), want, "{c}");
        }
        // record_len is what append adds.
        let mut b = RecordBatchBuilder::with_capacity(0);
        let big = [7u8; 300];
        let headers = [Header { key: "h".into(), value: None }];
        for (t, k, v, h) in [
            (100, None, Some(&b"a"[..]), &[][..]),
            (90, Some(&b"key"[..]), None, &headers[..]),
            (1 << 40, Some(&b"k"[..]), Some(&big[..]), &[][..]),
        ] {
            let (before, would) = (b.records_len(), b.record_len(t, k, v, h));
            b.append(t, k, v, h);
            assert_eq!(b.records_len() - before, would);
        }
        // Timestamps before the first record's count back from it; none at all gives a
        // valid empty batch.
        let mut b = RecordBatchBuilder::with_capacity(0);
        b.append(1000, None, Some(b"a"), &[]);
        b.append(400, None, Some(b"b"), &[]);
        let batch =
            RecordBatch::decode(&mut b.finish(Compression::None, -1, -1, -1).unwrap(), &DecodeOptions::default());
        let batch = batch.unwrap();
        assert_eq!((batch.base_timestamp, batch.max_timestamp), (1000, 1000));
        assert_eq!(batch.timestamp_of(&batch.records[1]), 400);
        let empty = RecordBatchBuilder::with_capacity(0).finish(Compression::Zstd, -1, -1, -1).unwrap();
        let back = RecordBatch::decode(&mut empty.clone(), &DecodeOptions::default()).unwrap();
        assert!(back.records.is_empty());
    }

    #[test]
    fn v2_round_trips_with_every_codec() {
        for c in all() {
            let b = sample(c);
            let mut buf = BytesMut::new();
            b.encode(&mut buf).unwrap();
            if c == Compression::None {
                assert_eq!(buf.len(), b.uncompressed_len());
            }
            let mut bytes = buf.freeze();
            let back = RecordBatch::decode(&mut bytes, &DecodeOptions::default()).unwrap();
            assert!(bytes.is_empty());
            assert_eq!(back, b, "{c}");
        }
    }

    #[test]
    fn crc_mismatch_is_reported() {
        let mut buf = BytesMut::new();
        sample(Compression::None).encode(&mut buf).unwrap();
        // The last record's value (90 bytes of 9) ends one byte before the batch does.
        let n = buf.len();
        buf[n - 2] ^= 0xff;
        let err = RecordBatch::decode(&mut buf.clone().freeze(), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::ChecksumMismatch { .. }), "{err}");
        // With verification off the flipped byte is read as data.
        let opts = DecodeOptions::default().with_verify_crc(false);
        assert!(RecordBatch::decode(&mut buf.freeze(), &opts).is_ok());
    }

    #[test]
    fn trailing_partial_batch_is_skipped() {
        let mut buf = BytesMut::new();
        sample(Compression::None).encode(&mut buf).unwrap();
        let mut second = sample(Compression::Lz4);
        second.base_offset = 52;
        second.encode(&mut buf).unwrap();
        let full = buf.len();
        buf.truncate(full - 20);
        let mut set = RecordSet::new(buf.freeze(), DecodeOptions::default());
        assert_eq!(set.next_offset(), Some(42 + sample(Compression::None).records.len() as i64));
        assert_eq!(set.next().unwrap().unwrap().base_offset, 42);
        assert_eq!(set.next_offset(), None, "only a partial batch is left");
        assert!(set.next().is_none());
        assert!(set.truncated() > 0);
    }

    #[test]
    fn a_recycled_records_vector_takes_the_next_batch() {
        let mut buf = BytesMut::new();
        for base in [0i64, 100] {
            let mut b = sample(Compression::Lz4);
            b.base_offset = base;
            b.encode(&mut buf).unwrap();
        }
        let mut set = RecordSet::new(buf.freeze(), DecodeOptions::default());
        let mut first = set.next().unwrap().unwrap();
        let want = first.records.clone();
        let ptr = first.records.as_ptr();
        first.records.drain(..);
        set.recycle(first.records);
        let second = set.next().unwrap().unwrap();
        assert_eq!(second.base_offset, 100);
        assert_eq!(second.records, want, "the same records, decoded into the given-back vector");
        assert_eq!(second.records.as_ptr(), ptr);
    }

    #[test]
    fn next_offset_agrees_with_decoding_for_every_format() {
        for magic in [0i8, 1, 2] {
            for c in all() {
                let mut buf = BytesMut::new();
                for base in [10i64, 20] {
                    let mut b = sample(c);
                    b.base_offset = base;
                    if magic < 2 {
                        b.magic = magic;
                        b.records.iter_mut().for_each(|r| r.headers.clear());
                        encode_legacy(&b, &mut buf).unwrap();
                    } else {
                        b.encode(&mut buf).unwrap();
                    }
                }
                let set = RecordSet::new(buf.freeze(), DecodeOptions::default());
                let scanned = set.next_offset();
                let decoded = set.map(|b| b.unwrap().next_offset()).max();
                assert_eq!(scanned, decoded, "magic {magic} {c}");
            }
        }
        assert_eq!(RecordSet::new(Bytes::new(), DecodeOptions::default()).next_offset(), None);
    }

    #[test]
    fn set_transactional_marks_an_encoded_batch() {
        let mut b = RecordBatchBuilder::with_capacity(64);
        b.append(1, Some(b"k"), Some(b"v"), &[]);
        let encoded = b.finish(Compression::None, 7, 1, 0).unwrap();
        let mut buf = BytesMut::from(&encoded[..]);
        RecordBatch::set_transactional(&mut buf).unwrap();
        let mut bytes = buf.freeze();
        let batch = RecordBatch::decode(&mut bytes, &DecodeOptions::default()).unwrap();
        assert!(batch.is_transactional && !batch.is_control);
        assert_eq!((batch.producer_id, batch.producer_epoch), (7, 1));
        assert!(RecordBatch::set_transactional(&mut [0u8; 10]).is_err());
    }

    #[test]
    fn control_batches_are_recognised() {
        let mut b = RecordBatch::new(0);
        b.is_control = true;
        b.is_transactional = true;
        b.records.push(ControlRecord { version: 0, kind: ControlRecordType::Commit, coordinator_epoch: 3 }.to_record());
        let mut buf = BytesMut::new();
        b.encode(&mut buf).unwrap();
        let back = RecordBatch::decode(&mut buf.freeze(), &DecodeOptions::default()).unwrap();
        let cr = back.control_record().unwrap().unwrap();
        assert_eq!(cr.kind, ControlRecordType::Commit);
        assert_eq!(cr.coordinator_epoch, 3);
        assert!(sample(Compression::None).control_record().is_none());
    }

    #[test]
    fn legacy_message_sets_decode_for_both_magics_and_every_codec() {
        for magic in [0i8, 1] {
            for c in all() {
                let mut b = sample(c);
                b.magic = magic;
                for r in &mut b.records {
                    r.headers.clear();
                }
                let mut buf = BytesMut::new();
                encode_legacy(&b, &mut buf).unwrap();
                let batches: Vec<RecordBatch> =
                    RecordSet::new(buf.freeze(), DecodeOptions::default()).collect::<Result<_, _>>().unwrap();
                let got: Vec<(i64, Option<Bytes>, Option<Bytes>, i64)> = batches
                    .iter()
                    .flat_map(|bb| {
                        bb.records
                            .iter()
                            .map(move |r| (bb.offset_of(r), r.key.clone(), r.value.clone(), bb.timestamp_of(r)))
                    })
                    .collect();
                let want: Vec<(i64, Option<Bytes>, Option<Bytes>, i64)> = b
                    .records
                    .iter()
                    .map(|r| {
                        let ts = if magic == 0 { -1 } else { b.timestamp_of(r) };
                        (b.offset_of(r), r.key.clone(), r.value.clone(), ts)
                    })
                    .collect();
                assert_eq!(got, want, "magic {magic} {c}");
                assert!(batches.iter().all(|bb| bb.magic == magic));
            }
        }
    }

    #[test]
    fn huge_record_count_does_not_reserve_memory() {
        let mut buf = BytesMut::new();
        RecordBatch::new(0).encode(&mut buf).unwrap();
        buf[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = RecordBatch::decode(&mut buf.freeze(), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::UnexpectedEof { .. }), "{err}");
    }
}
