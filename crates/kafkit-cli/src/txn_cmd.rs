//! Transactions in the CLI: `kafkit produce --transactional-id` (one transaction per N
//! records) and `kafkit transactions list|describe` (ListTransactions, DescribeTransactions;
//! KIP-664).

use clap::Subcommand;
use kafkit::admin::Client;
use kafkit::protocol::messages::ListTransactionsRequest;
use kafkit::{Cluster, ClusterConfig, Error, Message, Workload, Writer};
use std::io::Write;

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

/// Writes `messages` in transactions of `per_txn` records (all in one without it): each
/// transaction begun, written, committed. An error or Ctrl-C aborts the open transaction;
/// the outcome says how many records were committed.
pub async fn produce(writer: &Writer, messages: Vec<Message>, per_txn: Option<usize>) -> Result<(), String> {
    let total = messages.len();
    if per_txn == Some(0) {
        return Err("--transaction-records must be at least 1".into());
    }
    writer.init_transactions().await.map_err(|e| format!("init_transactions: {e}"))?;
    let per_txn = per_txn.unwrap_or(total).max(1);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let (mut committed, mut transactions) = (0usize, 0usize);
    let mut left = messages.into_iter().peekable();
    while left.peek().is_some() {
        writer.begin_transaction().await.map_err(|e| e.to_string())?;
        let chunk: Vec<Message> = left.by_ref().take(per_txn).collect();
        let n = chunk.len();
        let step = async {
            let mut futures = Vec::with_capacity(n);
            for m in chunk {
                futures.push(writer.write(m).await?);
            }
            writer.commit_transaction().await?;
            drop(futures);
            Ok::<(), Error>(())
        };
        let outcome = tokio::select! {
            r = step => r.map_err(|e| e.to_string()),
            _ = &mut ctrl_c => Err("interrupted".to_string()),
        };
        if let Err(why) = outcome {
            let aborted = match writer.abort_transaction().await {
                Ok(()) => "the open transaction was aborted".to_string(),
                Err(e) if e.is_fatal() => format!("the open transaction is left to the coordinator ({e})"),
                Err(e) => format!("aborting the open transaction failed: {e}"),
            };
            return Err(format!(
                "{why}; {aborted}; {committed} of {total} records committed in {transactions} transactions"
            ));
        }
        committed += n;
        transactions += 1;
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
