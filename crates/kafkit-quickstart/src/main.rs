//! The quickstart: kafkit's `Writer` and `Reader` move a real dataset through a real broker
//! and check that every record came back.
//!
//!     scripts/quickstart.sh                 # the Debian package index, via a local Apache Kafka
//!     cargo run --profile quickstart -p kafkit-quickstart -- --brokers HOST:PORT [FILE]
//!
//! The dataset is split into records at blank lines (one record per stanza), keyed by the
//! stanza's `Package:` value (or its first line). The records go to a new 6-partition topic
//! through a `Writer` with the Murmur2 balancer (a key's records share a partition, as with
//! the Java client), lz4-compressed, idempotent, acks=all; six `Reader`s, one per partition,
//! read them back. Every record must arrive exactly once with its key and bytes intact, and
//! the records of one key in the order they were written; the exit code says whether they
//! did.
use bytes::Bytes;
use kafkit::cluster::Workload;
use kafkit::{Compression, Message, Murmur2Balancer, Reader, ReaderConfig, TopicConfig, Writer, WriterConfig};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const PARTITIONS: i32 = 6;

type Error = Box<dyn std::error::Error + Send + Sync>;

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
        let first = v.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let key = v.split(|&b| b == b'\n').find_map(|l| l.strip_prefix(b"Package: ")).unwrap_or(first);
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "localhost:9092".into());
    let mut file = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--brokers" => brokers = args.next().ok_or("--brokers needs HOST:PORT")?,
            f => file = Some(f.to_string()),
        }
    }
    let seeds: Vec<&str> = brokers.split(',').collect();
    let records = load(file.as_deref())?;
    let total_bytes: usize = records.iter().map(|(_, v)| v.len()).sum();
    eprintln!("dataset: {} records, {:.1} MB", records.len(), total_bytes as f64 / 1e6);

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let topic = format!("quickstart-{}-{}", std::process::id(), now.as_millis());
    let config = WriterConfig::default()
        .with_topic(&topic)
        .with_balancer(Murmur2Balancer::new())
        .with_compression(Compression::Lz4)
        .with_batch_size(10_000);
    let writer = Writer::new(&seeds, config).await?;
    writer.cluster().controller(Workload::Admin).await?.create_topics(&[TopicConfig::new(&topic, PARTITIONS)]).await?;
    println!("topic       {topic} ({PARTITIONS} partitions, murmur2 key hash)");

    // Produce: every record asynchronously, then wait for every acknowledgement.
    let started = Instant::now();
    let mut futures = Vec::with_capacity(records.len());
    for (k, v) in &records {
        futures.push(writer.write(Message::new(Some(k.clone()), Some(v.clone()))).await?);
    }
    // What each partition should hold, in offset order: the record indexes.
    let mut expected: Vec<Vec<(i64, usize)>> = vec![Vec::new(); PARTITIONS as usize];
    for (i, f) in futures.into_iter().enumerate() {
        let d = f.await?;
        expected[d.partition as usize].push((d.offset, i));
    }
    writer.close().await?;
    let produced = started.elapsed();

    // Consume: one reader per partition, up to what was written there.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..PARTITIONS {
        let want = expected[p as usize].len();
        let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
            let mut r = Reader::new(&seeds, ReaderConfig::new(&topic, p)).await?;
            let mut got = Vec::with_capacity(want);
            while got.len() < want {
                got.push(r.read_message().await?);
            }
            Ok::<_, kafkit::Error>(got)
        }));
    }
    let mut problems = 0usize;
    let mut read = 0usize;
    let mut checksum = 0u64;
    for (p, t) in tasks.into_iter().enumerate() {
        let got = t.await??;
        if p == 0 {
            println!("first records read back from partition 0:");
            for m in got.iter().take(3) {
                let value = m.value.as_deref().unwrap_or_default();
                let line = value.split(|&b| b == b'\n').nth(1).unwrap_or_default();
                println!(
                    "  offset {:<5} key {:<28} {:>5} B  {}",
                    m.offset,
                    String::from_utf8_lossy(m.key.as_deref().unwrap_or_default()),
                    value.len(),
                    String::from_utf8_lossy(line)
                );
            }
        }
        read += got.len();
        let mut exp = expected[p].clone();
        exp.sort();
        for (m, (offset, i)) in got.iter().zip(&exp) {
            let (k, v) = &records[*i];
            if m.offset != *offset || m.key.as_ref() != Some(k) || m.value.as_ref() != Some(v) {
                problems += 1;
            }
            checksum = checksum.wrapping_add(crc32fast::hash(k) as u64 * 31 + crc32fast::hash(v) as u64);
        }
        problems += exp.len().abs_diff(got.len());
        // A key's records kept their order: offsets within a partition follow write order.
        if !exp.windows(2).all(|w| w[0].1 < w[1].1) {
            problems += 1;
        }
    }
    let consumed = started.elapsed();
    let mb = total_bytes as f64 / 1e6;
    println!("records     {} written, {read} read", records.len());
    println!("bytes       {mb:.1} MB");
    println!(
        "produce     {:.2} s, {:.1} MB/s (idempotent, acks=all, lz4)",
        produced.as_secs_f64(),
        mb / produced.as_secs_f64()
    );
    println!("consume     {:.2} s, {:.1} MB/s", consumed.as_secs_f64(), mb / consumed.as_secs_f64());
    println!("checksum    {checksum:016x}");
    if problems > 0 || read != records.len() {
        println!("FAILED: {problems} records missing, duplicated, altered or out of order");
        std::process::exit(1);
    }
    println!("OK: every record arrived exactly once, intact, in order per key");
    Ok(())
}
