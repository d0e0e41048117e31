//! Quickstart on the protocol layer: moves a real dataset through a real broker with nothing
//! but `kafkit-protocol` and a blocking TCP socket, then checks every record came back.
//!
//!     scripts/quickstart.sh                      # the Debian package index, via a local Tansu
//!     cargo run --release -p kafkit-protocol --example quickstart -- --brokers HOST:PORT [FILE]
//!
//! The dataset is split into records at blank lines (one record per stanza), keyed by the
//! stanza's first `Package:` value (or its first line). It is written to a new 6-partition
//! topic, a key's records always to one partition, and fetched back from offset 0 up to each
//! partition's high watermark. Every record must arrive exactly once with its key and bytes
//! intact, and the records of one key in the order they were written; the exit code says
//! whether they did.
use bytes::{Bytes, BytesMut};
use kafkit_protocol::compression::Compression;
use kafkit_protocol::frame::{decode_response, encode_request, split_frame};
use kafkit_protocol::messages::{api_versions_request, create_topics_request, fetch_request, produce_request};
use kafkit_protocol::messages::{ApiVersionsRequest, CreateTopicsRequest, FetchRequest, ProduceRequest, ResponseKind};
use kafkit_protocol::record::{DecodeOptions, Record, RecordBatch, RecordSet};
use kafkit_protocol::{ApiVersion, ErrorCode, Request};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PARTITIONS: i32 = 6;
const BATCH_BYTES: usize = 512 * 1024;

type Error = Box<dyn std::error::Error>;

