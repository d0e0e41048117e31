//! Transactions in the CLI: `kafkit produce --transactional-id` (one transaction per N
//! records) and `kafkit transactions list|describe` (ListTransactions, DescribeTransactions;
//! KIP-664).

use bytes::{Bytes, BytesMut};
use clap::Subcommand;
use kafkit::admin::Client;
use kafkit::protocol::messages::ListTransactionsRequest;
use kafkit::{Cluster, ClusterConfig, Error, Message, Workload, Writer};
use std::io::{Read, Write};
use tokio::sync::mpsc;

#[derive(Subcommand)]
pub enum TransactionsCommand {
    /// One line per transactional id the brokers' coordinators know: id, producer id, state
    /// (ListTransactions to every broker).
    List,
    /// A transactional id's state, producer id and epoch, timeout, start time and the
    /// partitions of its open transaction (DescribeTransactions).
    Describe {
        /// The transactional id.
        id: String,
    },
}

/// The records of `input` split at `delim` (as `kafkit produce` splits them: an empty
/// record between two delimiters is a record; the bytes after the last delimiter are one when
/// there are any), read on a thread of their own and handed over as they arrive, so that a
/// transaction of N records is committed once N records were read, not at the end of the
/// input. A read error ends the records with an `Err`.
pub fn records(mut input: Box<dyn Read + Send>, delim: Vec<u8>) -> mpsc::Receiver<Result<Bytes, String>> {
    let (tx, rx) = mpsc::channel(4096);
    std::thread::spawn(move || {
        let mut buf = BytesMut::with_capacity(64 << 10);
        let mut scanned = 0;
        loop {
            buf.reserve(64 << 10);
            let at = buf.len();
            buf.resize(at + (64 << 10), 0);
            let n = match input.read(&mut buf[at..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    buf.truncate(at);
                    continue;
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(format!("reading the input: {e}")));
                    return;
                }
            };
            buf.truncate(at + n);
            if n == 0 {
                // The end of the input.
                if !buf.is_empty() {
                    let _ = tx.blocking_send(Ok(buf.split().freeze()));
                }
                return;
            }
            while let Some(i) = find(&buf[scanned..], &delim) {
                let record = buf.split_to(scanned + i).freeze();
                let _ = buf.split_to(delim.len());
                scanned = 0;
                if tx.blocking_send(Ok(record)).is_err() {
                    return;
                }
            }
            // A delimiter may straddle this read and the next.
            scanned = buf.len().saturating_sub(delim.len().saturating_sub(1));
        }
    });
    rx
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len().max(1)).position(|w| w == needle)
}

