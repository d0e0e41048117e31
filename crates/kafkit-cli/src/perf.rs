//! `kafkit perf produce` and `kafkit perf consume`: load generators that report throughput,
//! latency percentiles, client CPU and peak memory (like kafka-producer-perf-test and
//! kafka-consumer-perf-test).

use bytes::Bytes;
use kafkit::{Acks, Compression, Error, Message, Reader, ReaderConfig, TopicConfig, Writer, WriterConfig};
use kafkit_cli::report::{percentiles, usage, Report};
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
    // Latency per record, taken in the per-batch completion: acknowledgement time minus the
    // time the record was handed to `write` (its timestamp, set just before).
    #[derive(Default)]
    struct Seen {
        lat: Vec<u32>,
        failed: u64,
        first_err: Option<String>,
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let seen_in = seen.clone();
    let config = WriterConfig::default()
        .with_topic(&a.topic)
        .with_acks(acks)
        .with_idempotent(acks == Acks::All)
        .with_compression(a.compression)
        .with_linger(a.linger)
        .with_batch_bytes(a.batch_size)
        .with_batch_size(usize::MAX / 2)
        .with_cluster(cluster)
        .with_max_in_flight(std::env::var("MIF").ok().and_then(|v| v.parse().ok()).unwrap_or(5))
        .with_completion(move |r, msgs| {
            let now = SystemTime::now();
            let mut s = seen_in.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match r {
                Ok(_) => s.lat.extend(msgs.iter().map(|m| {
                    let d = m.time.and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                    d.as_micros().min(u32::MAX as u128) as u32
                })),
                Err(err) => {
                    s.failed += msgs.len() as u64;
                    s.first_err.get_or_insert(err.to_string());
                }
            }
        });
    let w = Writer::new(seeds, config).await.map_err(e)?;
    // Payloads: fixed bytes, cheap to clone (the cost measured is the client's).
    let value = Bytes::from(vec![b'x'; a.record_size]);
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
        let mut m = Message::new(key, Some(value.clone()));
        m.time = Some(SystemTime::now());
        // The acknowledgement is seen by the completion; the future is not needed.
        drop(w.write(m).await.map_err(e)?);
    }
    w.flush().await.map_err(e)?;
    let elapsed = started.elapsed();
    w.close().await.map_err(e)?;
    let Seen { mut lat, failed, first_err } =
        std::mem::take(&mut *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
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