/// One connection, one request at a time.
struct Broker {
    sock: TcpStream,
    buf: BytesMut,
    correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Broker {
    fn connect(addr: &str) -> Result<Broker, Error> {
        let sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut b = Broker { sock, buf: BytesMut::new(), correlation: 0, versions: HashMap::new() };
        // ApiVersions v3, or v0 when the broker answers UNSUPPORTED_VERSION (KIP-511).
        let req = ApiVersionsRequest::default()
            .with_client_software_name("kafkit-quickstart".into())
            .with_client_software_version(env!("CARGO_PKG_VERSION").into());
        let mut resp = match b.call(&req, ApiVersion(3))? {
            ResponseKind::ApiVersions(r) => r,
            _ => unreachable!(),
        };
        if ErrorCode::from_code(resp.error_code) == ErrorCode::UnsupportedVersion {
            resp = match b.call(&api_versions_request::ApiVersionsRequest::default(), ApiVersion(0))? {
                ResponseKind::ApiVersions(r) => r,
                _ => unreachable!(),
            };
        }
        ErrorCode::from_code(resp.error_code).into_result()?;
        b.versions = resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(b)
    }

    /// The highest version of `R` both sides speak.
    fn version<R: Request>(&self) -> Result<ApiVersion, Error> {
        let (min, max) = *self.versions.get(&R::API_KEY.key()).ok_or(format!("broker lacks {:?}", R::API_KEY))?;
        R::VERSIONS
            .highest_common(kafkit_protocol::VersionRange::new(min, max))
            .ok_or_else(|| format!("no common version of {:?}", R::API_KEY).into())
    }

    fn call<R: Request>(&mut self, req: &R, v: ApiVersion) -> Result<ResponseKind, Error> {
        self.correlation += 1;
        let mut out = BytesMut::new();
        encode_request(&mut out, self.correlation, Some("kafkit-quickstart"), req, v)?;
        self.sock.write_all(&out)?;
        loop {
            if let Some(frame) = split_frame(&mut self.buf, 64 << 20)? {
                let (header, body) = decode_response(frame, R::API_KEY, v)?;
                if header.correlation_id != self.correlation {
                    return Err(format!("correlation id {} != {}", header.correlation_id, self.correlation).into());
                }
                return Ok(body);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.sock.read(&mut chunk)?;
            if n == 0 {
                return Err("broker closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Records of the dataset: (key, value), split at blank lines.
fn load(path: Option<&str>) -> Result<Vec<(Bytes, Bytes)>, Error> {
    let text = match path {
        Some(p) => std::fs::read(p)?,
        None => {
            let out = std::process::Command::new("apt-cache").arg("dumpavail").output()?;
            if !out.status.success() || out.stdout.is_empty() {
                return Err("apt-cache dumpavail gave nothing: run `apt-get update` first, or name a file".into());
            }
            out.stdout
        }
    };
    let text = Bytes::from(text);
    let mut out = Vec::new();
    let mut start = 0;
    let mut push = |s: usize, e: usize| {
        let v = text.slice(s..e);
        if v.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let key = v
            .split(|&b| b == b'\n')
            .find_map(|l| l.strip_prefix(b"Package: "))
            .unwrap_or_else(|| v.split(|&b| b == b'\n').next().unwrap_or(&[]));
        out.push((Bytes::copy_from_slice(key), v));
    };
    for i in 0..text.len().saturating_sub(1) {
        if text[i] == b'\n' && text[i + 1] == b'\n' {
            push(start, i);
            start = i + 2;
        }
    }
    if start < text.len() {
        push(start, text.len());
    }
    Ok(out)
}

/// FNV-1a: a stable key hash, so a key's records share a partition.
fn partition_of(key: &[u8]) -> i32 {
    let h = key.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    (h % PARTITIONS as u64) as i32
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "localhost:9092".into());
    let mut file = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--brokers" => brokers = args.next().ok_or("--brokers needs HOST:PORT")?,
            f => file = Some(f.to_string()),
        }
    }
    let bootstrap = brokers.split(',').next().unwrap_or_default().to_string();
    let records = load(file.as_deref())?;
    let total_bytes: usize = records.iter().map(|(_, v)| v.len()).sum();
    eprintln!("dataset: {} records, {:.1} MB", records.len(), total_bytes as f64 / 1e6);

    let mut b = Broker::connect(&bootstrap)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let topic = format!("quickstart-{}-{}", std::process::id(), now.as_millis());
    let v = b.version::<CreateTopicsRequest>()?;
    let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(topic.clone())
            .with_num_partitions(PARTITIONS)
            .with_replication_factor(1),
    ]);
    let ResponseKind::CreateTopics(resp) = b.call(&req, v)? else { unreachable!() };
    ErrorCode::from_code(resp.topics[0].error_code).into_result()?;

    // Produce: one batch per partition per request, acks=all, until everything is written.
    let started = Instant::now();
    let mut queues: Vec<Vec<(Bytes, Bytes)>> = vec![Vec::new(); PARTITIONS as usize];
    for (k, v) in &records {
        queues[partition_of(k) as usize].push((k.clone(), v.clone()));
    }
    let pv = b.version::<ProduceRequest>()?;
    let mut cursor = vec![0usize; PARTITIONS as usize];
    let ts = now.as_millis() as i64;
    loop {
        let mut parts = Vec::new();
        for p in 0..PARTITIONS as usize {
            let q = &queues[p];
            if cursor[p] == q.len() {
                continue;
            }
            let mut batch = RecordBatch::new(ts);
            batch.compression = Compression::Lz4;
            let mut size = 0;
            while cursor[p] < q.len() && size < BATCH_BYTES {
                let (k, v) = &q[cursor[p]];
                size += k.len() + v.len();
                let delta = batch.records.len() as i32;
                batch.records.push(Record::new(Some(k.clone()), Some(v.clone())).with_offset_delta(delta));
                cursor[p] += 1;
            }
            let mut buf = BytesMut::new();
            batch.encode(&mut buf)?;
            parts.push(
                produce_request::PartitionProduceData::default().with_index(p as i32).with_records(Some(buf.freeze())),
            );
        }
        if parts.is_empty() {
            break;
        }
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
            produce_request::TopicProduceData::default().with_name(topic.clone()).with_partition_data(parts),
        ]);
        let ResponseKind::Produce(resp) = b.call(&req, pv)? else { unreachable!() };
        for t in &resp.responses {
            for p in &t.partition_responses {
                ErrorCode::from_code(p.error_code).into_result().map_err(|e| format!("partition {}: {e}", p.index))?;
            }
        }
    }
    let produced = started.elapsed();

