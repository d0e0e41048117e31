//! The clients' load tests, each configured as `kafkit perf` is (see [`FAIR`]), reporting the
//! same fields. The producers send the same records ([`crate::payload`]): record `i` has the
//! same key and value in every client, and goes to partition `i % partitions`.

use crate::payload::{Arena, Payload, Text};
use kafkit_cli::report::{Acknowledgements, Pace, Receipts, Report};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The settings every producer gets, kafkit included: linger 5 ms, batches of up to 1 MiB,
/// acks=all (with idempotence where the client has it: kafkit and rdkafka; rskafka has
/// none), at most 100,000 records waiting in the client.
pub const FAIR: &str =
    "linger 5 ms, 1 MiB batches, acks=all, idempotent where supported, 100,000 records queued at most";

pub(crate) const LINGER: Duration = Duration::from_millis(5);
pub(crate) const BATCH_BYTES: usize = 1 << 20;
const QUEUED: usize = 100_000;
/// How long a consumer's fetch waits for data (kafkit perf's readers use the same).
const MAX_WAIT_MS: i32 = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Peer {
    /// kafkit's producer as `kafkit perf produce` runs it, on the harness's payload (its
    /// consumer is `kafkit perf consume`).
    Kafkit,
    Rdkafka,
    /// rdkafka as above without idempotence (`enable.idempotence=false`: no producer id,
    /// no sequence numbers), as issue 17 asks beside the idempotent one.
    RdkafkaPlain,
    Rskafka,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Op {
    Produce,
    Consume,
}

#[derive(clap::Args)]
pub struct Args {
    pub peer: Peer,
    pub op: Op,
    pub topic: String,
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value bytes per record (produce): a 12-digit sequence number, then text.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Key bytes per record (produce; 0: no keys).
    #[arg(long, visible_alias = "keys", default_value_t = crate::payload::DEFAULT_KEY_SIZE)]
    pub key_size: usize,
    /// The text values are cut from (produce; see `kafkit-peers payload`): raw, or an lz4
    /// frame; default the Debian package index when present, else random words.
    #[arg(long, env = crate::payload::TEXT_ENV, value_name = "PATH")]
    pub payload_text: Option<PathBuf>,
    /// none or lz4 (produce).
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Records per second to send at (produce; 0: as fast as the client takes them): the
    /// harness's latency at half load. Record `i` is sent `i / rate` seconds after the start.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Partitions of the topic (it exists already).
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// kafkit's `WriterConfig::max_request_bytes` (produce; the others ignore it): most
    /// bytes of record batches in one Produce request.
    #[arg(long, default_value_t = kafkit::producer::DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<(), String> {
    let report = match (a.peer, a.op) {
        (Peer::Kafkit, Op::Produce) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(kafkit_produce(&a))?
        }
        (Peer::Kafkit, Op::Consume) => return Err("kafkit's consumer is `kafkit perf consume`".into()),
        (Peer::Rdkafka, Op::Produce) => rdkafka_produce(&a, true)?,
        (Peer::RdkafkaPlain, Op::Produce) => rdkafka_produce(&a, false)?,
        (Peer::Rdkafka | Peer::RdkafkaPlain, Op::Consume) => rdkafka_consume(&a)?,
        (Peer::Rskafka, op) => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            match op {
                Op::Produce => rt.block_on(rskafka_produce(&a))?,
                Op::Consume => rt.block_on(rskafka_consume(&a))?,
            }
        }
    };
    report.print(a.json);
    Ok(())
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// The records to produce: made from the text before the clock starts, each record when it
/// is sent (the same work in every client).
fn payload(a: &Args) -> Result<Payload, String> {
    Payload::check_records(a.records)?;
    Payload::new(&Text::load(a.payload_text.as_deref())?, a.record_size, a.key_size)
}

/// Key and value bytes of the produced records.
fn produced_bytes(a: &Args) -> u64 {
    a.records * (a.record_size + a.key_size) as u64
}

// ---- kafkit ----

/// `kafkit perf produce`'s loop and writer settings (crates/kafkit-cli/src/perf.rs), on the
/// harness's payload: the default round-robin balancer puts record `i` on partition
/// `i % partitions`; each partition's acknowledgements are looked at, oldest first, every 64 writes.
async fn kafkit_produce(a: &Args) -> Result<Report, String> {
    use kafkit::{Acks, Compression, Message, Writer, WriterConfig};
    let e = |e: kafkit::Error| e.to_string();
    let payload = payload(a)?;
    let compression: Compression = a.compression.parse().map_err(|e| format!("{e:?}"))?;
    let config = WriterConfig::default()
        .with_topic(&a.topic)
        .with_acks(Acks::All)
        .with_idempotent(true)
        .with_compression(compression)
        .with_linger(LINGER)
        .with_batch_bytes(BATCH_BYTES)
        .with_produce_concurrency(kafkit::producer::DEFAULT_PRODUCE_CONCURRENCY)
        .with_max_request_bytes(a.max_request_bytes)
        .with_batch_size(usize::MAX / 2);
    let seeds: Vec<&str> = a.brokers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let w = Writer::new(&seeds, config).await.map_err(e)?;
    let mut arena = Arena::new();
    // A queue per partition: record i goes to partition i % partitions (RoundRobin from 0).
    let partitions = a.partitions.max(1) as usize;
    let mut acked = Acknowledgements::new(a.records, partitions);
    let started = acked.started();
    let pace = Pace::new(started, a.rate);
    for i in 0..a.records {
        if let Some(d) = pace.wait(i) {
            tokio::time::sleep(d).await;
        }
        let key = arena.key(&payload, i);
        let value = arena.value(&payload, i);
        acked.written(i as usize % partitions, w.write(Message::new(key, Some(value))).await.map_err(e)?)?;
    }
    let mut lat = acked.finish().await?;
    let elapsed = started.elapsed();
    w.close().await.map_err(e)?;
    Ok(Report::finish("produce", a.records, produced_bytes(a), elapsed, &mut lat))
}

