//! The driver: one broker, every workload, every client, repeated; medians and ratios.

use crate::bench::Bench;
use crate::latency::{print_latency_table, LatencyPass};
use crate::payload::{Arena, Payload, Text};
use kafkit::{Compression, Message, TopicConfig, Writer, WriterConfig};
use kafkit_cli::report::Pace;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// A broker to use instead of starting a Tansu broker with scripts/broker.sh.
    #[arg(long)]
    brokers: Option<String>,
    /// With `--brokers`: the broker's process id, whose CPU (user + system, from
    /// `/proc/PID/stat`) is counted for each run. Without it the broker column says n/a.
    #[arg(long, requires = "brokers")]
    broker_pid: Option<u32>,
    /// With `--brokers`: the broker's JMX (HOST:PORT; `scripts/kafka.sh start DIR --jmx`
    /// writes it as NODE1_JMX), from which the requests it handled during each run are
    /// counted (`crate::requests`). Without it the requests column says n/a.
    #[arg(long, requires = "brokers")]
    broker_jmx: Option<String>,
    /// Repetitions of every cell (the table shows medians).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Skip the warm-up. By default, before the first workload of each operation (produce,
    /// then consume), the broker is warmed with every client's runs of it in turn for at
    /// least `--settle` and until its CPU per run settles (a client's run within 15% of its
    /// last, giving up at twice `--settle`; see `Bench::settle`). Then each workload starts
    /// with one run of every client, not counted, so each client's own requests have met
    /// the broker.
    #[arg(long)]
    no_warmup: bool,
    /// How long the broker is warmed at least, for each operation. A fresh Kafka
    /// 4.4 node's CPU for produce 1M x 100 B stayed at 2.0-2.35 s per run for its first 14
    /// runs (about 4.5 min) and then fell to 1.15-1.5 s; two runs in a row within 15% came
    /// at the second run. Its JIT compiler threads were busy throughout (0.04-0.9 s of each
    /// run), so their quiet is no sign of a warm node either.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    settle: std::time::Duration,
    /// Skip the latency pass: by default each workload's peak runs are followed by paced
    /// runs at half of each client's peak rate, for p50 and p99 latency (see [`Bench::paced`]).
    #[arg(long)]
    no_latency: bool,
    /// Scales every workload's record count (0.01 for a quick check).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Only the workloads whose name contains this (e.g. `100B`, `lz4`, `consume`).
    #[arg(long)]
    only: Option<String>,
    /// The `kafkit` binary (default: beside this one).
    #[arg(long)]
    kafkit: Option<PathBuf>,
    /// Also write every run's report as JSON lines to this file.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Peers not to run, comma-separated (rdkafka, rdkafka-plain, rskafka, java, java-defaults,
    /// franz-go, kafka-go): their cells read "not run". For a broker a peer cannot use: the
    /// pinned Tansu closes the connections of the Java client 4.4 and franz-go 1.22 during
    /// their ApiVersions negotiation (`--without java,java-defaults,franz-go`).
    #[arg(long, value_delimiter = ',')]
    without: Vec<String>,
    #[command(flatten)]
    payload: PayloadOpts,
}

/// What the records are made of (see [`crate::payload`]).
#[derive(clap::Args)]
pub struct PayloadOpts {
    /// Key bytes per record: hex of a hash of the record's number (0: no keys).
    #[arg(long, visible_alias = "keys", default_value_t = crate::payload::DEFAULT_KEY_SIZE)]
    pub key_size: usize,
    /// The text values are cut from (its first 4 MiB; raw, or an lz4 frame). Default: the
    /// Debian package index when present, else random words.
    #[arg(long, env = crate::payload::TEXT_ENV, value_name = "PATH")]
    pub payload_text: Option<PathBuf>,
}

/// One line on the records of `p`: the text's source, sizes, and the lz4 ratio of 1 MiB of
/// consecutive records (keys and values; values alone too when keyed).
pub fn describe(p: &Payload) -> Result<String, String> {
    let ratio = p.lz4_ratio(0)?;
    let (keys, alone) = if p.key_size() == 0 {
        ("no keys".to_string(), String::new())
    } else {
        let r = p.keyless().lz4_ratio(0)?;
        (
            format!("{} B keys (hex of a hash of the record number)", p.key_size()),
            format!(" ({r:.2}x the values alone)"),
        )
    };
    Ok(format!(
        "Payload: {} B values ({}-digit record number, then text at a pseudo-random offset of {}), {keys}; \
         lz4 gains {ratio:.2}x on 1 MiB of consecutive records{alone}.",
        p.value_size(),
        crate::payload::SEQ_DIGITS,
        p.source()
    ))
}

