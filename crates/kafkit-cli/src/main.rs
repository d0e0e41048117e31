//! `kafkit`: topics, produce, consume and offsets from the command line.
//!
//! Every failure prints one line, `kafkit: error: ...`, and exits 1; a malformed command
//! line exits 2 with clap's message.

use base64::Engine as _;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use kafkit::cluster::{Cluster, ClusterConfig, Workload};
use kafkit::protocol::messages::{describe_configs_request, DescribeConfigsRequest};
use kafkit::{
    Acks, Compression, Crc32Balancer, Error, Hash, LeastBytes, Message, Murmur2Balancer, Reader, ReaderConfig,
    ReferenceHash, RoundRobin, StartOffset, TopicConfig, Writer, WriterConfig,
};
use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(name = "kafkit", version, about = "A Kafka client: topics, produce, consume, offsets")]
struct Cli {
    /// Bootstrap brokers, comma-separated host:port.
    #[arg(long, global = true, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    brokers: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Topics: list, create, delete, describe.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Writes records read from FILE (or stdin), one per line by default.
    Produce(ProduceArgs),
    /// Prints records of a topic.
    Consume(ConsumeArgs),
    /// Prints the earliest and latest offset of every partition.
    Offsets {
        /// The topic.
        topic: String,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// One topic name per line.
    List,
    /// Creates a topic.
    Create {
        /// The name.
        name: String,
        /// Partitions.
        #[arg(long)]
        partitions: i32,
        /// Replication factor (the broker's default when omitted).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config, KEY=VALUE (repeatable).
        #[arg(long = "config", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    /// Deletes a topic.
    Delete {
        /// The name.
        name: String,
    },
    /// Partitions, leaders, replicas and configs of a topic.
    Describe {
        /// The name.
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AcksArg {
    #[value(name = "0")]
    Zero,
    #[value(name = "1")]
    One,
    #[value(name = "all")]
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum BalancerArg {
    RoundRobin,
    LeastBytes,
    Hash,
    ReferenceHash,
    Crc32,
    Murmur2,
}

#[derive(clap::Args)]
struct ProduceArgs {
    /// The topic.
    topic: String,
    /// Read records from this file instead of stdin.
    file: Option<std::path::PathBuf>,
    /// Record separator.
    #[arg(short = 'D', long, default_value = "\n")]
    delimiter: String,
    /// Split each record into key and value at the first SEP.
    #[arg(short = 'K', long = "key-delimiter", value_name = "SEP")]
    key_delimiter: Option<String>,
    /// A header, KEY=VALUE, on every record (repeatable).
    #[arg(short = 'H', long = "header", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition.
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(short = 'z', long, default_value = "none")]
    compression: Compression,
    /// How keys choose partitions.
    #[arg(long, value_enum, default_value = "murmur2")]
    balancer: BalancerArg,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Value,
    Json,
}

#[derive(clap::Args)]
struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// Only this partition (default: all).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Where to start: first, last, or an offset.
    #[arg(short = 'o', long, default_value = "first")]
    offset: String,
    /// Start at the first record at or after TIME (RFC 3339, or milliseconds since the epoch).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// Stop at the end of every partition (its high watermark).
    #[arg(short = 'e', long)]
    exit_at_end: bool,
    /// Output: the value alone, or one JSON object per record.
    #[arg(short = 'f', long, value_enum, default_value = "value")]
    format: Format,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_millis(ms));
    }
    humantime::parse_rfc3339_weak(s).map_err(|e| format!("bad time {s:?} (RFC 3339 or epoch ms): {e}"))
}

type Outcome = Result<(), String>;

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => fail(&e.to_string()),
    };
    if let Err(e) = rt.block_on(run(cli)) {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    let one_line = msg.replace('\n', " ");
    let _ = writeln!(std::io::stderr(), "kafkit: error: {one_line}");
    std::process::exit(1)
}

fn cluster_config() -> ClusterConfig {
    ClusterConfig {
        // A CLI should fail fast rather than retry for a minute.
        retry_timeout: Duration::from_secs(10),
        dialer: kafkit::Dialer::new().with_connect_timeout(Duration::from_secs(5)).with_client_id("kafkit-cli"),
        ..ClusterConfig::default()
    }
}

async fn run(cli: Cli) -> Outcome {
    let seeds: Vec<String> =
        cli.brokers.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let e = |e: Error| e.to_string();
    match cli.command {
        Command::Topics { command } => {
            let cluster = Cluster::connect(&seeds, cluster_config()).await.map_err(e)?;
            topics(&cluster, command).await
        }
        Command::Offsets { topic } => {
            let cluster = Cluster::connect(&seeds, cluster_config()).await.map_err(e)?;
            let t = cluster.topic(&topic).await.map_err(e)?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "partition\tearliest\tlatest");
            for p in &t.partitions {
                let (conn, _) = cluster.leader(&topic, p.id, Workload::Fetch).await.map_err(e)?;
                let pc = kafkit::Dialer::new().dial_leader(conn.addr(), &topic, p.id).await.map_err(e)?;
                let (first, last) = pc.read_offsets().await.map_err(e)?;
                let _ = writeln!(out, "{}\t{first}\t{last}", p.id);
            }
            Ok(())
        }
        Command::Produce(args) => produce(&seeds, args).await,
        Command::Consume(args) => consume(&seeds, args).await,
    }
}

