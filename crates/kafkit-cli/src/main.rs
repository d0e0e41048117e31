//! `kafkit`: topics, produce, consume, offsets, consumer groups and lag from the command
//! line.
//!
//! Every failure prints one line, `kafkit: error: ...`, and exits 1; a malformed command
//! line exits 2 with clap's message.

mod config_cmd;
mod perf;
mod perf_txn;
mod txn_cmd;

use base64::Engine as _;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use kafkit::admin::OffsetSpec;
use kafkit::cluster::{Cluster, ClusterConfig, Workload};
use kafkit::protocol::messages::{describe_configs_request, DescribeConfigsRequest};
use kafkit::{
    Acks, CommitMode, Compression, Crc32Balancer, Error, Hash, IsolationLevel, LeastBytes, Message, Murmur2Balancer,
    Reader, ReaderConfig, RebalanceKind, ReferenceHash, RoundRobin, StartOffset, TopicConfig, TopicPartition, Writer,
    WriterConfig,
};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(name = "kafkit", version, about = "A Kafka client: topics, produce, consume, offsets, groups, lag")]
struct Cli {
    /// Bootstrap brokers, comma-separated host:port.
    #[arg(long, global = true, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    brokers: String,
    /// Connect with TLS (also KAFKIT_TLS=1; implied by --ca, --cert, --key).
    #[arg(long, global = true)]
    tls: bool,
    /// CA bundle (PEM) to verify brokers against, instead of the system's roots (also
    /// KAFKIT_TLS_CA).
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS (also KAFKIT_TLS_CERT).
    #[arg(long, global = true, value_name = "FILE")]
    cert: Option<std::path::PathBuf>,
    /// Client private key (PEM) for mutual TLS (also KAFKIT_TLS_KEY).
    #[arg(long, global = true, value_name = "FILE")]
    key: Option<std::path::PathBuf>,
    /// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (also KAFKIT_SASL_MECHANISM).
    #[arg(long, global = true)]
    sasl_mechanism: Option<String>,
    /// SASL user (also KAFKIT_SASL_USERNAME). The password comes from KAFKIT_SASL_PASSWORD or
    /// --password-file, never from a flag.
    #[arg(long, global = true)]
    username: Option<String>,
    /// A file whose first line is the SASL password (also KAFKIT_SASL_PASSWORD_FILE).
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<std::path::PathBuf>,
    /// A file whose first line is the OAUTHBEARER token, read at every authentication
    /// (also KAFKIT_SASL_TOKEN_FILE; or the token itself in KAFKIT_SASL_TOKEN).
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<std::path::PathBuf>,
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
    /// Consumer groups: list, describe, delete, reset offsets.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Load tests: throughput, latency percentiles, client CPU and peak RSS.
    Perf {
        #[command(subcommand)]
        command: PerfCommand,
    },
    /// Per partition, a group's committed offset, the end of the log and the lag.
    Lag {
        /// The group.
        group: String,
    },
    /// Transactions: list the transactional ids, describe one.
    Transactions {
        #[command(subcommand)]
        command: txn_cmd::TransactionsCommand,
    },
    /// A kafkit service's configuration (kafkit-service): `show` the effective settings.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
}