/// One cell of the table.
#[derive(Clone, Debug)]
pub struct Workload {
    pub op: &'static str,
    pub records: u64,
    pub size: usize,
    pub codec: &'static str,
}

impl Workload {
    pub fn name(&self) -> String {
        let size = if self.size >= 1024 { format!("{} KiB", self.size / 1024) } else { format!("{} B", self.size) };
        let n = if self.records >= 1_000_000 {
            format!("{}M", self.records / 1_000_000)
        } else {
            format!("{}k", self.records / 1000)
        };
        format!("{} {n} x {size}, {}", self.op, self.codec)
    }
}

/// The workloads of issue 6: 1M x 100 B and 200k x 1 KiB, none and lz4, produce and consume.
pub fn workloads(scale: f64) -> Vec<Workload> {
    let mut out = Vec::new();
    for (records, size) in [(1_000_000u64, 100usize), (200_000, 1024)] {
        for codec in ["none", "lz4"] {
            for op in ["produce", "consume"] {
                let records = ((records as f64 * scale) as u64).max(100);
                out.push(Workload { op, records, size, codec });
            }
        }
    }
    out
}

/// The clients, kafkit first: the Rust peers run as `kafkit-peers client` (`rdkafka-plain`:
/// rdkafka without idempotence; its consumer is rdkafka's), the Java client
/// (kafka-clients 4.4) through `scripts/java-peer.sh perf` (`java`: the harness's linger and
/// batch size; `java-defaults`: Java's own, acks=all apart), franz-go and kafka-go through
/// `scripts/go-peer.sh`.
pub const CLIENTS: [&str; 8] =
    ["kafkit", "rdkafka", "rdkafka-plain", "rskafka", "java", "java-defaults", "franz-go", "kafka-go"];

/// Column headings of [`CLIENTS`].
pub(crate) const HEADINGS: [&str; 8] = [
    "kafkit",
    "rdkafka 0.39",
    "rdkafka 0.39, not idempotent",
    "rskafka 0.6",
    "Java 4.4",
    "Java 4.4, its defaults",
    "franz-go 1.22",
    "kafka-go 0.4.51",
];

/// How to start the peers that are not in this binary: the Java peer's command (one
/// argument per element) and the Go peer's binary, each built (when missing) by its script.
pub(crate) struct External {
    pub(crate) java: Vec<String>,
    go: PathBuf,
}

