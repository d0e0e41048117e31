//! The fault suite's checker: sequence-numbered records, what the Writer reported for each,
//! and the partitions read back, compared per partition.

use bytes::Bytes;
use kafkit::admin::{Client, OffsetSpec};
use kafkit::{Error, IsolationLevel, Message, Reader, ReaderConfig, StartOffset, TopicPartition};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A record's value: the run's sequence number, zero-padded, then filler to `len` bytes.
pub fn value(seq: u64, len: usize) -> Bytes {
    let mut v = format!("{seq:012}|");
    while v.len() < len {
        v.push_str("abcdefghijklmnopqrstuvwxyz ");
    }
    v.truncate(len.max(13));
    Bytes::from(v)
}

/// The sequence number in a value written by [`value`].
pub fn seq_of(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v.get(..12)?).ok()?.parse().ok()
}

/// What the Writer said about one record.
#[derive(Debug)]
pub enum Outcome {
    /// Acknowledged at (partition, offset), at this time.
    Written(i32, i64, Instant),
    /// Failed; `maybe` when the error says it may have been written anyway
    /// ([`Error::DeliveryTimeout`], a request timeout).
    Failed { maybe: bool, error: String },
}

impl Outcome {
    pub fn of(r: kafkit::Result<kafkit::Delivered>) -> Outcome {
        match r {
            Ok(d) => Outcome::Written(d.partition, d.offset, Instant::now()),
            Err(e) => Outcome::Failed { maybe: may_have_been_written(&e), error: e.to_string() },
        }
    }
}

/// Whether an error leaves it open whether the record was written: a timeout, or a
/// connection lost after the request went out.
pub fn may_have_been_written(e: &Error) -> bool {
    e.is_timeout() || matches!(e, Error::ConnectionClosed { .. } | Error::Fatal(_))
}

/// The verdict over one run.
#[derive(Debug, Default)]
pub struct Report {
    pub records: usize,
    pub written: usize,
    pub failed: usize,
    pub failed_maybe: usize,
    /// Acknowledged but not read back.
    pub lost: usize,
    /// Read back more than once.
    pub duplicated: usize,
    /// Read back in a partition out of sequence order, or at another offset than acknowledged.
    pub reordered: usize,
    /// Read back though the Writer said it definitely failed.
    pub refused_but_written: usize,
    /// Read back though never written by this run.
    pub foreign: usize,
}

impl Report {
    pub fn assert_clean(&self, what: &str) {
        eprintln!("{what}: {self:?}");
        assert_eq!(
            (self.lost, self.duplicated, self.reordered, self.refused_but_written, self.foreign),
            (0, 0, 0, 0, 0),
            "{what}: lost, duplicated, reordered, refused-but-written, foreign: {self:?}"
        );
        assert_eq!(self.records, self.written + self.failed, "{what}: every record has an outcome");
    }
}

/// Every record of `partitions` from the log start offset to the high watermark, read by
/// one assigned Reader (read_uncommitted), as (partition, offset, value).
pub async fn read_all(seeds: &[&str], topic: &str, partitions: i32) -> Vec<(i32, i64, Bytes)> {
    let admin = Client::new(seeds, kafkit::ClusterConfig::default()).await.unwrap();
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    let specs: Vec<_> = tps.iter().map(|tp| (tp.clone(), OffsetSpec::Latest)).collect();
    let ends = admin.list_offsets(&specs, IsolationLevel::ReadUncommitted).await.unwrap();
    let mut end: HashMap<i32, i64> =
        ends.into_iter().map(|(tp, r)| (tp.partition, r.expect("high watermark").offset)).collect();
    end.retain(|_, e| *e > 0);
    let mut out = Vec::new();
    if end.is_empty() {
        return out;
    }
    let mut r = Reader::new(
        seeds,
        ReaderConfig::assign(tps).with_start(StartOffset::First).with_max_wait(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pos: HashMap<i32, i64> = HashMap::new();
    while end.iter().any(|(p, e)| pos.get(p).copied().unwrap_or(0) < *e) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "reading back: at {pos:?} of {end:?} after 120 s");
        let m: Message = match tokio::time::timeout(left, r.read_message()).await {
            Ok(m) => m.unwrap(),
            Err(_) => panic!("reading back: at {pos:?} of {end:?} after 120 s"),
        };
        pos.insert(m.partition, m.offset + 1);
        out.push((m.partition, m.offset, m.value.clone().unwrap_or_default()));
    }
    out
}