#[derive(Subcommand)]
enum PerfCommand {
    /// Sends records as fast as the broker takes them (or at --rate); latency is from send to
    /// acknowledgement.
    Produce(perf::ProduceArgs),
    /// Reads records from the start of every partition; latency is from the record's
    /// timestamp to its receipt.
    Consume(perf::ConsumeArgs),
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// One line per group: id, state, protocol type.
    List,
    /// Members, their assignments, committed offsets and lag.
    Describe {
        /// The group.
        group: String,
    },
    /// Deletes a group without members, with its committed offsets.
    Delete {
        /// The group.
        group: String,
    },
    /// Moves a group's committed offsets on a topic; a dry run unless --execute. The group
    /// must have no members.
    ResetOffsets {
        /// The group.
        group: String,
        /// The topic.
        #[arg(long)]
        topic: String,
        /// first, last, an offset, or a time (RFC 3339).
        #[arg(long)]
        to: String,
        /// Commit the new offsets (without it, only show them).
        #[arg(long)]
        execute: bool,
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
    /// Write in transactions with this transactional id (exit 0 only if every record was
    /// committed; an error or Ctrl-C aborts the open transaction).
    #[arg(long, value_name = "ID")]
    transactional_id: Option<String>,
    /// With --transactional-id: records per transaction (default: the whole input in one).
    #[arg(long, value_name = "N", requires = "transactional_id")]
    transaction_records: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum IsolationArg {
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    #[value(name = "read_committed")]
    ReadCommitted,
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
    /// Read as a member of this consumer group, committing what was printed (then
    /// -o/--since only apply to partitions without a committed offset, and -p is refused).
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// With -g: the group session timeout (Java `session.timeout.ms`).
    #[arg(long, value_name = "DURATION", default_value = "45s", value_parser = humantime::parse_duration)]
    session_timeout: Duration,
    /// read_uncommitted (every record) or read_committed (only committed transactions' records,
    /// up to the last stable offset), as Java's `isolation.level`.
    #[arg(long, value_enum, default_value = "read_uncommitted")]
    isolation: IsolationArg,
}

impl ConsumeArgs {
    fn isolation(&self) -> IsolationLevel {
        match self.isolation {
            IsolationArg::ReadUncommitted => IsolationLevel::ReadUncommitted,
            IsolationArg::ReadCommitted => IsolationLevel::ReadCommitted,
        }
    }
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

/// The dialer every command uses: TLS and SASL from the flags over the environment.
static DIALER: std::sync::OnceLock<kafkit::Dialer> = std::sync::OnceLock::new();

fn security(cli: &Cli) -> Result<kafkit::Dialer, String> {
    let mut o = kafkit::SecurityOptions::from_env().map_err(|e| e.to_string())?;
    o.tls |= cli.tls;
    o.ca_file = cli.ca.clone().or(o.ca_file);
    o.cert_file = cli.cert.clone().or(o.cert_file);
    o.key_file = cli.key.clone().or(o.key_file);
    o.sasl_mechanism = cli.sasl_mechanism.clone().or(o.sasl_mechanism);
    o.username = cli.username.clone().or(o.username);
    if let Some(f) = &cli.password_file {
        o.password = Some(kafkit::SecurityOptions::read_secret_file(f).map_err(|e| e.to_string())?);
    }
    if let Some(f) = &cli.token_file {
        o.token = None;
        o.token_file = Some(f.clone());
    }
    let base = kafkit::Dialer::new().with_connect_timeout(Duration::from_secs(5)).with_client_id("kafkit-cli");
    o.apply(base).map_err(|e| e.to_string())
}

fn cluster_config() -> ClusterConfig {
    ClusterConfig {
        // A CLI should fail fast rather than retry for a minute.
        retry_timeout: Duration::from_secs(10),
        dialer: DIALER.get().cloned().unwrap_or_default(),
        ..ClusterConfig::default()
    }
}

async fn run(cli: Cli) -> Outcome {
    if let Command::Config { command } = cli.command {
        return config_cmd::run(command);
    }
    let _ = DIALER.set(security(&cli)?);
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
                let pc = cluster_config().dialer.dial_leader(conn.addr(), &topic, p.id).await.map_err(e)?;
                let (first, last) = pc.read_offsets().await.map_err(e)?;
                let _ = writeln!(out, "{}\t{first}\t{last}", p.id);
            }
            Ok(())
        }
        Command::Produce(args) => produce(&seeds, args).await,
        Command::Consume(args) if args.group.is_some() => consume_group(&seeds, args).await,
        Command::Consume(args) => consume(&seeds, args).await,
        Command::Groups { command } => {
            let admin = kafkit::admin::Client::new(&seeds, cluster_config()).await.map_err(e)?;
            groups(&admin, command).await
        }
        Command::Transactions { command } => txn_cmd::run(&seeds, cluster_config(), command).await,
        Command::Perf { command: PerfCommand::Produce(a) } => perf::produce(&seeds, cluster_config(), a).await,
        Command::Perf { command: PerfCommand::Consume(a) } => perf::consume(&seeds, cluster_config(), a).await,
        Command::Lag { group } => {
            let admin = kafkit::admin::Client::new(&seeds, cluster_config()).await.map_err(e)?;
            let rows = lag_rows(&admin, &group).await?;
            let mut out = std::io::stdout().lock();
            print_lag(&mut out, &rows);
            Ok(())
        }
        Command::Config { command } => config_cmd::run(command),
    }
}