impl External {
    pub(crate) fn build() -> Result<External, String> {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
        let run = |script: &str, arg: &str| -> Result<String, String> {
            let out = Command::new("bash")
                .arg(scripts.join(script))
                .arg(arg)
                .output()
                .map_err(|e| format!("{script}: {e}"))?;
            if !out.status.success() {
                return Err(format!("{script} {arg}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let java: Vec<String> = run("java-peer.sh", "perf-command")?.lines().map(str::to_string).collect();
        if java.is_empty() {
            return Err("java-peer.sh perf-command printed nothing".into());
        }
        let go = run("go-peer.sh", "build")?;
        let go = PathBuf::from(go.lines().last().unwrap_or("").trim());
        Ok(External { java, go })
    }
}

/// What one run reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    pub cpu_s: f64,
    pub records_per_sec: f64,
    pub rss_bytes: f64,
    pub p99_ms: f64,
    /// The broker's CPU (user + system seconds) over the run; NaN when its process is not
    /// known.
    pub broker_cpu_s: f64,
    /// Of `broker_cpu_s`, what its JIT compiler threads used
    /// ([`compiler_cpu_s`](crate::bench::compiler_cpu_s); 0 for Tansu); NaN when its
    /// process is not known. A table cell gives the median of this over the median of
    /// `broker_cpu_s`.
    pub broker_jit_s: f64,
    /// The requests the broker handled for the client over the run; NaN when not counted.
    pub requests: f64,
    /// Consume cells: records per second at which the harness's producer filled the topic
    /// before the run ([`prepare`]); NaN for produce cells.
    pub fill_records_per_sec: f64,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `--without`'s names: peers of [`CLIENTS`], never kafkit.
fn check_without(names: &[String]) -> Result<(), String> {
    match names.iter().find(|n| *n == CLIENTS[0] || !CLIENTS.contains(&n.as_str())) {
        Some(n) => Err(format!("--without {n}: one of {}", CLIENTS[1..].join(", "))),
        None => Ok(()),
    }
}

/// The clients of repetition `rep` in the order they run, with their index in [`CLIENTS`];
/// those `skip` names (`--without`) are left out.
///
/// Each repetition starts one client further on, so no client always meets the broker
/// fresher, and steps through [`CLIENTS`] by a different stride coprime to their number (1,
/// 3, 5, 7 for 8 clients), so no client always runs right after the same one. A plain
/// rotation kept every client's predecessor: kafkit always followed kafka-go, and whatever
/// a run leaves the broker doing falls on the next.
pub(crate) fn turn(rep: usize, skip: &dyn Fn(&str) -> bool) -> impl Iterator<Item = (usize, &'static str)> + '_ {
    let n = CLIENTS.len();
    let strides: Vec<usize> = (1..n.max(2)).filter(|s| gcd(*s, n) == 1).collect();
    let stride = strides[rep % strides.len()];
    (0..n).map(move |k| (rep + k * stride) % n).map(|ci| (ci, CLIENTS[ci])).filter(|(_, c)| !skip(c))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Medians of a client's runs of one workload.
pub fn medians(runs: &[Run]) -> Run {
    Run {
        cpu_s: median(runs.iter().map(|r| r.cpu_s).collect()),
        records_per_sec: median(runs.iter().map(|r| r.records_per_sec).collect()),
        rss_bytes: median(runs.iter().map(|r| r.rss_bytes).collect()),
        p99_ms: median(runs.iter().map(|r| r.p99_ms).collect()),
        broker_cpu_s: median(runs.iter().map(|r| r.broker_cpu_s).collect()),
        broker_jit_s: median(runs.iter().map(|r| r.broker_jit_s).collect()),
        requests: median(runs.iter().map(|r| r.requests).collect()),
        fill_records_per_sec: median(runs.iter().map(|r| r.fill_records_per_sec).collect()),
    }
}

/// kafkit's ratios to the best peer: CPU per record (target <= 0.7), throughput (>= 1) and
/// peak RSS (<= 1).
pub fn ratios(kafkit: &Run, peers: &[Run]) -> (f64, f64, f64) {
    let best_cpu = peers.iter().map(|r| r.cpu_s).fold(f64::INFINITY, f64::min);
    let best_rps = peers.iter().map(|r| r.records_per_sec).fold(0.0, f64::max);
    let best_rss = peers.iter().map(|r| r.rss_bytes).fold(f64::INFINITY, f64::min);
    (kafkit.cpu_s / best_cpu, kafkit.records_per_sec / best_rps, kafkit.rss_bytes / best_rss)
}

/// kafkit's broker CPU over the best peer's (target <= 1: a client must not buy its speed
/// with the broker's CPU); NaN when the broker's process is not known.
pub fn broker_ratio(kafkit: &Run, peers: &[Run]) -> f64 {
    let best = peers.iter().map(|r| r.broker_cpu_s).filter(|c| !c.is_nan()).fold(f64::INFINITY, f64::min);
    if !best.is_finite() || kafkit.broker_cpu_s.is_nan() {
        f64::NAN
    } else if best == 0.0 {
        // Under one clock tick for the best peer (tiny runs): equal if kafkit's is too.
        if kafkit.broker_cpu_s == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        kafkit.broker_cpu_s / best
    }
}

pub(crate) fn parse_report(stdout: &str) -> Result<Run, String> {
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or("no JSON report")?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let f = |k: &str| v[k].as_f64().ok_or(format!("report lacks {k}"));
    Ok(Run {
        cpu_s: f("client_cpu_seconds")?,
        records_per_sec: f("records_per_sec")?,
        rss_bytes: f("peak_rss_bytes")?,
        p99_ms: v["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
        broker_cpu_s: f64::NAN,
        broker_jit_s: f64::NAN,
        requests: f64::NAN,
        fill_records_per_sec: f64::NAN,
    })
}

/// A broker started for the run, stopped when dropped.
pub(crate) struct Broker {
    pub(crate) addr: String,
    pub(crate) pid: Option<u32>,
    /// Started here (and so stopped when dropped).
    owned: bool,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.filter(|_| self.owned) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn start_broker(args: &Args) -> Result<Broker, String> {
    if let Some(b) = &args.brokers {
        return Ok(Broker { addr: b.clone(), pid: args.broker_pid, owned: false });
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/broker.sh");
    let out = Command::new("bash").arg(&script).arg("start").output().map_err(|e| format!("{script:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("broker.sh start: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s.split_whitespace();
    let port = it.next().ok_or("broker.sh printed no port")?;
    let pid = it.next().and_then(|p| p.parse().ok());
    Ok(Broker { addr: format!("127.0.0.1:{port}"), pid, owned: true })
}

fn codec(c: &str) -> Result<Compression, String> {
    c.parse().map_err(|e| format!("{e:?}"))
}

/// The harness's topics' `max.message.bytes`: 2 MiB.
const TOPIC_MAX_MESSAGE_BYTES: usize = 2 << 20;

/// The harness's own producer, which fills the consume cells' topics (and writes them live
/// during their paced runs): kafkit's Writer with the producers' settings ([`crate::peers::FAIR`]).
pub(crate) async fn harness_writer(addr: &str, topic: &str, w: &Workload) -> Result<Writer, String> {
    let cfg = WriterConfig::default()
        .with_topic(topic)
        .with_compression(codec(w.codec)?)
        .with_linger(crate::peers::LINGER)
        .with_batch_bytes(crate::peers::BATCH_BYTES)
        .with_batch_size(1 << 20);
    Writer::new(&[addr], cfg).await.map_err(|e| e.to_string())
}

/// Writes workload `w`'s records, those the producers send, to `topic` with `writer`, at
/// `pace`; closes the writer once every one is acknowledged.
pub(crate) async fn write_records(writer: Writer, w: &Workload, p: &Payload, pace: Pace) -> Result<(), String> {
    let e = |e: kafkit::Error| e.to_string();
    let mut arena = Arena::new();
    for i in 0..w.records {
        if let Some(d) = pace.wait(i) {
            tokio::time::sleep(d).await;
        }
        let m = Message::new(arena.key(p, i), Some(arena.value(p, i)));
        drop(writer.write(m).await.map_err(e)?);
    }
    writer.close().await.map_err(e)
}

/// Creates `topic` with 6 partitions, and with `fill` fills it with the harness's producer,
/// with the records the producers send: returns the records per second of the fill (NaN
/// without it).
pub(crate) async fn prepare(addr: &str, topic: &str, w: &Workload, p: &Payload, fill: bool) -> Result<f64, String> {
    create_topic(addr, topic, 6).await?;
    if !fill {
        return Ok(f64::NAN);
    }
    let writer = harness_writer(addr, topic, w).await?;
    let started = std::time::Instant::now();
    write_records(writer, w, p, Pace::new(started, 0)).await?;
    Ok(w.records as f64 / started.elapsed().as_secs_f64())
}

/// Creates `topic` with `partitions` partitions, and waits until every partition leader
/// serves it.
pub(crate) async fn create_topic(addr: &str, topic: &str, partitions: i32) -> Result<(), String> {
    let e = |e: kafkit::Error| e.to_string();
    let c = kafkit::Cluster::connect(&[addr], Default::default()).await.map_err(e)?;
    let conn = c.controller(kafkit::Workload::Admin).await.map_err(e)?;
    // Batches of up to 1 MiB of records (every client's batch size here) plus their headers
    // fit: Kafka's default max.message.bytes (1,048,588) would refuse the fullest.
    // file.delete.delay.ms 0: a deleted topic's files go at once rather than a minute later,
    // in the broker's CPU of a later run.
    let config = TopicConfig::new(topic, partitions)
        .with_config("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES.to_string())
        .with_config("file.delete.delay.ms", "0");
    conn.create_topics(&[config]).await.map_err(e)?;
    // CreateTopics answers once the controller has the topic; its partition leaders serve it
    // a moment later, and a client that starts meanwhile may be told it does not exist
    // (kafka-go's Writer fails on that UNKNOWN_TOPIC_OR_PARTITION rather than retrying).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for partition in 0..partitions {
        loop {
            let served = match kafkit::Dialer::new().dial_leader(addr, topic, partition).await {
                Ok(pc) => pc.read_offsets().await.map(|_| ()),
                Err(err) => Err(err),
            };
            match served {
                Ok(()) => break,
                Err(err) if err.is_retriable() && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(err) => return Err(format!("{topic}/{partition} is not served: {err}")),
            }
        }
    }
    Ok(())
}

pub(crate) async fn delete_topic(addr: &str, topic: &str) {
    if let Ok(c) = kafkit::Cluster::connect(&[addr], Default::default()).await {
        if let Ok(conn) = c.controller(kafkit::Workload::Admin).await {
            let _ = conn.delete_topics(&[topic]).await;
        }
    }
}

/// The command of one run. kafkit's consumer is `kafkit perf consume`; every producer,
/// kafkit's too (with `kafkit perf produce`'s settings), and the peers' consumers run as
/// `kafkit-peers client`, the producers on the text in `text` and with `key_size` B keys.
#[allow(clippy::too_many_arguments)]
pub(crate) fn client_command(
    client: &str,
    kafkit: &Path,
    external: &External,
    addr: &str,
    topic: &str,
    w: &Workload,
    text: &Path,
    key_size: usize,
) -> Command {
    let records = w.records.to_string();
    let mut cmd;
    if client == "kafkit" && w.op == "consume" {
        cmd = Command::new(kafkit);
        cmd.args(["--brokers", addr, "perf", w.op, topic, "--records", &records, "--json"]);
        return cmd;
    }
    match client {
        "java" | "java-defaults" => {
            cmd = Command::new(&external.java[0]);
            cmd.args(&external.java[1..]);
            cmd.arg(if w.op == "produce" { "perf_produce" } else { "perf_consume" });
            if client == "java-defaults" {
                cmd.arg("--java-defaults");
            }
            cmd.arg(topic);
        }
        "franz-go" | "kafka-go" => {
            cmd = Command::new(&external.go);
            cmd.args([client, w.op, topic]);
        }
        _ => {
            cmd = Command::new(std::env::current_exe().unwrap_or_else(|_| "kafkit-peers".into()));
            cmd.args(["client", client, w.op, topic]);
        }
    }
    cmd.args(["--brokers", addr, "--records", &records, "--json"]);
    // The Java consumer takes no producer options; the others ignore them.
    if w.op == "produce" || !client.starts_with("java") {
        cmd.args(["--record-size", &w.size.to_string(), "--compression", w.codec]);
        cmd.args(["--key-size", &key_size.to_string()]);
        cmd.arg("--payload-text").arg(text);
    }
    cmd
}

/// The payload's text, written once for every client process to read; removed when dropped.
struct TextFile(PathBuf);

impl Drop for TextFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run(args: Args) -> Result<(), String> {
    let kafkit = match &args.kafkit {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("kafkit"),
    };
    if !kafkit.exists() {
        return Err(format!("{kafkit:?} is missing: cargo build --release -p kafkit-cli -p kafkit-peers"));
    }
    let text = Text::load(args.payload.payload_text.as_deref())?;
    let text_file = TextFile(std::env::temp_dir().join(format!("kafkit-peers-payload-{}.txt", std::process::id())));
    text.write(&text_file.0)?;
    let key_size = args.payload.key_size;
    let chosen: Vec<Workload> = workloads(args.scale)
        .into_iter()
        .filter(|w| args.only.as_ref().is_none_or(|o| w.name().contains(o.as_str())))
        .collect();
    // One payload per value size, and its line for the report.
    let mut payloads: Vec<(usize, Payload, String)> = Vec::new();
    for w in &chosen {
        Payload::check_records(w.records)?;
        if !payloads.iter().any(|(s, _, _)| *s == w.size) {
            let p = Payload::new(&text, w.size, key_size)?;
            let line = describe(&p)?;
            eprintln!("{line}");
            payloads.push((w.size, p, line));
        }
    }
    let external = External::build()?;
    let broker = start_broker(&args)?;
    let counter = match &args.broker_jmx {
        Some(addr) => Some(crate::requests::Counter::new(addr, &std::env::temp_dir())?),
        None => None,
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let mut raw = match &args.raw {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let stamp = std::process::id();
    let bench = Bench {
        broker: &broker,
        counter: counter.as_ref(),
        rt: &rt,
        kafkit: &kafkit,
        external: &external,
        text: &text_file.0,
        key_size,
    };
    check_without(&args.without)?;
    let skip = |client: &str| args.without.iter().any(|n| n == client);
    let mut table = Vec::new();
    // The operations the broker has been settled on (see `Bench::settle`).
    let mut settled: Vec<&str> = Vec::new();
    for (wi, w) in chosen.into_iter().enumerate() {
        let payload = payloads.iter().find(|(s, _, _)| *s == w.size).map(|(_, p, _)| p).ok_or("no payload")?;
        if !args.no_warmup {
            if !settled.contains(&w.op) {
                bench.settle(&w, payload, &format!("peers-{stamp}-settle-{}", w.op), args.settle, &skip)?;
                settled.push(w.op);
            }
            for (_, client) in turn(0, &skip) {
                let (r, _, _) = bench.once(client, &w, payload, &format!("peers-{stamp}-{wi}-warmup-{client}"))?;
                eprintln!(
                    "{:<28} warm-up {:<13} {:>6.3} s CPU, broker {:>6.3} s CPU, {:>6.3} s of it JIT (not counted)",
                    w.name(),
                    client,
                    r.cpu_s,
                    r.broker_cpu_s,
                    r.broker_jit_s
                );
            }
        }
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); CLIENTS.len()];
        for rep in 0..args.reps {
            // Rotate who goes first, so no client always meets the broker fresher.
            for (ci, client) in turn(rep, &skip) {
                let topic = format!("peers-{stamp}-{wi}-{rep}-{client}");
                let (r, per_api, stdout) = bench.once(client, &w, payload, &topic)?;
                eprintln!(
                    "{:<28} rep {} {:<13} {:>6.3} s CPU {:>10.0} rec/s {:>6.1} MiB, broker {:>6.3} s CPU ({:.3} s JIT), requests {:?}",
                    w.name(),
                    rep + 1,
                    client,
                    r.cpu_s,
                    r.records_per_sec,
                    r.rss_bytes / 1048576.0,
                    r.broker_cpu_s,
                    r.broker_jit_s,
                    per_api
                );
                if let Some(f) = raw.as_mut() {
                    use std::io::Write;
                    let per_api = serde_json::to_string(&per_api).unwrap_or_default();
                    let _ = writeln!(
                        f,
                        "{{\"workload\":{:?},\"client\":{client:?},\"rep\":{rep},\"broker_cpu_s\":{},\"broker_jit_s\":{},\"broker_requests\":{per_api},\"report\":{}}}",
                        w.name(),
                        json_number(r.broker_cpu_s),
                        json_number(r.broker_jit_s),
                        stdout.trim()
                    );
                }
                runs[ci].push(r);
            }
        }
        let peaks: Vec<Run> = runs.iter().map(|r| medians(r)).collect();
        let latency = if args.no_latency {
            LatencyPass::not_measured()
        } else {
            bench.latency_pass(&w, wi, payload, &peaks, args.reps, stamp, &skip)?
        };
        table.push((w, peaks, latency));
    }
    let lines: Vec<&str> = payloads.iter().map(|(_, _, l)| l.as_str()).collect();
    print_table(&table, &lines);
    print_latency_table(&table);
    Ok(())
}

/// Records per second as `1.19M/s` or `2.5k/s`.
pub(crate) fn rate_text(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M/s", rate / 1e6)
    } else {
        format!("{:.1}k/s", rate / 1e3)
    }
}

/// `x` as a JSON number, or `null` when it is not finite (not measured).
fn json_number(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| "null".into())
}

fn cell(w: &Workload, r: &Run) -> String {
    if r.cpu_s.is_nan() {
        // No run (`--without`).
        return "not run".to_string();
    }
    let rate = rate_text(r.records_per_sec);
    let broker = if r.broker_cpu_s.is_nan() {
        "n/a".to_string()
    } else {
        let jit = if r.broker_jit_s.is_nan() || r.broker_cpu_s <= 0.0 {
            String::new()
        } else {
            format!(" ({:.0}% JIT)", 100.0 * r.broker_jit_s / r.broker_cpu_s)
        };
        format!("{:.2} µs/rec{jit}", r.broker_cpu_s * 1e6 / w.records as f64)
    };
    let requests = if r.requests.is_nan() {
        "n/a".to_string()
    } else {
        // Requests of the whole process run, over the timed part's length.
        format!("{:.0} req/s", r.requests * r.records_per_sec / w.records as f64)
    };
    format!(
        "{:.2} s ({:.2} µs/rec), {rate}, {:.0} MiB; broker {broker}, {requests}",
        r.cpu_s,
        r.cpu_s * 1e6 / w.records as f64,
        r.rss_bytes / 1048576.0
    )
}

fn print_table(table: &[(Workload, Vec<Run>, LatencyPass)], payloads: &[&str]) {
    println!(
        "Medians of client CPU (user+sys), throughput, peak RSS and the broker's CPU (user+sys of its process over \
         the client's run); peers: {}.",
        crate::peers::FAIR
    );
    for p in payloads {
        println!("{p}");
    }
    println!(
        "Every client produces the same key and value for record i, to partition i % 6, on a topic of 6 partitions \
         with max.message.bytes {TOPIC_MAX_MESSAGE_BYTES}."
    );
    println!();
    println!(
        "| workload | {} | CPU vs best peer (≤ 0.70) | broker CPU (≤ 1.00) | throughput (≥ 1.00) | RSS (≤ 1.00) |",
        HEADINGS.join(" | ")
    );
    println!("|---|{}---|---|---|---|", "---|".repeat(HEADINGS.len()));
    for (w, m, _) in table {
        let (cpu, thr, rss) = ratios(&m[0], &m[1..]);
        let broker = broker_ratio(&m[0], &m[1..]);
        let mark = |ok: bool| if ok { "" } else { " ✗" };
        let broker = if broker.is_nan() { "n/a".to_string() } else { format!("{broker:.2}{}", mark(broker <= 1.0)) };
        let cells: Vec<String> = m.iter().map(|r| cell(w, r)).collect();
        println!(
            "| {} | {} | {cpu:.2}{} | {broker} | {thr:.2}{} | {rss:.2}{} |",
            w.name(),
            cells.join(" | "),
            mark(cpu <= 0.70),
            mark(thr >= 1.0),
            mark(rss <= 1.0)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_takes_peers_only() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_without(&names(&["java", "java-defaults"])).is_ok());
        assert!(check_without(&[]).is_ok());
        assert!(check_without(&names(&["kafkit"])).unwrap_err().contains("one of rdkafka"));
        assert!(check_without(&names(&["java", "jav"])).unwrap_err().contains("--without jav:"));
    }

    #[test]
    fn each_repetition_orders_every_client_once_and_leaves_out_the_skipped() {
        let order: Vec<_> = turn(1, &|c| c.starts_with("java")).map(|(_, c)| c).collect();
        // Rep 1 starts at CLIENTS[1] with stride 3: 1, 4, 7, 2, 5, 0, 3, 6.
        assert_eq!(order, ["rdkafka", "kafka-go", "rdkafka-plain", "kafkit", "rskafka", "franz-go"]);
        assert!(turn(0, &|_| false).all(|(i, c)| CLIENTS[i] == c));
        for rep in 0..8 {
            let mut seen: Vec<usize> = turn(rep, &|_| false).map(|(i, _)| i).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..CLIENTS.len()).collect::<Vec<_>>(), "rep {rep}");
        }
    }

    #[test]
    fn no_client_follows_the_same_one_in_the_first_four_repetitions() {
        // predecessor[rep][client]: who ran right before it (the last of the rep before
        // for the first).
        let before = |rep: usize| -> Vec<Option<usize>> {
            let order: Vec<usize> = turn(rep, &|_| false).map(|(i, _)| i).collect();
            let mut p = vec![None; CLIENTS.len()];
            for w in order.windows(2) {
                p[w[1]] = Some(w[0]);
            }
            p
        };
        for c in 0..CLIENTS.len() {
            let mut preds: Vec<usize> = (0..4).filter_map(|rep| before(rep)[c]).collect();
            let n = preds.len();
            preds.sort_unstable();
            preds.dedup();
            assert_eq!(preds.len(), n, "{} follows the same client twice", CLIENTS[c]);
        }
    }

    #[test]
    fn a_cell_gives_the_share_of_the_brokers_cpu_spent_jit_compiling() {
        let w = Workload { op: "consume", records: 1_000_000, size: 100, codec: "none" };
        let r = Run {
            cpu_s: 0.4,
            records_per_sec: 1e6,
            rss_bytes: 2e7,
            p99_ms: 1.0,
            broker_cpu_s: 0.20,
            broker_jit_s: 0.05,
            requests: f64::NAN,
            fill_records_per_sec: f64::NAN,
        };
        assert!(cell(&w, &r).contains("broker 0.20 µs/rec (25% JIT), n/a"), "{}", cell(&w, &r));
        let no_jit = Run { broker_jit_s: 0.0, ..r };
        assert!(cell(&w, &no_jit).contains("broker 0.20 µs/rec (0% JIT),"), "{}", cell(&w, &no_jit));
        let unknown = Run { broker_cpu_s: f64::NAN, broker_jit_s: f64::NAN, ..r };
        assert!(cell(&w, &unknown).contains("broker n/a,"), "{}", cell(&w, &unknown));
        assert_eq!((json_number(0.25), json_number(f64::NAN)), ("0.25".to_string(), "null".to_string()));
    }

    #[test]
    fn a_client_not_run_reads_not_run() {
        let w = &workloads(1.0)[0];
        assert_eq!(cell(w, &medians(&[])), "not run");
    }

    #[test]
    fn medians_and_ratios_pick_the_best_peer_per_column() {
        let runs = [
            Run {
                cpu_s: 3.0,
                records_per_sec: 10.0,
                rss_bytes: 5.0,
                p99_ms: 1.0,
                broker_cpu_s: 1.0,
                broker_jit_s: 0.0,
                requests: 50.0,
                fill_records_per_sec: f64::NAN,
            },
            Run {
                cpu_s: 1.0,
                records_per_sec: 30.0,
                rss_bytes: 9.0,
                p99_ms: 2.0,
                broker_cpu_s: 3.0,
                broker_jit_s: 0.0,
                requests: 90.0,
                fill_records_per_sec: f64::NAN,
            },
            Run {
                cpu_s: 2.0,
                records_per_sec: 20.0,
                rss_bytes: 7.0,
                p99_ms: 3.0,
                broker_cpu_s: 2.0,
                broker_jit_s: 0.0,
                requests: 70.0,
                fill_records_per_sec: f64::NAN,
            },
        ];
        let m = medians(&runs);
        assert_eq!((m.cpu_s, m.records_per_sec, m.rss_bytes, m.p99_ms, m.broker_cpu_s), (2.0, 20.0, 7.0, 2.0, 2.0));
        assert_eq!(m.requests, 70.0);
        let kafkit = Run {
            cpu_s: 1.0,
            records_per_sec: 40.0,
            rss_bytes: 6.0,
            p99_ms: 0.0,
            broker_cpu_s: 3.0,
            broker_jit_s: 0.0,
            requests: 0.0,
            fill_records_per_sec: f64::NAN,
        };
        let peers = [
            Run {
                cpu_s: 2.0,
                records_per_sec: 20.0,
                rss_bytes: 4.0,
                p99_ms: 0.0,
                broker_cpu_s: 2.0,
                broker_jit_s: 0.0,
                requests: 0.0,
                fill_records_per_sec: f64::NAN,
            },
            Run {
                cpu_s: 4.0,
                records_per_sec: 32.0,
                rss_bytes: 8.0,
                p99_ms: 0.0,
                broker_cpu_s: f64::NAN,
                broker_jit_s: f64::NAN,
                requests: 0.0,
                fill_records_per_sec: f64::NAN,
            },
        ];
        assert_eq!(ratios(&kafkit, &peers), (0.5, 1.25, 1.5));
        assert_eq!(broker_ratio(&kafkit, &peers), 1.5);
        assert!(broker_ratio(&kafkit, &[Run { broker_cpu_s: f64::NAN, ..kafkit }]).is_nan());
        let idle = Run { broker_cpu_s: 0.0, ..kafkit };
        assert_eq!(broker_ratio(&idle, &[idle]), 1.0);
        assert_eq!(broker_ratio(&kafkit, &[idle]), f64::INFINITY);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
    }

    #[test]
    fn reports_are_read_from_the_last_json_line() {
        let out = "noise\n{\"client_cpu_seconds\":0.5,\"records_per_sec\":1000.0,\"peak_rss_bytes\":2048,\"latency\":{\"p99_ms\":3.5}}\n";
        let r = parse_report(out).unwrap();
        assert_eq!((r.cpu_s, r.records_per_sec, r.rss_bytes, r.p99_ms), (0.5, 1000.0, 2048.0, 3.5));
        assert!(parse_report("no report").is_err());
    }

    #[test]
    fn the_workloads_are_the_issues_eight_cells() {
        let names: Vec<String> = workloads(1.0).iter().map(Workload::name).collect();
        assert_eq!(names.len(), 8);
        assert!(names.contains(&"produce 1M x 100 B, none".to_string()));
        assert!(names.contains(&"consume 200k x 1 KiB, lz4".to_string()));
    }
}