/// Compares what the Writer reported (`outcomes[seq]`) with the log.
pub fn check(outcomes: &[Outcome], log: &[(i32, i64, Bytes)]) -> Report {
    let mut rep = Report { records: outcomes.len(), ..Report::default() };
    for o in outcomes {
        match o {
            Outcome::Written(..) => rep.written += 1,
            Outcome::Failed { maybe, .. } => {
                rep.failed += 1;
                rep.failed_maybe += usize::from(*maybe);
            }
        }
    }
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut last: BTreeMap<i32, u64> = BTreeMap::new();
    for (p, off, v) in log {
        let Some(seq) = seq_of(v).filter(|s| (*s as usize) < outcomes.len()) else {
            rep.foreign += 1;
            continue;
        };
        let n = seen.entry(seq).or_default();
        *n += 1;
        if *n > 1 {
            rep.duplicated += 1;
        }
        match &outcomes[seq as usize] {
            Outcome::Written(wp, wo, _) if (wp, wo) != (p, off) => rep.reordered += 1,
            Outcome::Failed { maybe: false, .. } => rep.refused_but_written += 1,
            _ => {}
        }
        // One writer: a partition's records are in sequence order.
        if let Some(prev) = last.insert(*p, seq) {
            if prev >= seq {
                rep.reordered += 1;
            }
        }
    }
    for (seq, o) in outcomes.iter().enumerate() {
        if matches!(o, Outcome::Written(..)) && !seen.contains_key(&(seq as u64)) {
            rep.lost += 1;
        }
    }
    rep
}

/// The longest time between two consecutive acknowledgements after `from`: how long the
/// writer stood still across the fault.
pub fn longest_stall(outcomes: &[Outcome], from: Instant) -> Duration {
    let mut times: Vec<Instant> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Written(_, _, t) if *t >= from => Some(*t),
            _ => None,
        })
        .collect();
    times.sort();
    let mut worst = times.first().map_or(Duration::ZERO, |t| t.duration_since(from));
    for w in times.windows(2) {
        worst = worst.max(w[1] - w[0]);
    }
    worst
}

/// A Reader of every partition of a topic, from the first offset, while a fault runs: each
/// record it is given is kept as (partition, offset, when), in the shape of
/// [`Outcome::Written`] so the pauses of the reads are measured as the writes' are.
pub struct Follower {
    got: std::sync::Arc<std::sync::Mutex<Vec<(i32, i64, Instant)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    pub async fn start(seeds: &[&str], topic: &str, partitions: i32) -> Follower {
        let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
        let config = ReaderConfig::assign(tps).with_start(StartOffset::First).with_max_wait(Duration::from_millis(500));
        let mut r = Reader::new(seeds, config).await.unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = got.clone();
        let task = tokio::spawn(async move {
            loop {
                match r.read_message().await {
                    Ok(m) => into.lock().unwrap().push((m.partition, m.offset, Instant::now())),
                    Err(e) if e.is_retriable() => eprintln!("follower: {e}"),
                    Err(e) => panic!("follower: {e}"),
                }
            }
        });
        Follower { got, task }
    }

    /// Waits (up to 60 s) until it has read as many records as `log` holds, stops, and
    /// checks that it read exactly the log, each record once; returns its reads.
    pub async fn finish(self, log: &[(i32, i64, Bytes)]) -> Vec<Outcome> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.got.lock().unwrap().len() < log.len() {
            let n = self.got.lock().unwrap().len();
            assert!(Instant::now() < deadline, "the follower read {n} of {} records in 60 s", log.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.task.abort();
        let got = std::mem::take(&mut *self.got.lock().unwrap());
        let mut read: Vec<(i32, i64)> = got.iter().map(|(p, o, _)| (*p, *o)).collect();
        read.sort_unstable();
        let mut want: Vec<(i32, i64)> = log.iter().map(|(p, o, _)| (*p, *o)).collect();
        want.sort_unstable();
        assert_eq!(read, want, "the follower read every record of the log once");
        got.into_iter().map(|(p, o, t)| Outcome::Written(p, o, t)).collect()
    }
}