/// One partition's committed offset, end offset (high watermark) and lag.
struct LagRow {
    tp: TopicPartition,
    committed: Option<i64>,
    end: Result<i64, String>,
}

/// Lag of every partition the group has committed or is assigned.
async fn lag_rows(admin: &kafkit::admin::Client, group: &str) -> Result<Vec<LagRow>, String> {
    let e = |e: Error| e.to_string();
    let committed = admin.fetch_offsets(group, None).await.map_err(e)?;
    let mut parts: std::collections::BTreeSet<TopicPartition> = committed.keys().cloned().collect();
    if let Ok(Ok(d)) = admin.describe_groups(&[group]).await.map(|mut m| m.remove(group).unwrap_or(Err(Error::Closed)))
    {
        parts.extend(d.members.iter().flat_map(|m| m.assignment.iter().cloned()));
    }
    let specs: Vec<(TopicPartition, OffsetSpec)> = parts.iter().map(|tp| (tp.clone(), OffsetSpec::Latest)).collect();
    let ends = admin.list_offsets(&specs, IsolationLevel::ReadUncommitted).await.map_err(e)?;
    Ok(parts
        .into_iter()
        .map(|tp| {
            let end = match ends.get(&tp) {
                Some(Ok(o)) => Ok(o.offset),
                Some(Err(err)) => Err(err.to_string()),
                None => Err("no answer".into()),
            };
            LagRow { committed: committed.get(&tp).copied(), end, tp }
        })
        .collect())
}

fn print_lag(out: &mut impl Write, rows: &[LagRow]) {
    let _ = writeln!(out, "topic\tpartition\tcommitted\tend\tlag");
    let mut total = 0i64;
    for r in rows {
        let committed = r.committed.map_or("-".to_string(), |c| c.to_string());
        let (end, lag) = match (&r.end, r.committed) {
            (Ok(end), Some(c)) => {
                let lag = (end - c).max(0);
                total += lag;
                (end.to_string(), lag.to_string())
            }
            (Ok(end), None) => (end.to_string(), "-".to_string()),
            (Err(err), _) => (format!("error: {err}"), "-".to_string()),
        };
        let _ = writeln!(out, "{}\t{}\t{committed}\t{end}\t{lag}", r.tp.topic, r.tp.partition);
    }
    let _ = writeln!(out, "total lag: {total}");
}

