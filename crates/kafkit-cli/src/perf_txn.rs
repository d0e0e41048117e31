//! `kafkit perf produce --transactional-id`: transactional produce throughput (records and
//! transactions per second, client CPU per record), to set beside the Java peer's `txn_perf`
//! (scripts/java-peer/Peer.java; scripts/txn-bench.sh runs both).

use crate::perf::ProduceArgs;
use bytes::Bytes;
use kafkit::{Error, Message, Writer};
use kafkit_cli::report::{usage, Report};
use std::time::Instant;

/// Values of random text, `size` bytes each: `n` of them from a 64-bit LCG (Knuth's MMIX
/// constants) seeded with 42, one character per step from its high bits. Peer.java's
/// `randomValues` is the same, so both clients send the same bytes.
pub fn random_values(n: usize, size: usize) -> Vec<Bytes> {
    const ALPHABET: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .";
    let mut x: u64 = 42;
    (0..n)
        .map(|_| {
            let v: Vec<u8> = (0..size)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ALPHABET[(x >> 58) as usize]
                })
                .collect();
            Bytes::from(v)
        })
        .collect()
}

/// The key of record `i`: its number, zero-padded to `size` digits (`%016d` in Java).
pub fn key(i: u64, size: usize) -> Bytes {
    Bytes::from(format!("{i:0size$}").into_bytes())
}

/// Begin, write `a.transaction_records` records, commit, until `a.records` are written; then
/// the report of the timed part (init_transactions is not in it, as Peer.java's timing
/// starts after initTransactions).
pub async fn produce(w: Writer, a: &ProduceArgs) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    if a.transaction_records == 0 {
        return Err("--transaction-records must be at least 1".into());
    }
    w.init_transactions().await.map_err(|e| format!("init_transactions: {e}"))?;
    let values = if a.random_values {
        random_values(a.records.clamp(1, 100_000) as usize, a.record_size)
    } else {
        vec![Bytes::from(vec![b'x'; a.record_size])]
    };
    let txns = a.records.div_ceil(a.transaction_records);
    let mut lat: Vec<u32> = Vec::with_capacity(txns as usize);
    let (cpu0, _) = usage();
    let started = Instant::now();
    let mut i = 0u64;
    while i < a.records {
        let t0 = Instant::now();
        w.begin_transaction().await.map_err(e)?;
        let end = (i + a.transaction_records).min(a.records);
        while i < end {
            let k = (a.key_size > 0).then(|| key(i, a.key_size));
            let v = values[(i % values.len() as u64) as usize].clone();
            // The acknowledgement is commit_transaction's to wait for.
            drop(w.write(Message::new(k, Some(v))).await.map_err(e)?);
            i += 1;
        }
        w.commit_transaction().await.map_err(e)?;
        lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    let elapsed = started.elapsed();
    let (cpu1, _) = usage();
    let stats = w.stats();
    w.close().await.map_err(e)?;
    let mut r =
        Report::finish("produce", a.records, a.records * (a.record_size + a.key_size) as u64, elapsed, &mut lat);
    r.latency_of = "transaction begin to end of commit";
    r.cpu = cpu1.saturating_sub(cpu0);
    r.cpu_of = "the timed part (after init_transactions)";
    r.transactions = Some(txns);
    r.produce_requests = Some((stats.requests, stats.retries));
    r.print(a.json);
    Ok(())
}