/// Writes the records of `input` (made messages by `message`) in transactions of `per_txn`
/// records (all in one without it): each transaction begun at its first record, committed
/// after its last. An error or Ctrl-C (SIGINT) aborts the open transaction, and the outcome
/// is an error that says so and how many records were committed.
pub async fn produce(
    writer: &Writer,
    mut input: mpsc::Receiver<Result<Bytes, String>>,
    message: impl Fn(Bytes) -> Message,
    per_txn: Option<usize>,
) -> Result<(), String> {
    if per_txn == Some(0) {
        return Err("--transaction-records must be at least 1".into());
    }
    let per_txn = per_txn.unwrap_or(usize::MAX);
    // From here on SIGINT is this future's to handle, not the default end of the process.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    tokio::select! {
        r = writer.init_transactions() => r.map_err(|e| format!("init_transactions: {e}"))?,
        _ = &mut ctrl_c => {
            return Err("interrupted; no transaction was open; 0 of 0 records committed in 0 transactions".into())
        }
    }
    let (mut read, mut committed, mut transactions) = (0usize, 0usize, 0usize);
    loop {
        // The next transaction begins at its first record.
        let first = tokio::select! {
            r = input.recv() => r,
            _ = &mut ctrl_c => {
                return Err(format!(
                    "interrupted; no transaction was open; {committed} of {read} records committed in {transactions} transactions"
                ))
            }
        };
        let first = match first {
            None => break,
            Some(Err(e)) => {
                return Err(format!("{e}; {committed} of {read} records committed in {transactions} transactions"))
            }
            Some(Ok(r)) => r,
        };
        read += 1;
        let mut n = 1;
        let mut end = false;
        let step = async {
            writer.begin_transaction().await.map_err(|e| e.to_string())?;
            writer.write(message(first)).await.map_err(|e| e.to_string())?;
            while n < per_txn {
                match input.recv().await {
                    None => {
                        end = true;
                        break;
                    }
                    Some(Err(e)) => return Err(e),
                    Some(Ok(r)) => {
                        read += 1;
                        n += 1;
                        writer.write(message(r)).await.map_err(|e| e.to_string())?;
                    }
                }
            }
            // commit_transaction waits for every record of the transaction.
            writer.commit_transaction().await.map_err(|e| e.to_string())
        };
        let outcome = tokio::select! {
            r = step => r,
            _ = &mut ctrl_c => Err("interrupted".to_string()),
        };
        if let Err(why) = outcome {
            // Records already handed over but not taken yet count as read.
            while let Ok(Ok(_)) = input.try_recv() {
                read += 1;
            }
            let aborted = match writer.abort_transaction().await {
                Ok(()) => "the open transaction was aborted".to_string(),
                Err(e) if e.is_fatal() => format!("the open transaction is left to the coordinator ({e})"),
                Err(e) => format!("aborting the open transaction failed: {e}"),
            };
            return Err(format!(
                "{why}; {aborted}; {committed} of {read} records committed in {transactions} transactions"
            ));
        }
        committed += n;
        transactions += 1;
        if end {
            break;
        }
    }
    let _ = writeln!(std::io::stderr(), "kafkit: {committed} records committed in {transactions} transactions");
    Ok(())
}

pub async fn run(seeds: &[&str], config: ClusterConfig, command: TransactionsCommand) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    let mut out = std::io::stdout().lock();
    match command {
        TransactionsCommand::List => {
            let cluster = Cluster::connect(seeds, config).await.map_err(e)?;
            let meta = cluster.refresh_metadata(Some(&[])).await.map_err(e)?;
            let mut rows = Vec::new();
            for id in meta.brokers.keys() {
                let conn = cluster.broker(*id, Workload::Admin).await.map_err(e)?;
                let resp =
                    conn.request(&ListTransactionsRequest::default().with_duration_filter(-1)).await.map_err(e)?;
                if resp.error_code != 0 {
                    return Err(format!(
                        "ListTransactions on {}: {}",
                        conn.addr(),
                        kafkit::protocol::ErrorCode::from_code(resp.error_code)
                    ));
                }
                for t in resp.transaction_states {
                    rows.push((t.transactional_id, t.producer_id, t.transaction_state));
                }
            }
            rows.sort();
            let _ = writeln!(out, "transactional_id\tproducer_id\tstate");
            for (id, pid, state) in rows {
                let _ = writeln!(out, "{id}\t{pid}\t{state}");
            }
            Ok(())
        }
        TransactionsCommand::Describe { id } => {
            let admin = Client::new(seeds, config).await.map_err(e)?;
            let mut all = admin.describe_transactions(&[&id]).await.map_err(e)?;
            let d = all.remove(&id).ok_or_else(|| format!("no answer for {id}"))?.map_err(e)?;
            let _ = writeln!(out, "transactional id {id}");
            let _ = writeln!(out, "  state\t{}", d.state);
            let _ = writeln!(out, "  producer id\t{}", d.producer_id);
            let _ = writeln!(out, "  producer epoch\t{}", d.producer_epoch);
            let _ = writeln!(out, "  timeout ms\t{}", d.timeout_ms);
            let _ = writeln!(out, "  start time ms\t{}", d.start_time_ms);
            for tp in &d.partitions {
                let _ = writeln!(out, "  partition\t{}/{}", tp.topic, tp.partition);
            }
            Ok(())
        }
    }
}
