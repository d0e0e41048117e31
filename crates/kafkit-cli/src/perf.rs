//! `kafkit perf produce` and `kafkit perf consume`: load generators that report throughput,
//! latency percentiles, client CPU and peak memory (like kafka-producer-perf-test and
//! kafka-consumer-perf-test).

use bytes::Bytes;
use kafkit::{Acks, Compression, Error, Message, Reader, ReaderConfig, TopicConfig, Writer, WriterConfig};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

#[derive(clap::Args)]
pub struct ProduceArgs {
    /// The topic (created with --partitions when missing).
    pub topic: String,
    /// Records to send.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value bytes per record.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Key bytes per record (0: no key, records spread round-robin).
    #[arg(long, default_value_t = 0)]
    pub key_size: usize,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(short = 'z', long, default_value = "none")]
    pub compression: Compression,
    /// How long a batch waits to fill (Java `linger.ms`).
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,
    /// Most bytes per batch (Java `batch.size`; peers in the harness use 1 MiB too).
    #[arg(long, default_value_t = 1 << 20)]
    pub batch_size: usize,
    /// Records per second to aim for (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ConsumeArgs {
    /// The topic.
    pub topic: String,
    /// Records to read (from the start of every partition).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Client CPU (user + system) and peak resident memory of this process so far.
fn usage() -> (Duration, u64) {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return (Duration::ZERO, 0);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    // ru_maxrss is in KiB on Linux.
    (tv(u.ru_utime) + tv(u.ru_stime), u.ru_maxrss as u64 * 1024)
}

/// Percentiles of latencies in microseconds (sorted in place).
fn percentiles(lat: &mut [u32]) -> [f64; 3] {
    lat.sort_unstable();
    let at = |q: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    [at(0.50), at(0.99), at(0.999)]
}

struct Report {
    what: &'static str,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latency_ms: [f64; 3],
    latency_of: &'static str,
    cpu: Duration,
    rss: u64,
}

impl Report {
    fn print(&self, json: bool) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rps = self.records as f64 / secs;
        let mbps = self.bytes as f64 / secs / 1e6;
        let mut out = std::io::stdout().lock();
        if json {
            let o = serde_json::json!({
                "workload": self.what,
                "records": self.records,
                "bytes": self.bytes,
                "seconds": secs,
                "records_per_sec": rps,
                "mb_per_sec": mbps,
                "latency": { "of": self.latency_of, "p50_ms": self.latency_ms[0], "p99_ms": self.latency_ms[1], "p999_ms": self.latency_ms[2] },
                "client_cpu_seconds": self.cpu.as_secs_f64(),
                "cpu_us_per_record": self.cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64,
                "peak_rss_bytes": self.rss,
            });
            let _ = writeln!(out, "{o}");
        } else {
            let _ = writeln!(
                out,
                "{}: {} records, {:.0} records/s, {mbps:.1} MB/s, latency ({}) p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, client CPU {:.2} s ({:.2} us/record), peak RSS {:.1} MiB",
                self.what,
                self.records,
                rps,
                self.latency_of,
                self.latency_ms[0],
                self.latency_ms[1],
                self.latency_ms[2],
                self.cpu.as_secs_f64(),
                self.cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64,
                self.rss as f64 / (1 << 20) as f64
            );
        }
    }
}