async fn topics(cluster: &Cluster, command: TopicsCommand) -> Outcome {
    let e = |e: Error| e.to_string();
    let admin = cluster.controller(Workload::Admin).await.map_err(e)?;
    let mut out = std::io::stdout().lock();
    match command {
        TopicsCommand::List => {
            let m = cluster.refresh_metadata(None).await.map_err(e)?;
            for name in m.topics.keys() {
                let _ = writeln!(out, "{name}");
            }
        }
        TopicsCommand::Create { name, partitions, replication_factor, configs } => {
            let mut t = TopicConfig::new(&name, partitions).with_replication_factor(replication_factor.unwrap_or(-1));
            t.configs = configs;
            admin.create_topics(&[t]).await.map_err(e)?;
        }
        TopicsCommand::Delete { name } => admin.delete_topics(&[&name]).await.map_err(e)?,
        TopicsCommand::Describe { name } => {
            let parts = admin.read_partitions(&[&name]).await.map_err(e)?;
            let _ = writeln!(out, "topic {name}: {} partitions", parts.len());
            for p in &parts {
                let leader = p.leader.as_ref().map_or("none".to_string(), |l| format!("{} ({})", l.id, l.addr()));
                let _ =
                    writeln!(out, "  partition {}\tleader {leader}\treplicas {:?}\tisr {:?}", p.id, p.replicas, p.isr);
            }
            let req = DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(name),
            ]);
            let resp = admin.request(&req).await.map_err(e)?;
            let _ = writeln!(out, "configs:");
            for r in &resp.results {
                if r.error_code != 0 {
                    let _ = writeln!(out, "  (error {})", kafkit::protocol::ErrorCode::from_code(r.error_code));
                }
                for c in &r.configs {
                    let _ = writeln!(out, "  {}={}", c.name, c.value.as_deref().unwrap_or(""));
                }
            }
        }
    }
    Ok(())
}

fn progress(len: Option<u64>, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_message(what.to_string());
    Some(bar)
}

async fn produce(seeds: &[&str], args: ProduceArgs) -> Outcome {
    let mut input = Vec::new();
    match &args.file {
        Some(f) => input = std::fs::read(f).map_err(|e| format!("reading {}: {e}", f.display()))?,
        None => {
            std::io::stdin().read_to_end(&mut input).map_err(|e| format!("reading stdin: {e}"))?;
        }
    }
    if args.delimiter.is_empty() {
        return Err("the delimiter must not be empty".into());
    }
    let text = Bytes::from(input);
    let mut records = Vec::new();
    let delim = args.delimiter.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i + delim.len() <= text.len() {
        if &text[i..i + delim.len()] == delim {
            records.push(text.slice(start..i));
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        records.push(text.slice(start..));
    }
    let acks = match args.acks {
        AcksArg::Zero => Acks::None,
        AcksArg::One => Acks::Leader,
        AcksArg::All => Acks::All,
    };
    let mut config = WriterConfig::default()
        .with_topic(&args.topic)
        .with_acks(acks)
        .with_idempotent(acks == Acks::All)
        .with_compression(args.compression)
        .with_batch_size(10_000)
        .with_cluster(cluster_config())
        .with_delivery_timeout(Duration::from_secs(30));
    config = match (args.partition, args.balancer) {
        (Some(p), _) => config.with_balancer(move |_: &Message, parts: &[i32]| if parts.contains(&p) { p } else { -1 }),
        (None, BalancerArg::RoundRobin) => config.with_balancer(RoundRobin::new()),
        (None, BalancerArg::LeastBytes) => config.with_balancer(LeastBytes::new()),
        (None, BalancerArg::Hash) => config.with_balancer(Hash::new()),
        (None, BalancerArg::ReferenceHash) => config.with_balancer(ReferenceHash::new()),
        (None, BalancerArg::Crc32) => config.with_balancer(Crc32Balancer::new()),
        (None, BalancerArg::Murmur2) => config.with_balancer(Murmur2Balancer::new()),
    };
    let writer = Writer::new(seeds, config).await.map_err(|e| e.to_string())?;
    if let Some(p) = args.partition {
        let t = writer.cluster().topic(&args.topic).await.map_err(|e| e.to_string())?;
        if !t.partitions.iter().any(|x| x.id == p) {
            return Err(format!("topic {} has no partition {p}", args.topic));
        }
    }
    let headers: Vec<(String, Bytes)> =
        args.headers.iter().map(|(k, v)| (k.clone(), Bytes::copy_from_slice(v.as_bytes()))).collect();
    let bar = progress(Some(records.len() as u64), "producing");
    let mut futures = Vec::with_capacity(records.len());
    for r in records {
        let (key, value) = match &args.key_delimiter {
            Some(sep) => match find(&r, sep.as_bytes()) {
                Some(at) => (Some(r.slice(..at)), r.slice(at + sep.len()..)),
                None => (None, r),
            },
            None => (None, r),
        };
        let mut m = Message::new(key, Some(value));
        for (k, v) in &headers {
            m = m.with_header(k.clone(), Some(v.clone()));
        }
        futures.push(writer.write(m).await.map_err(|e| e.to_string())?);
    }
    let (mut ok, mut failed, mut first_err) = (0u64, 0u64, None);
    for f in futures {
        match f.await {
            Ok(_) => ok += 1,
            Err(e) => {
                failed += 1;
                first_err.get_or_insert(e.to_string());
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    writer.close().await.map_err(|e| e.to_string())?;
    if failed > 0 {
        return Err(format!("{failed} of {} records not acknowledged: {}", ok + failed, first_err.unwrap_or_default()));
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len().max(1)).position(|w| w == needle)
}

fn text_or_b64(b: &Option<Bytes>) -> (serde_json::Value, bool) {
    match b {
        None => (serde_json::Value::Null, false),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (serde_json::Value::String(s.to_string()), false),
            Err(_) => (serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b)), true),
        },
    }
}

fn json_line(m: &Message) -> String {
    let (key, key_b64) = text_or_b64(&m.key);
    let (value, value_b64) = text_or_b64(&m.value);
    let mut headers = serde_json::Map::new();
    let mut headers_b64 = Vec::new();
    for h in &m.headers {
        let (v, b) = text_or_b64(&h.value);
        if b {
            headers_b64.push(serde_json::Value::String(h.key.clone()));
        }
        headers.insert(h.key.clone(), v);
    }
    let mut o = serde_json::json!({
        "topic": m.topic,
        "partition": m.partition,
        "offset": m.offset,
        "timestamp": m.time.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64),
        "key": key,
        "value": value,
        "headers": headers,
    });
    // Bytes that are not UTF-8 are written as base64, and said so.
    if key_b64 {
        o["key_encoding"] = "base64".into();
    }
    if value_b64 {
        o["value_encoding"] = "base64".into();
    }
    if !headers_b64.is_empty() {
        o["base64_headers"] = serde_json::Value::Array(headers_b64);
    }
    o.to_string()
}

