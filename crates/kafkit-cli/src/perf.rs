//! `kafkit perf produce` and `kafkit perf consume`: load generators that report throughput,
//! latency percentiles, client CPU and peak memory (like kafka-producer-perf-test and
//! kafka-consumer-perf-test).

use bytes::Bytes;
use kafkit::{Acks, Compression, Error, Message, Reader, ReaderConfig, TopicConfig, Writer, WriterConfig};
use kafkit_cli::report::{Acknowledgements, Pace, Receipts, Report};
use std::time::{Duration, Instant, UNIX_EPOCH};

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
    /// Connections per partition leader carrying Produce requests
    /// (`WriterConfig::produce_concurrency`).
    #[arg(long, default_value_t = kafkit::producer::DEFAULT_PRODUCE_CONCURRENCY)]
    pub produce_concurrency: usize,
    /// Records per second to aim for (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Values of random text (letters, digits, space and dot; distinct for up to 100,000
    /// records, then repeating) instead of one repeated byte. The same generator as the
    /// Java peer's `txn_perf`, so both send the same bytes.
    #[arg(long)]
    pub random_values: bool,
    /// Copy every value into an allocation of its own before writing it, as an application
    /// building each record does (otherwise the values share a few buffers): for measuring
    /// the Writer's memory against --queue-bytes.
    #[arg(long)]
    pub copy_values: bool,
    /// Most bytes of records written and not yet acknowledged (`WriterConfig::queue_bytes`,
    /// Java `buffer.memory`); default the Writer's, 32 MiB.
    #[arg(long, default_value_t = kafkit::producer::DEFAULT_QUEUE_BYTES)]
    pub queue_bytes: usize,
    /// Write in transactions with this transactional id (`WriterConfig::transactional_id`):
    /// begin, write --transaction-records records, commit, until --records are written. Keyed
    /// records go where the Java client's default partitioner sends them (murmur2). The
    /// report adds transactions per second; its latency is from begin to the end of the
    /// commit, and its client CPU is that of the timed part only (after init_transactions).
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// With --transactional-id: records per transaction.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "transactional_id")]
    pub transaction_records: u64,
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
    /// Fetches in flight per partition leader (`ReaderConfig::fetch_concurrency`).
    #[arg(long, default_value_t = kafkit::consumer::DEFAULT_FETCH_CONCURRENCY)]
    pub fetch_concurrency: usize,
    /// Most bytes per partition per fetch (`ReaderConfig::max_bytes`, Java
    /// `max.partition.fetch.bytes`).
    #[arg(long, default_value_t = kafkit::consumer::DEFAULT_READER_MAX_BYTES)]
    pub max_bytes: i32,
    /// Fetched, unread message bytes the reader may hold (`ReaderConfig::prefetch_bytes`).
    #[arg(long, default_value_t = kafkit::consumer::DEFAULT_PREFETCH_BYTES)]
    pub prefetch_bytes: usize,
    /// Records per second the application takes at most (0: as fast as the reader gives
    /// them): a slow application, for measuring the reader's memory against
    /// --prefetch-bytes.
    #[arg(long, default_value_t = 0)]
    pub max_rate: u64,
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
    let mut config = WriterConfig::default()
        .with_topic(&a.topic)
        .with_acks(acks)
        .with_idempotent(acks == Acks::All)
        .with_compression(a.compression)
        .with_linger(a.linger)
        .with_batch_bytes(a.batch_size)
        .with_produce_concurrency(a.produce_concurrency)
        .with_batch_size(usize::MAX / 2)
        .with_queue_bytes(a.queue_bytes)
        .with_cluster(cluster);
    if let Some(id) = &a.transactional_id {
        if acks != Acks::All {
            return Err("--transactional-id needs --acks all".into());
        }
        config = config.with_transactional_id(id);
        if a.key_size > 0 {
            config = config.with_balancer(kafkit::Murmur2Balancer::new());
        }
    }
    let w = Writer::new(seeds, config).await.map_err(e)?;
    if a.transactional_id.is_some() {
        return crate::perf_txn::produce(w, &a).await;
    }
    // Payloads: made before the clock starts, cheap to clone (the cost measured is the
    // client's).
    let values = if a.random_values {
        crate::perf_txn::random_values(a.records.clamp(1, 100_000) as usize, a.record_size)
    } else {
        vec![Bytes::from(vec![b'x'; a.record_size])]
    };
    // One queue: which partition the balancer picks is not known here.
    let mut acked = Acknowledgements::new(a.records, 1);
    let started = acked.started();
    let pace = Pace::new(started, a.rate);
    for i in 0..a.records {
        if let Some(d) = pace.wait(i) {
            tokio::time::sleep(d).await;
        }
        let key = (a.key_size > 0).then(|| {
            let k = format!("{:0width$}", i % 100_000, width = a.key_size);
            Bytes::from(k.into_bytes())
        });
        let mut value = values[(i % values.len() as u64) as usize].clone();
        if a.copy_values {
            value = Bytes::copy_from_slice(&value);
        }
        let f = w.write(Message::new(key, Some(value))).await.map_err(e)?;
        acked.written(0, f)?;
    }
    let mut lat = acked.finish().await?;
    let elapsed = started.elapsed();
    w.close().await.map_err(e)?;
    Report::finish("produce", a.records, a.records * (a.record_size + a.key_size) as u64, elapsed, &mut lat)
        .print(a.json);
    Ok(())
}

pub async fn consume(seeds: &[&str], cluster: kafkit::ClusterConfig, a: ConsumeArgs) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    // Timed from the first connection, as the peers are timed from building their client.
    let started = Instant::now();
    let c = kafkit::Cluster::connect(seeds, cluster).await.map_err(e)?;
    let t = c.topic(&a.topic).await.map_err(e)?;
    // One reader of every partition (Java's assign()): the partition leader's partitions
    // share its fetch tasks.
    let parts = t.partitions.iter().map(|p| kafkit::TopicPartition::new(a.topic.clone(), p.id));
    let config = ReaderConfig::assign(parts)
        .with_max_wait(Duration::from_millis(100))
        .with_fetch_concurrency(a.fetch_concurrency)
        .with_max_bytes(a.max_bytes)
        .with_prefetch_bytes(a.prefetch_bytes);
    let mut r = Reader::with_cluster(c, config).await.map_err(e)?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut receipts = Receipts::with_capacity(a.records.min(1 << 24) as usize);
    let pace = Pace::new(started, a.max_rate);
    while n < a.records {
        if let Some(d) = pace.wait(n) {
            tokio::time::sleep(d).await;
        }
        let Some(m) = receipts.next(r.read_message(), Duration::from_secs(30)).await else {
            return Err(format!("only {n} of {} records could be read in time", a.records));
        };
        let m = m.map_err(e)?;
        n += 1;
        bytes += m.size() as u64;
        if let Some(t) = m.time {
            receipts.record(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64));
        }
    }
    let elapsed = started.elapsed();
    let stats = r.stats();
    r.abort();
    let mut report = Report::finish("consume", n, bytes, elapsed, &mut receipts.latency_us);
    report.fetch_requests = Some((stats.fetches, stats.incremental_fetches, stats.fetch_partitions));
    report.print(a.json);
    Ok(())
}