async fn groups(admin: &kafkit::admin::Client, command: GroupsCommand) -> Outcome {
    let e = |e: Error| e.to_string();
    let mut out = std::io::stdout().lock();
    match command {
        GroupsCommand::List => {
            for g in admin.list_groups().await.map_err(e)? {
                let state = if g.state.is_empty() { "-" } else { &g.state };
                let _ = writeln!(out, "{}\t{state}\t{}", g.group_id, g.protocol_type);
            }
        }
        GroupsCommand::Describe { group } => {
            let d = admin.describe_groups(&[&group]).await.map_err(e)?.remove(&group).unwrap_or(Err(Error::Closed));
            let d = d.map_err(e)?;
            let protocol = if d.protocol.is_empty() { "-" } else { &d.protocol };
            let _ =
                writeln!(out, "group {} state {} assignor {protocol} members {}", d.group_id, d.state, d.members.len());
            for m in &d.members {
                let parts: Vec<String> = m.assignment.iter().map(|tp| tp.to_string()).collect();
                let _ = writeln!(
                    out,
                    "  member {}{} client {} host {} partitions [{}]",
                    m.member_id,
                    m.instance_id.as_deref().map(|i| format!(" (instance {i})")).unwrap_or_default(),
                    m.client_id,
                    m.client_host,
                    parts.join(", ")
                );
            }
            let rows = lag_rows(admin, &group).await?;
            print_lag(&mut out, &rows);
        }
        GroupsCommand::Delete { group } => {
            let r = admin.delete_groups(&[&group]).await.map_err(e)?.remove(&group).unwrap_or(Err(Error::Closed));
            r.map_err(e)?;
        }
        GroupsCommand::ResetOffsets { group, topic, to, execute } => {
            let meta = admin.cluster().topic(&topic).await.map_err(e)?;
            let parts: Vec<TopicPartition> =
                meta.partitions.iter().map(|p| TopicPartition::new(&topic, p.id)).collect();
            let targets: BTreeMap<TopicPartition, i64> = match to.as_str() {
                "first" | "last" => {
                    let spec = if to == "first" { OffsetSpec::Earliest } else { OffsetSpec::Latest };
                    listed(admin, &parts, spec).await?
                }
                n if n.parse::<i64>().is_ok() => {
                    let o: i64 = n.parse().unwrap_or_default();
                    if o < 0 {
                        return Err(format!("--to: a negative offset {o}"));
                    }
                    parts.iter().map(|tp| (tp.clone(), o)).collect()
                }
                t => {
                    let t = humantime::parse_rfc3339_weak(t).map_err(|err| {
                        format!("--to: expected first, last, an offset or an RFC 3339 time, got {t:?}: {err}")
                    })?;
                    let at = listed(admin, &parts, OffsetSpec::Time(t)).await?;
                    // No record at or after the time: the end of the log.
                    let ends = listed(admin, &parts, OffsetSpec::Latest).await?;
                    at.into_iter()
                        .map(|(tp, o)| {
                            let end = ends.get(&tp).copied().unwrap_or(o);
                            (tp, if o < 0 { end } else { o })
                        })
                        .collect()
                }
            };
            let current = admin.fetch_offsets(&group, Some(&parts)).await.map_err(e)?;
            let _ = writeln!(out, "topic\tpartition\tcurrent\tnew");
            for (tp, new) in &targets {
                let cur = current.get(tp).map_or("-".to_string(), |c| c.to_string());
                let _ = writeln!(out, "{}\t{}\t{cur}\t{new}", tp.topic, tp.partition);
            }
            if !execute {
                let _ = writeln!(out, "dry run: nothing changed (add --execute)");
                return Ok(());
            }
            let results = admin.alter_offsets(&group, &targets).await.map_err(e)?;
            if let Some((tp, Err(err))) = results.iter().find(|(_, r)| r.is_err()) {
                return Err(format!("resetting {tp}: {err} (the group must have no members)"));
            }
            let _ = writeln!(out, "reset {} partitions", results.len());
        }
    }
    Ok(())
}