async fn consume(seeds: &[&str], args: ConsumeArgs) -> Outcome {
    let e = |e: Error| e.to_string();
    let cluster = Cluster::connect(seeds, cluster_config()).await.map_err(e)?;
    let meta = cluster.topic(&args.topic).await.map_err(e)?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if meta.partitions.iter().any(|x| x.id == p) => vec![p],
        Some(p) => return Err(format!("topic {} has no partition {p}", args.topic)),
        None => meta.partitions.iter().map(|p| p.id).collect(),
    };
    let start = match args.offset.as_str() {
        "first" => StartOffset::First,
        "last" => StartOffset::Last,
        n => StartOffset::At(n.parse().map_err(|_| format!("--offset: expected first, last or a number, got {n:?}"))?),
    };
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Option<Message>, String>>(1024);
    let mut tasks = Vec::new();
    for p in partitions {
        let tx = tx.clone();
        let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
        let config = ReaderConfig::new(&args.topic, p)
            .with_start(start)
            .with_max_wait(Duration::from_millis(200))
            .with_cluster(cluster_config());
        let exit_at_end = args.exit_at_end;
        tasks.push(tokio::spawn(async move {
            let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
            let mut r = match Reader::new(&seeds, config).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            };
            if let Some(t) = since {
                if let Err(e) = r.set_offset_at(t).await {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            }
            loop {
                if exit_at_end && r.lag() == 0 {
                    let _ = tx.send(Ok(None)).await;
                    return;
                }
                let next = tokio::time::timeout(Duration::from_millis(300), r.read_message()).await;
                match next {
                    Err(_) => continue, // no record yet; look at the lag again
                    Ok(Ok(m)) => {
                        if tx.send(Ok(Some(m))).await.is_err() {
                            return;
                        }
                    }
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                }
            }
        }));
    }
    drop(tx);
    let mut remaining = tasks.len();
    let mut printed = 0u64;
    let bar = progress(args.count, "consuming");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while remaining > 0 {
        match rx.recv().await {
            None => break,
            Some(Err(e)) => return Err(e),
            Some(Ok(None)) => remaining -= 1,
            Some(Ok(Some(m))) => {
                let line = match args.format {
                    Format::Json => json_line(&m),
                    Format::Value => String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into_owned(),
                };
                writeln!(out, "{line}").map_err(|e| format!("writing output: {e}"))?;
                printed += 1;
                if let Some(b) = &bar {
                    b.inc(1);
                }
                if args.count.is_some_and(|c| printed >= c) {
                    break;
                }
            }
        }
    }
    out.flush().map_err(|e| format!("writing output: {e}"))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}
