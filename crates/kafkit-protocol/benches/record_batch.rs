//! Record batch encode and decode, kafkit beside the `kafka-protocol` crate in the same run.
//!
//!     cargo bench -p kafkit-protocol --bench record_batch
//!
//! Shapes: 1000 records of 100 B and 100 records of 1 KiB (10-byte keys, no headers),
//! uncompressed and with each codec. Throughput is counted in bytes of the uncompressed batch,
//! so GB/s compares directly across codecs. Decode reads the same bytes in both libraries
//! (encoded by kafkit, so the codec framing is the Java client's).
use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::records as kp;
use kafkit_protocol::compression::Compression;
use kafkit_protocol::record::{DecodeOptions, Record, RecordBatch};
use std::time::Duration;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

/// Values that compress like typical JSON-ish payloads (not all zeros, not random).
fn value(i: usize, size: usize) -> Bytes {
    let text =
        format!("{{\"id\":{i},\"name\":\"user-{}\",\"score\":{},\"tags\":[\"a\",\"b\"]}}", i % 97, i * 31 % 1000);
    Bytes::from(text.as_bytes().iter().cycle().take(size).copied().collect::<Vec<u8>>())
}

fn kafkit_batch(n: usize, size: usize, c: Compression) -> RecordBatch {
    let mut b = RecordBatch::new(1_700_000_000_000);
    b.compression = c;
    b.producer_id = 1000;
    b.producer_epoch = 0;
    b.base_sequence = 0;
    b.max_timestamp = b.base_timestamp + n as i64;
    b.records = (0..n)
        .map(|i| {
            Record::new(Some(Bytes::from(format!("key-{i:06}"))), Some(value(i, size)))
                .with_offset_delta(i as i32)
                .with_timestamp_delta(i as i64)
        })
        .collect();
    b
}

fn peer_records(b: &RecordBatch) -> Vec<kp::Record> {
    b.records
        .iter()
        .map(|r| kp::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: b.producer_id,
            producer_epoch: b.producer_epoch,
            timestamp_type: kp::TimestampType::Creation,
            offset: r.offset_delta as i64,
            sequence: b.base_sequence + r.offset_delta,
            timestamp: b.base_timestamp + r.timestamp_delta,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: Default::default(),
        })
        .collect()
}

fn peer_codec(c: Compression) -> kp::Compression {
    match c {
        Compression::Gzip => kp::Compression::Gzip,
        Compression::Snappy => kp::Compression::Snappy,
        Compression::Lz4 => kp::Compression::Lz4,
        Compression::Zstd => kp::Compression::Zstd,
        _ => kp::Compression::None,
    }
}

fn benches(c: &mut Criterion) {
    for (n, size, label) in [(1000usize, 100usize, "1000x100B"), (100, 1024, "100x1KiB")] {
        for codec in CODECS {
            let batch = kafkit_batch(n, size, codec);
            let peer = peer_records(&batch);
            let raw_len = batch.uncompressed_len() as u64;
            let mut encoded = BytesMut::new();
            batch.encode(&mut encoded).unwrap();
            let encoded = encoded.freeze();

            let mut g = c.benchmark_group(format!("encode/{label}"));
            g.throughput(Throughput::Bytes(raw_len));
            g.bench_function(BenchmarkId::new("kafkit", codec), |bch| {
                let mut buf = BytesMut::with_capacity(encoded.len() * 2);
                bch.iter(|| {
                    buf.clear();
                    black_box(&batch).encode(&mut buf).unwrap();
                    black_box(buf.len())
                })
            });
            let opts = kp::RecordEncodeOptions { version: 2, compression: peer_codec(codec) };
            g.bench_function(BenchmarkId::new("kafka-protocol", codec), |bch| {
                let mut buf = BytesMut::with_capacity(encoded.len() * 2);
                bch.iter(|| {
                    buf.clear();
                    kp::RecordBatchEncoder::encode(&mut buf, black_box(&peer).iter(), &opts).unwrap();
                    black_box(buf.len())
                })
            });
            g.finish();

            let mut g = c.benchmark_group(format!("decode/{label}"));
            g.throughput(Throughput::Bytes(raw_len));
            let dopts = DecodeOptions::default();
            g.bench_function(BenchmarkId::new("kafkit", codec), |bch| {
                bch.iter(|| {
                    let mut b = encoded.clone();
                    let batch = RecordBatch::decode(&mut b, &dopts).unwrap();
                    black_box(batch.records.len())
                })
            });
            g.bench_function(BenchmarkId::new("kafka-protocol", codec), |bch| {
                bch.iter(|| {
                    let mut b = encoded.clone();
                    let set = kp::RecordBatchDecoder::decode(&mut b).unwrap();
                    black_box(set.records.len())
                })
            });
            g.finish();
        }
    }
}

criterion_group! {
    name = record_batch;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    targets = benches
}
criterion_main!(record_batch);
