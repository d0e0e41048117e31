//! Consume-transform-produce, exactly once (KIP-98, KIP-447): copies topic INPUT to topic
//! OUTPUT, upper-casing each record's value, as a member of consumer group GROUP.
//!
//! ```text
//! cargo run -p kafkit --example exactly_once -- BROKERS INPUT OUTPUT GROUP [INSTANCE]
//! ```
//!
//! Each input record's output and its offset commit land in the same transaction: a group
//! [`Reader`] (read_committed, nothing committed by the reader itself: records come from
//! `fetch_message`) feeds a transactional [`Writer`]; every 100 ms or 1,000 records the
//! writer sends the next offsets to the transaction with the reader's group metadata
//! (generation and member id, so a zombie of an older generation is refused) and commits.
//! On a rebalance (partitions revoked or lost) the open transaction is aborted: the eager
//! assignors (range, round-robin; the default) revoke every partition, and reading starts
//! again at the committed offsets, so nothing of the aborted transaction is skipped or
//! written twice. A transaction that must be aborted for another reason (a record failed)
//! is aborted and the reader made again, to go back to the committed offsets the same way.
//! Several instances (each with its own INSTANCE, the transactional id's suffix) share the
//! work. Stops after 10 s without input.

use bytes::Bytes;
use kafkit::{
    Error, GroupMetadata, IsolationLevel, Message, Reader, ReaderConfig, RebalanceKind, TopicPartition, Writer,
    WriterConfig,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Where a processor works.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Bootstrap brokers.
    pub brokers: Vec<String>,
    /// The topic read.
    pub input: String,
    /// The topic written.
    pub output: String,
    /// The consumer group.
    pub group: String,
    /// This processor's transactional id.
    pub transactional_id: String,
    /// Stop after this long without input.
    pub idle: Duration,
}

/// The transform: the value upper-cased.
pub fn transform(m: &Message) -> Message {
    let v = m.value.as_deref().map(|v| Bytes::from(v.to_ascii_uppercase()));
    Message::new(m.key.clone(), v)
}

async fn reader(p: &Pipeline) -> kafkit::Result<Reader> {
    let brokers: Vec<&str> = p.brokers.iter().map(String::as_str).collect();
    let config = ReaderConfig::group(&p.group, [p.input.clone()])
        .with_isolation(IsolationLevel::ReadCommitted)
        .with_session_timeout(Duration::from_secs(10))
        .with_heartbeat_interval(Duration::from_secs(1))
        .with_max_wait(Duration::from_millis(100));
    Reader::new(&brokers, config).await
}

/// What one processor did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Records committed (their output and offsets).
    pub committed: u64,
    /// Transactions aborted (on a rebalance, or after an abortable error).
    pub aborted: u64,
}

/// Runs one processor until its input is idle for `p.idle`.
///
/// # Errors
/// A fatal error of the writer (such as [`Error::ProducerFenced`]) or the reader.
pub async fn run(p: Pipeline) -> kafkit::Result<Stats> {
    let brokers: Vec<&str> = p.brokers.iter().map(String::as_str).collect();
    let writer =
        Writer::new(&brokers, WriterConfig::default().with_topic(&p.output).with_transactional_id(&p.transactional_id))
            .await?;
    writer.init_transactions().await?;
    let mut reader = reader(&p).await?;
    let mut events = reader.rebalance_events();
    let mut stats = Stats::default();
    // The open transaction: next offsets per partition, records in it, when it began, and
    // the generation it began in.
    let mut offsets: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut in_txn = 0u64;
    let mut began = Instant::now();
    let mut generation = -1;
    // Partitions revoked and not assigned again: their records are dropped.
    let mut revoked: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut last_input = Instant::now();
    loop {
        let due = in_txn > 0 && (in_txn >= 1_000 || began.elapsed() >= Duration::from_millis(100));
        if due {
            let group = GroupMetadata::new(&p.group, reader.generation(), reader.member_id());
            let sent: Vec<(TopicPartition, i64)> = offsets.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
            let outcome = if reader.generation() != generation {
                Err(Error::TransactionAbortable("the group rebalanced during the transaction".into()))
            } else {
                match writer.send_offsets_to_transaction(&sent, &group).await {
                    Ok(()) => writer.commit_transaction().await,
                    Err(e) => Err(e),
                }
            };
            match outcome {
                Ok(()) => stats.committed += in_txn,
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    eprintln!("{}: aborting: {e}", p.transactional_id);
                    writer.abort_transaction().await?;
                    stats.aborted += 1;
                    // Back to the committed offsets: a new member reads from them (the old
                    // one commits nothing as it leaves).
                    drop(events);
                    if let Err(e) = reader.close().await {
                        eprintln!("{}: closing the reader: {e}", p.transactional_id);
                    }
                    reader = self::reader(&p).await?;
                    events = reader.rebalance_events();
                    revoked.clear();
                }
            }
            offsets.clear();
            in_txn = 0;
            continue;
        }
        if in_txn == 0 && last_input.elapsed() >= p.idle {
            break;
        }
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { continue };
                match ev.kind {
                    RebalanceKind::Revoked | RebalanceKind::Lost => {
                        if in_txn > 0 {
                            // Their records must be read again by whoever owns them next.
                            writer.abort_transaction().await?;
                            stats.aborted += 1;
                            offsets.clear();
                            in_txn = 0;
                        }
                        revoked.extend(ev.partitions.iter().cloned());
                    }
                    RebalanceKind::Assigned => {
                        for tp in &ev.partitions {
                            revoked.remove(tp);
                        }
                    }
                }
                // Dropping the event lets the rebalance go on.
            }
            m = tokio::time::timeout(Duration::from_millis(100), reader.fetch_message()) => {
                let m = match m {
                    Err(_) => continue,
                    Ok(m) => m?,
                };
                last_input = Instant::now();
                let tp = TopicPartition::new(&*m.topic, m.partition);
                if revoked.contains(&tp) {
                    continue;
                }
                if in_txn == 0 {
                    writer.begin_transaction().await?;
                    began = Instant::now();
                    generation = reader.generation();
                }
                // The delivery futures resolve by the commit's flush, which fails if any did.
                match writer.write(transform(&m)).await {
                    Ok(_) => {}
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(_) => {}
                }
                offsets.insert(tp, m.offset + 1);
                in_txn += 1;
            }
        }
    }
    // It commits nothing as it leaves: a failed leave only delays the next rebalance.
    if let Err(e) = reader.close().await {
        eprintln!("{}: closing the reader: {e}", p.transactional_id);
    }
    Ok(stats)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: exactly_once BROKERS INPUT OUTPUT GROUP [INSTANCE]");
        std::process::exit(2);
    }
    let instance = args.get(4).cloned().unwrap_or_else(|| "0".into());
    let p = Pipeline {
        brokers: args[0].split(',').map(String::from).collect(),
        input: args[1].clone(),
        output: args[2].clone(),
        group: args[3].clone(),
        transactional_id: format!("{}-{}", args[3], instance),
        idle: Duration::from_secs(10),
    };
    match run(p).await {
        Ok(s) => println!("{} records copied exactly once; {} transactions aborted", s.committed, s.aborted),
        Err(e) => {
            eprintln!("exactly_once: {e}");
            std::process::exit(1);
        }
    }
}