pub async fn produce(seeds: &[&str], cluster: kafkit::ClusterConfig, a: ProduceArgs) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    let acks = match a.acks.as_str() {
        "0" => Acks::None,
        "1" => Acks::Leader,
        "all" | "-1" => Acks::All,
        other => return Err(format!("--acks: 0, 1 or all, not {other:?}")),
    };
    let c = kafkit::Cluster::connect(seeds, cluster.clone()).await.map_err(e)?;
    if c.topic(&a.topic).await.is_err() {
        let conn = c.controller(kafkit::Workload::Admin).await.map_err(e)?;
        if let Err(err) = conn.create_topics(&[TopicConfig::new(&a.topic, a.partitions)]).await {
            if err.error_code() != Some(kafkit::protocol::ErrorCode::TopicAlreadyExists) {
                return Err(err.to_string());
            }
        }
    }
    let config = WriterConfig::default()
        .with_topic(&a.topic)
        .with_acks(acks)
        .with_idempotent(acks == Acks::All)
        .with_compression(a.compression)
        .with_linger(a.linger)
        .with_batch_bytes(a.batch_size)
        .with_batch_size(usize::MAX / 2)
        .with_cluster(cluster);
    let w = Writer::new(seeds, config).await.map_err(e)?;
    // Payloads: fixed bytes, cheap to clone (the cost measured is the client's).
    let value = Bytes::from(vec![b'x'; a.record_size]);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, kafkit::DeliveryFuture)>(1 << 16);
    let collector = tokio::spawn(async move {
        let mut lat: Vec<u32> = Vec::new();
        let mut failed = 0u64;
        let mut first_err = None;
        while let Some((sent, f)) = rx.recv().await {
            match f.await {
                Ok(_) => lat.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32),
                Err(err) => {
                    failed += 1;
                    first_err.get_or_insert(err.to_string());
                }
            }
        }
        (lat, failed, first_err)
    });
    let started = Instant::now();
    for i in 0..a.records {
        if a.rate > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / a.rate as f64);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        let key = (a.key_size > 0).then(|| {
            let k = format!("{:0width$}", i % 100_000, width = a.key_size);
            Bytes::from(k.into_bytes())
        });
        let m = Message::new(key, Some(value.clone()));
        let f = w.write(m).await.map_err(e)?;
        if tx.send((Instant::now(), f)).await.is_err() {
            break;
        }
    }
    drop(tx);
    w.flush().await.map_err(e)?;
    let (mut lat, failed, first_err) = collector.await.map_err(|err| err.to_string())?;
    let elapsed = started.elapsed();
    w.close().await.map_err(e)?;
    if failed > 0 {
        return Err(format!("{failed} records not acknowledged: {}", first_err.unwrap_or_default()));
    }
    let (cpu, rss) = usage();
    Report {
        what: "produce",
        records: a.records,
        bytes: a.records * (a.record_size + a.key_size) as u64,
        elapsed,
        latency_ms: percentiles(&mut lat),
        latency_of: "send to acknowledgement",
        cpu,
        rss,
    }
    .print(a.json);
    Ok(())
}

pub async fn consume(seeds: &[&str], cluster: kafkit::ClusterConfig, a: ConsumeArgs) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    let c = kafkit::Cluster::connect(seeds, cluster.clone()).await.map_err(e)?;
    let t = c.topic(&a.topic).await.map_err(e)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, u64, Vec<u32>)>(1024);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in &t.partitions {
        let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
        let config =
            ReaderConfig::new(&a.topic, p.id).with_max_wait(Duration::from_millis(100)).with_cluster(cluster.clone());
        let (tx, stop) = (tx.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
            let Ok(mut r) = Reader::new(&seeds, config).await else { return };
            let (mut n, mut bytes, mut lat) = (0u64, 0u64, Vec::with_capacity(1024));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let m = match tokio::time::timeout(Duration::from_millis(100), r.read_message()).await {
                    Ok(Ok(m)) => Some(m),
                    Ok(Err(_)) => return,
                    Err(_) => None,
                };
                let idle = m.is_none();
                if let Some(m) = m {
                    n += 1;
                    bytes += (m.key.as_ref().map_or(0, |k| k.len()) + m.value.as_ref().map_or(0, |v| v.len())) as u64;
                    if let Some(t) = m.time {
                        let d = SystemTime::now().duration_since(t).unwrap_or_default();
                        lat.push(d.as_micros().min(u32::MAX as u128) as u32);
                    }
                }
                // Report every 1024 records, and whatever there is when the partition is idle.
                if n >= 1024 || (idle && n > 0) {
                    if tx.send((n, bytes, std::mem::take(&mut lat))).await.is_err() {
                        return;
                    }
                    (n, bytes) = (0, 0);
                }
            }
            let _ = tx.send((n, bytes, lat)).await;
        }));
    }
    drop(tx);
    let (mut records, mut bytes, mut lat) = (0u64, 0u64, Vec::new());
    while records < a.records {
        match rx.recv().await {
            Some((n, b, l)) => {
                records += n;
                bytes += b;
                lat.extend(l);
            }
            None => return Err(format!("only {records} of {} records could be read", a.records)),
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let (cpu, rss) = usage();
    Report {
        what: "consume",
        records,
        bytes,
        elapsed,
        latency_ms: percentiles(&mut lat),
        latency_of: "record timestamp to receipt",
        cpu,
        rss,
    }
    .print(a.json);
    Ok(())
}