// ---- rdkafka (librdkafka 2.12 through the rdkafka crate) ----

struct Deliveries {
    started: Instant,
    lat: Mutex<Vec<u32>>,
    failed: AtomicU64,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    /// Microseconds from the start to the send.
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, sent_us: usize) {
        match r {
            Ok(_) => {
                let now = self.started.elapsed().as_micros() as usize;
                let l = now.saturating_sub(sent_us).min(u32::MAX as usize) as u32;
                self.lat.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(l);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn rdkafka_config(a: &Args) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &a.brokers).set("log_level", "3");
    c
}

/// rdkafka's `ThreadedProducer`: its own thread polls for delivery reports, the way that
/// spent the least CPU per record here (a `BaseProducer` polled from the sending loop every
/// 1,024 sends spent 0.99-1.02 s on 1M x 100 B against 0.78-0.86 s, at the same rate).
fn rdkafka_produce(a: &Args, idempotent: bool) -> Result<Report, String> {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let started = Instant::now();
    let ctx = Deliveries { started, lat: Mutex::new(Vec::new()), failed: AtomicU64::new(0) };
    let producer: ThreadedProducer<Deliveries> = rdkafka_config(a)
        .set("linger.ms", LINGER.as_millis().to_string())
        .set("batch.size", BATCH_BYTES.to_string())
        // batch.num.messages (default 10,000) and message.max.bytes (1,000,000) would
        // otherwise cut batches before 1 MiB.
        .set("batch.num.messages", "1000000")
        .set("message.max.bytes", (BATCH_BYTES + 65536).to_string())
        .set("acks", "all")
        .set("enable.idempotence", idempotent.to_string())
        .set("compression.codec", &a.compression)
        .set("queue.buffering.max.messages", QUEUED.to_string())
        .create_with_context(ctx)
        .map_err(|e| e.to_string())?;
    let payload = payload(a)?;
    // librdkafka copies key and value (RD_KAFKA_MSG_F_COPY): one buffer of each serves all.
    let mut value = Vec::with_capacity(a.record_size);
    let mut key = vec![0u8; a.key_size];
    let t0 = Instant::now();
    let pace = Pace::new(t0, a.rate);
    for i in 0..a.records {
        if let Some(d) = pace.wait(i) {
            std::thread::sleep(d);
        }
        let sent = started.elapsed().as_micros() as usize;
        value.clear();
        payload.put_value(i, &mut value);
        let partition = (i % a.partitions.max(1) as u64) as i32;
        let mut rec =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&a.topic, sent).payload(&value[..]).partition(partition);
        if a.key_size > 0 {
            payload.fill_key(i, &mut key);
            rec = rec.key(&key[..]);
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    // The producer's own thread serves callbacks; wait for room.
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => return Err(e.to_string()),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).map_err(|e| e.to_string())?;
    let elapsed = t0.elapsed();
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{failed} records not acknowledged"));
    }
    let mut lat = std::mem::take(&mut *ctx.lat.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    Ok(Report::finish("produce", a.records, produced_bytes(a), elapsed, &mut lat))
}

fn rdkafka_consume(a: &Args) -> Result<Report, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message as _;
    let t0 = Instant::now();
    let consumer: BaseConsumer = rdkafka_config(a)
        .set("group.id", format!("kafkit-peers-{}", a.topic))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", MAX_WAIT_MS.to_string())
        // Verify record batch CRCs, as kafkit and rskafka always do (librdkafka's default
        // is not to).
        .set("check.crcs", "true")
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..a.partitions {
        tpl.add_partition_offset(&a.topic, p, rdkafka::Offset::Beginning).map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut receipts = Receipts::with_capacity(a.records as usize);
    while n < a.records {
        if t0.elapsed() > Duration::from_secs(300) {
            return Err(format!("only {n} of {} records read", a.records));
        }
        // A message already fetched, or else a wait for one (after which the clock is read).
        let m = match consumer.poll(Duration::ZERO) {
            None => {
                receipts.waited();
                consumer.poll(Duration::from_millis(100))
            }
            m => m,
        };
        match m {
            Some(Ok(m)) => {
                n += 1;
                bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
                if let Some(ts) = m.timestamp().to_millis() {
                    receipts.record(ts);
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => {}
        }
    }
    Ok(Report::finish("consume", n, bytes, t0.elapsed(), &mut receipts.latency_us))
}

// ---- rskafka 0.6 ----

async fn rskafka_partitions(a: &Args) -> Result<Vec<Arc<rskafka::client::partition::PartitionClient>>, String> {
    let client =
        rskafka::client::ClientBuilder::new(vec![a.brokers.clone()]).build().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for p in 0..a.partitions {
        let pc = client
            .partition_client(a.topic.clone(), p, rskafka::client::partition::UnknownTopicHandling::Retry)
            .await
            .map_err(|e| e.to_string())?;
        out.push(Arc::new(pc));
    }
    Ok(out)
}

async fn rskafka_produce(a: &Args) -> Result<Report, String> {
    use futures::stream::{FuturesUnordered, StreamExt};
    use rskafka::client::partition::Compression;
    use rskafka::client::producer::{aggregator::RecordAggregator, BatchProducerBuilder};
    let compression = match a.compression.as_str() {
        "none" => Compression::NoCompression,
        "lz4" => Compression::Lz4,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "zstd" => Compression::Zstd,
        c => return Err(format!("unknown compression {c}")),
    };
    let producers: Vec<_> = rskafka_partitions(a)
        .await?
        .into_iter()
        .map(|pc| {
            BatchProducerBuilder::new(pc)
                .with_linger(LINGER)
                .with_compression(compression)
                .build(RecordAggregator::new(BATCH_BYTES))
        })
        .collect();
    let payload = payload(a)?;
    let t0 = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut lat = Vec::with_capacity(a.records as usize);
    let (mut failed, mut first_error) = (0u64, None);
    let mut take = |r: Result<Duration, String>| match r {
        Ok(d) => lat.push(micros(d)),
        Err(e) => {
            failed += 1;
            first_error.get_or_insert(e);
        }
    };
    let pace = Pace::new(t0, a.rate);
    for i in 0..a.records {
        if let Some(d) = pace.wait(i) {
            // The pending produce futures drive rskafka's batches (their linger and flush):
            // keep polling them while waiting.
            let due = tokio::time::sleep(d);
            tokio::pin!(due);
            loop {
                tokio::select! {
                    _ = &mut due => break,
                    Some(r) = pending.next(), if !pending.is_empty() => take(r),
                }
            }
        }
        let record = rskafka::record::Record {
            // rskafka takes owned vectors: one of each per record, as the one-byte values were.
            key: payload.key(i),
            value: Some(payload.value(i)),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        };
        let p = &producers[(i % producers.len() as u64) as usize];
        let sent = Instant::now();
        pending.push(async move { p.produce(record).await.map(|_| sent.elapsed()).map_err(|e| e.to_string()) });
        // Round-robin records over the partitions, at most QUEUED waiting.
        while pending.len() >= QUEUED {
            if let Some(r) = pending.next().await {
                take(r);
            }
        }
    }
    while let Some(r) = pending.next().await {
        take(r);
    }
    let elapsed = t0.elapsed();
    if failed > 0 {
        return Err(format!("{failed} records not acknowledged, the first: {}", first_error.unwrap_or_default()));
    }
    Ok(Report::finish("produce", a.records, produced_bytes(a), elapsed, &mut lat))
}

async fn rskafka_consume(a: &Args) -> Result<Report, String> {
    use futures::StreamExt;
    use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
    let t0 = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, u64, Vec<u32>)>(1024);
    let mut tasks = Vec::new();
    for pc in rskafka_partitions(a).await? {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = StreamConsumerBuilder::new(pc, StartOffset::Earliest).with_max_wait_ms(MAX_WAIT_MS).build();
            let (mut n, mut bytes) = (0u64, 0u64);
            let mut receipts = Receipts::with_capacity(1024);
            loop {
                let r = receipts.next(s.next(), Duration::from_secs(300)).await.flatten();
                let Some(Ok((r, high_watermark))) = r else { return };
                n += 1;
                let rec = &r.record;
                bytes += (rec.value.as_ref().map_or(0, Vec::len) + rec.key.as_ref().map_or(0, Vec::len)) as u64;
                receipts.record(rec.timestamp.timestamp_millis());
                // Report every 1024 records, and whatever there is once caught up.
                if n >= 1024 || r.offset + 1 >= high_watermark {
                    if tx.send((n, bytes, std::mem::take(&mut receipts.latency_us))).await.is_err() {
                        return;
                    }
                    (n, bytes) = (0, 0);
                }
            }
        }));
    }
    drop(tx);
    let (mut n, mut bytes, mut lat) = (0u64, 0u64, Vec::new());
    while n < a.records {
        match tokio::time::timeout(Duration::from_secs(300), rx.recv()).await {
            Ok(Some((c, b, l))) => {
                n += c;
                bytes += b;
                lat.extend(l);
            }
            _ => return Err(format!("only {n} of {} records read", a.records)),
        }
    }
    let elapsed = t0.elapsed();
    for t in tasks {
        t.abort();
    }
    Ok(Report::finish("consume", n, bytes, elapsed, &mut lat))
}
