//! Counters and timings per topic (kafkax's stats; the Java consumer's per-topic fetch and
//! lag metrics).

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Handler call durations in microseconds, in buckets of 1/8 of a power of two (values
/// within 12.5% of the truth), from 1 µs to hours.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const SUB: u64 = 8;

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros() as u64;
    let shift = msb - 3;
    (SUB + shift * SUB + ((v >> shift) - SUB)) as usize
}

fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let top = SUB + (i - SUB) % SUB;
    ((top + 1) << shift) - 1
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; bucket(u64::MAX) + 1], total: 0, max: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }
    /// The `q` quantile (0 to 1), as the upper edge of its bucket.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(upper(i).min(self.max));
            }
        }
        Duration::from_micros(self.max)
    }
}

/// The live counters of one topic.
#[derive(Debug, Default)]
pub(crate) struct TopicCounters {
    pub handled: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub failed: AtomicU64,
    pub dead_letter_errors: AtomicU64,
    pub lag: AtomicI64,
    pub latency: Mutex<Histogram>,
}

impl TopicCounters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub fn time(&self, d: Duration) {
        if let Ok(mut h) = self.latency.lock() {
            h.record(d);
        }
    }
}

/// Handler latency percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Calls measured.
    pub calls: u64,
    /// Median.
    #[serde(with = "humantime_serde")]
    pub p50: Duration,
    /// 90th percentile.
    #[serde(with = "humantime_serde")]
    pub p90: Duration,
    /// 99th percentile.
    #[serde(with = "humantime_serde")]
    pub p99: Duration,
    /// The longest.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
}

/// One topic's counters, from [`crate::ServiceHandle::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopicStats {
    /// Records whose handler succeeded (a batch counts its records).
    pub handled: u64,
    /// Retries scheduled: handler calls that failed with [`crate::Action::Retry`] and will
    /// be called again (in place or through a retry topic).
    pub retried: u64,
    /// Records written to the dead-letter topic (acknowledged).
    pub dead_lettered: u64,
    /// Handler calls that failed, whatever came next (a batch counts its failed records).
    pub failed: u64,
    /// Dead-letter and retry-topic writes that failed (each try; the partition waits and
    /// tries again).
    pub dead_letter_errors: u64,
    /// Records between the members' positions and the ends of the partitions they read
    /// (the Java consumer's `records-lag`, summed), as of the last fetches; -1 before.
    pub lag: i64,
    /// Handler call durations (every call, retries included).
    pub latency: Latency,
}

/// Every topic's counters, by topic.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    pub topics: BTreeMap<String, Arc<TopicCounters>>,
}

impl Registry {
    pub fn counters(&mut self, topic: &str) -> Arc<TopicCounters> {
        self.topics
            .entry(topic.to_string())
            .or_insert_with(|| Arc::new(TopicCounters { lag: AtomicI64::new(-1), ..TopicCounters::default() }))
            .clone()
    }

    pub fn snapshot(&self) -> BTreeMap<String, TopicStats> {
        self.topics
            .iter()
            .map(|(t, c)| {
                let h = c.latency.lock().map(|h| h.clone()).unwrap_or_default();
                let latency = Latency {
                    calls: h.total,
                    p50: h.quantile(0.5),
                    p90: h.quantile(0.9),
                    p99: h.quantile(0.99),
                    max: Duration::from_micros(h.max),
                };
                let s = TopicStats {
                    handled: c.handled.load(Ordering::Relaxed),
                    retried: c.retried.load(Ordering::Relaxed),
                    dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    dead_letter_errors: c.dead_letter_errors.load(Ordering::Relaxed),
                    lag: c.lag.load(Ordering::Relaxed),
                    latency,
                };
                (t.clone(), s)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_an_eighth() {
        let mut h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = h.quantile(q).as_micros() as f64;
            assert!(got >= want && got <= want * 1.125, "q{q}: {got} µs, want about {want}");
        }
        assert_eq!(h.quantile(1.0), Duration::from_micros(10_000));
        for v in [0u64, 7, 8, 9, 15, 16, 1000, 1 << 40] {
            assert!(upper(bucket(v)) >= v && (upper(bucket(v)) as f64) <= (v as f64) * 1.125 + 1.0, "{v}");
        }
    }
}