/// Offsets of `parts` by `spec`; the first per-partition error fails.
async fn listed(
    admin: &kafkit::admin::Client,
    parts: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<BTreeMap<TopicPartition, i64>, String> {
    let specs: Vec<(TopicPartition, OffsetSpec)> = parts.iter().map(|tp| (tp.clone(), spec)).collect();
    let got = admin.list_offsets(&specs, IsolationLevel::ReadUncommitted).await.map_err(|e| e.to_string())?;
    got.into_iter().map(|(tp, r)| r.map(|o| (tp, o.offset)).map_err(|e| e.to_string())).collect()
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
    if args.delimiter.is_empty() {
        return Err("the delimiter must not be empty".into());
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
    if let Some(id) = &args.transactional_id {
        if acks != Acks::All {
            return Err("--transactional-id needs --acks all".into());
        }
        config = config.with_transactional_id(id);
    }
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
    let message = |r: Bytes| {
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
        m
    };
    if args.transactional_id.is_some() {
        // Records are written as they are read: Ctrl-C aborts only the open transaction.
        let input: Box<dyn Read + Send> = match &args.file {
            Some(f) => Box::new(std::fs::File::open(f).map_err(|e| format!("reading {}: {e}", f.display()))?),
            None => Box::new(std::io::stdin()),
        };
        let records = txn_cmd::records(input, args.delimiter.as_bytes().to_vec());
        return txn_cmd::produce(&writer, records, message, args.transaction_records).await;
    }
    let mut input = Vec::new();
    match &args.file {
        Some(f) => input = std::fs::read(f).map_err(|e| format!("reading {}: {e}", f.display()))?,
        None => {
            std::io::stdin().read_to_end(&mut input).map_err(|e| format!("reading stdin: {e}"))?;
        }
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
    let messages: Vec<Message> = records.into_iter().map(message).collect();
    let bar = progress(Some(messages.len() as u64), "producing");
    let mut futures = Vec::with_capacity(messages.len());
    for m in messages {
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
        "topic": &*m.topic,
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

fn format_line(m: &Message, format: Format) -> String {
    match format {
        Format::Json => json_line(m),
        Format::Value => String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into_owned(),
    }
}

fn start_offset(s: &str) -> Result<StartOffset, String> {
    Ok(match s {
        "first" => StartOffset::First,
        "last" => StartOffset::Last,
        n => StartOffset::At(n.parse().map_err(|_| format!("--offset: expected first, last or a number, got {n:?}"))?),
    })
}

/// `consume -g`: a group member that prints records and commits them once printed (every
/// 500 ms, and when it stops: -c reached, -e at the end, Ctrl-C).
async fn consume_group(seeds: &[&str], args: ConsumeArgs) -> Outcome {
    let e = |e: Error| e.to_string();
    if args.partition.is_some() {
        return Err("-p cannot be used with -g: the group assigns partitions".into());
    }
    if args.since.is_some() {
        return Err("--since cannot be used with -g (reset the group's offsets instead)".into());
    }
    let group = args.group.clone().unwrap_or_default();
    let config = ReaderConfig::group(&group, [args.topic.clone()])
        .with_start(start_offset(&args.offset)?)
        // What was printed is committed explicitly below.
        .with_commit(CommitMode::Interval(Duration::from_secs(3600)))
        .with_session_timeout(args.session_timeout)
        .with_heartbeat_interval((args.session_timeout / 10).min(Duration::from_secs(3)))
        .with_max_wait(Duration::from_millis(200))
        .with_isolation(args.isolation())
        .with_cluster(cluster_config());
    let mut r = Reader::new(seeds, config).await.map_err(e)?;
    let bar = progress(args.count, "consuming");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0u64;
    let mut pending: BTreeMap<(String, i32), Message> = BTreeMap::new();
    let mut last_commit = std::time::Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Partitions leaving this member in a rebalance: what was printed from them is committed
    // before they go (the reader waits while the event is held), so their next owner starts
    // after it (Java commits in onPartitionsRevoked the same way).
    let mut events = r.rebalance_events();
    let result: Outcome = loop {
        if args.count.is_some_and(|c| printed >= c) {
            break Ok(());
        }
        if args.exit_at_end && !r.assignment().is_empty() {
            let parts = r.partitions();
            if parts.len() == r.assignment().len() && parts.values().all(|p| p.lag == 0) {
                break Ok(());
            }
        }
        if !pending.is_empty() && last_commit.elapsed() > Duration::from_millis(500) {
            if let Err(err) = commit_printed(&mut out, &r, &mut pending).await {
                break Err(err);
            }
            last_commit = std::time::Instant::now();
        }
        tokio::select! {
            _ = &mut ctrl_c => break Ok(()),
            Some(ev) = events.recv() => {
                if ev.kind == RebalanceKind::Revoked {
                    if let Err(err) = commit_printed(&mut out, &r, &mut pending).await {
                        break Err(err);
                    }
                    last_commit = std::time::Instant::now();
                }
                ev.done();
            }
            next = tokio::time::timeout(Duration::from_millis(300), r.fetch_message()) => match next {
                Err(_) => continue,
                // Retriable (no broker reachable for a while, say): the reader keeps
                // trying, and so does the command, as the Java console consumer does.
                Ok(Err(err)) if err.is_retriable() => {
                    let _ = writeln!(std::io::stderr(), "kafkit: warning: {err}");
                }
                Ok(Err(err)) => break Err(err.to_string()),
                Ok(Ok(m)) => {
                    if let Err(err) = writeln!(out, "{}", format_line(&m, args.format)) {
                        break Err(format!("writing output: {err}"));
                    }
                    printed += 1;
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                    pending.insert((m.topic.to_string(), m.partition), m);
                }
            },
        }
    };
    let committed = commit_printed(&mut out, &r, &mut pending).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let closed = r.close().await.map_err(e);
    result.and(committed).and(closed)
}

/// Flushes the output, then commits the last printed record of each partition.
async fn commit_printed(out: &mut impl Write, r: &Reader, pending: &mut BTreeMap<(String, i32), Message>) -> Outcome {
    out.flush().map_err(|e| format!("writing output: {e}"))?;
    if pending.is_empty() {
        return Ok(());
    }
    let msgs: Vec<Message> = std::mem::take(pending).into_values().collect();
    match r.commit_messages(&msgs).await {
        Ok(()) => Ok(()),
        // Revoked in a rebalance before the commit: its new owner reads them again.
        Err(Error::CommitFailed(why)) => {
            let _ = writeln!(std::io::stderr(), "kafkit: warning: {why}");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
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
    let start = start_offset(&args.offset)?;
    let since = args.since.as_deref().map(parse_time).transpose()?;
    // One reader of the chosen partitions (Java's assign()).
    let parts = partitions.iter().map(|p| TopicPartition::new(args.topic.clone(), *p));
    let config = ReaderConfig::assign(parts)
        .with_start(start)
        .with_max_wait(Duration::from_millis(200))
        .with_isolation(args.isolation());
    let mut r = Reader::with_cluster(cluster, config).await.map_err(e)?;
    if let Some(t) = since {
        r.set_offset_at(t).await.map_err(e)?;
    }
    let mut printed = 0u64;
    let bar = progress(args.count, "consuming");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    loop {
        // -e: done once every partition has been fetched and read to its high watermark.
        if args.exit_at_end && r.partitions().values().all(|s| s.lag == 0) {
            break;
        }
        let m = match tokio::time::timeout(Duration::from_millis(300), r.read_message()).await {
            Err(_) => continue, // no record yet; look at the lag again
            Ok(Err(err)) if err.is_retriable() => {
                // The reader keeps trying (no broker reachable for a while, say).
                let _ = writeln!(std::io::stderr(), "kafkit: warning: {err}");
                continue;
            }
            Ok(m) => m.map_err(e)?,
        };
        let line = format_line(&m, args.format);
        writeln!(out, "{line}").map_err(|e| format!("writing output: {e}"))?;
        printed += 1;
        if let Some(b) = &bar {
            b.inc(1);
        }
        if args.count.is_some_and(|c| printed >= c) {
            break;
        }
    }
    out.flush().map_err(|e| format!("writing output: {e}"))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    r.abort();
    Ok(())
}
