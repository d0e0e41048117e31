//! Writes the fuzz targets' seed corpus from the golden bytes (tests/golden) plus synthetic
//! record batches of every codec and format:
//!
//!     cargo run -p kafkit-protocol --example fuzz_seeds
use bytes::{Bytes, BytesMut};
use kafkit_protocol::compression::Compression;
use kafkit_protocol::frame::decode_request;
use kafkit_protocol::messages::{ProduceRequest, RequestHeader, RequestKind, ResponseKind};
use kafkit_protocol::record::{encode_legacy, ControlRecord, ControlRecordType, Record, RecordBatch};
use kafkit_protocol::{ApiKey, ApiVersion, Message};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let golden = root.join("tests/golden");
    let msg_dir = root.join("fuzz/corpus/decode_message");
    let rec_dir = root.join("fuzz/corpus/record_batch");
    for d in [&msg_dir, &rec_dir] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d)?;
    }
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(golden.join("index.json"))?)?;
    let mut n = (0, 0);
    for p in index["pairs"].as_array().ok_or("pairs")? {
        let name = p["name"].as_str().ok_or("name")?;
        let key = p["api_key"].as_i64().ok_or("key")? as i16;
        let version = p["version"].as_i64().ok_or("version")? as i16;
        let req = std::fs::read(golden.join(format!("{name}.req.bin")))?;
        let mut seed = vec![1u8];
        seed.extend_from_slice(&req);
        std::fs::write(msg_dir.join(format!("{name}-req")), seed)?;
        n.0 += 1;
        let produce = if key == 0 && (version == 1 || version == 2) {
            // kafka-python's legacy scenarios: Produce v1/v2, gone since Kafka 4.0, read as
            // the v3 they are with a null transactional id in front.
            let mut frame = Bytes::from(req);
            RequestHeader::decode(&mut frame, ApiVersion(1))?;
            let mut body = BytesMut::from(&[0xff, 0xff][..]);
            body.extend_from_slice(&frame);
            RequestKind::Produce(ProduceRequest::decode(&mut body.freeze(), ApiVersion(3))?)
        } else {
            decode_request(Bytes::from(req))?.1
        };
        if let RequestKind::Produce(r) = produce {
            if let Some(data) =
                r.topic_data.first().and_then(|t| t.partition_data.first()).and_then(|p| p.records.clone())
            {
                std::fs::write(rec_dir.join(name), &data)?;
                n.1 += 1;
            }
        }
        if let Ok(resp) = std::fs::read(golden.join(format!("{name}.resp.bin"))) {
            let mut seed = vec![0u8];
            seed.extend_from_slice(&key.to_be_bytes());
            seed.extend_from_slice(&version.to_be_bytes());
            seed.extend_from_slice(&resp);
            std::fs::write(msg_dir.join(format!("{name}-resp")), seed)?;
            n.0 += 1;
            let k = ApiKey::from_key(key).ok_or("key")?;
            if let Ok((_, ResponseKind::Fetch(f))) =
                kafkit_protocol::frame::decode_response(Bytes::from(resp), k, ApiVersion(version))
            {
                for (i, d) in
                    f.responses.iter().flat_map(|t| &t.partitions).filter_map(|p| p.records.clone()).enumerate()
                {
                    if !d.is_empty() {
                        std::fs::write(rec_dir.join(format!("{name}-{i}")), &d)?;
                        n.1 += 1;
                    }
                }
            }
        }
    }
    for c in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let mut b = RecordBatch::new(1_700_000_000_000);
        b.compression = c;
        b.producer_id = 1;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        for i in 0..4 {
            b.records.push(
                Record::new(Some(Bytes::from(format!("k{i}"))), Some(Bytes::from(vec![b'v'; 40])))
                    .with_offset_delta(i)
                    .with_header("h", Some(Bytes::from_static(b"x"))),
            );
        }
        let mut buf = BytesMut::new();
        b.encode(&mut buf)?;
        std::fs::write(rec_dir.join(format!("synthetic-v2-{c}")), &buf)?;
        for magic in [0i8, 1] {
            let mut l = b.clone();
            l.magic = magic;
            l.records.iter_mut().for_each(|r| r.headers.clear());
            let mut buf = BytesMut::new();
            encode_legacy(&l, &mut buf)?;
            std::fs::write(rec_dir.join(format!("synthetic-magic{magic}-{c}")), &buf)?;
        }
        n.1 += 3;
    }
    let mut ctl = RecordBatch::new(0);
    ctl.is_control = true;
    ctl.is_transactional = true;
    ctl.records.push(ControlRecord { version: 0, kind: ControlRecordType::Abort, coordinator_epoch: 1 }.to_record());
    let mut buf = BytesMut::new();
    ctl.encode(&mut buf)?;
    std::fs::write(rec_dir.join("synthetic-control"), &buf)?;
    println!("{} message seeds, {} record seeds", n.0, n.1 + 1);
    Ok(())
}