    // Fetch every partition from 0 up to its high watermark.
    let fv = b.version::<FetchRequest>()?;
    let mut next = vec![0i64; PARTITIONS as usize];
    let mut hwm = vec![-1i64; PARTITIONS as usize];
    let mut got: Vec<Vec<(Bytes, Bytes)>> = vec![Vec::new(); PARTITIONS as usize];
    let fetch_started = Instant::now();
    while (0..PARTITIONS as usize).any(|p| hwm[p] < 0 || next[p] < hwm[p]) {
        let parts = (0..PARTITIONS)
            .map(|p| {
                fetch_request::FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(next[p as usize])
                    .with_partition_max_bytes(4 << 20)
            })
            .collect();
        let mut topic_req = fetch_request::FetchTopic::default().with_partitions(parts);
        topic_req = if fv.0 >= 13 {
            let ResponseKind::Metadata(m) = b.call(
                &kafkit_protocol::messages::MetadataRequest::default().with_topics(Some(vec![
                    kafkit_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(topic.clone())),
                ])),
                b.version::<kafkit_protocol::messages::MetadataRequest>()?,
            )?
            else {
                unreachable!()
            };
            topic_req.with_topic_id(m.topics[0].topic_id)
        } else {
            topic_req.with_topic(topic.clone())
        };
        let req = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(32 << 20)
            .with_topics(vec![topic_req]);
        let ResponseKind::Fetch(resp) = b.call(&req, fv)? else { unreachable!() };
        ErrorCode::from_code(resp.error_code).into_result()?;
        for t in &resp.responses {
            for p in &t.partitions {
                ErrorCode::from_code(p.error_code).into_result()?;
                let i = p.partition_index as usize;
                hwm[i] = p.high_watermark;
                let Some(data) = p.records.clone() else { continue };
                for batch in RecordSet::new(data, DecodeOptions::default()) {
                    let batch = batch?;
                    for r in &batch.records {
                        if batch.offset_of(r) >= next[i] {
                            got[i].push((r.key.clone().unwrap_or_default(), r.value.clone().unwrap_or_default()));
                        }
                    }
                    next[i] = next[i].max(batch.next_offset());
                }
            }
        }
    }
    let fetched = fetch_started.elapsed();

    // Exactly once, intact, in order per key: per partition, what came back must equal what
    // was queued, in the same order.
    let mut missing = 0usize;
    for p in 0..PARTITIONS as usize {
        if got[p] != queues[p] {
            missing += queues[p].len().abs_diff(got[p].len()).max(1);
            eprintln!("partition {p}: wrote {} records, read {} (or they differ)", queues[p].len(), got[p].len());
        }
    }
    let checksum = got
        .iter()
        .flatten()
        .fold(0u64, |acc, (k, v)| acc.wrapping_add(crc32c::crc32c(k) as u64 * 31 + crc32c::crc32c(v) as u64));
    let mb = total_bytes as f64 / 1e6;
    println!("topic       {topic} ({PARTITIONS} partitions)");
    println!("records     {} written, {} read", records.len(), got.iter().map(Vec::len).sum::<usize>());
    println!("bytes       {mb:.1} MB");
    println!("produce     {:.2} s, {:.1} MB/s (acks=all, lz4)", produced.as_secs_f64(), mb / produced.as_secs_f64());
    println!("fetch       {:.2} s, {:.1} MB/s", fetched.as_secs_f64(), mb / fetched.as_secs_f64());
    println!("checksum    {checksum:016x}");
    if missing > 0 {
        println!("FAILED: {missing} records missing, duplicated or out of order");
        std::process::exit(1);
    }
    println!("OK: every record arrived exactly once, intact, in order per key");
    Ok(())
}
