//! What `kafkit perf` and the peer clients of the comparison harness (`kafkit-peers`)
//! print: throughput, latency percentiles, client CPU and peak RSS, as text or JSON.

use std::future::Future;
use std::io::Write;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Records between two readings of the clock in [`Receipts`].
pub const CLOCK_EVERY: u32 = 64;

/// End-to-end latencies of consumed records, from their timestamps to receipt, in
/// microseconds. Every client of the harness measures the same way: the wall clock is read
/// for the first record after a wait ([`Receipts::waited`]) and then once every
/// [`CLOCK_EVERY`] records, so a record's receipt time is late by at most the time the
/// client took for fewer than 64 records, a few microseconds, while record timestamps
/// have millisecond resolution.
#[derive(Default)]
pub struct Receipts {
    /// The latencies so far.
    pub latency_us: Vec<u32>,
    now_us: i64,
    left: u32,
}

impl Receipts {
    /// Room for `n` latencies.
    pub fn with_capacity(n: usize) -> Receipts {
        Receipts { latency_us: Vec::with_capacity(n), now_us: 0, left: 0 }
    }

    /// The client waited for records: read the clock again for the next one.
    pub fn waited(&mut self) {
        self.left = 0;
    }

    /// Awaits the client's next record (`next`) for at most `limit`, noting the wait first
    /// when it is not there at once; `None` when the limit passed.
    pub async fn next<F: Future>(&mut self, next: F, limit: Duration) -> Option<F::Output> {
        let mut next = std::pin::pin!(next);
        // The context is a temporary of this statement: nothing unsendable lives across the
        // await below.
        let now = next.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        match now {
            Poll::Ready(r) => Some(r),
            Poll::Pending => {
                self.waited();
                tokio::time::timeout(limit, next).await.ok()
            }
        }
    }

    /// A record with timestamp `ts_ms` (ms since the epoch) was received.
    pub fn record(&mut self, ts_ms: i64) {
        if self.left == 0 {
            self.now_us = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64;
            self.left = CLOCK_EVERY;
        }
        self.left -= 1;
        self.latency_us.push((self.now_us - ts_ms.saturating_mul(1000)).clamp(0, u32::MAX as i64) as u32);
    }
}

/// Paces a loop at a steady rate: record `i` is due `i / rate` seconds after the start, so a
/// late record is followed at once by the next ones until the loop is on time again (the
/// rate is kept over the run, not between two records). What `kafkit perf produce --rate`,
/// `kafkit perf consume --max-rate` and the harness's paced runs (`kafkit-peers compare`'s
/// latency at half load) use.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    started: Instant,
    /// Records per second; 0: no pacing.
    rate: u64,
}

impl Pace {
    /// Record 0 is due at `started`; `rate` records per second after it (0: every record at
    /// once).
    pub fn new(started: Instant, rate: u64) -> Pace {
        Pace { started, rate }
    }

    /// How long until record `i` is due; `None` when it is due already (or not paced).
    pub fn wait(&self, i: u64) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        let due = self.started + Duration::from_secs_f64(i as f64 / self.rate as f64);
        due.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }
}

/// Client CPU (user + system) and peak resident memory of this process so far.
///
/// Peak memory is `VmHWM` of `/proc/self/status`, the high-water mark of this process's own
/// address space: `getrusage`'s `ru_maxrss` survives `exec`, so a child started by a big
/// parent would report the parent's peak. `ru_maxrss` is the fallback elsewhere.
pub fn usage() -> (Duration, u64) {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return (Duration::ZERO, 0);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    // Both are in KiB on Linux.
    let hwm = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    });
    (tv(u.ru_utime) + tv(u.ru_stime), hwm.unwrap_or(u.ru_maxrss as u64) * 1024)
}

/// Percentiles of latencies in microseconds (sorted in place).
pub fn percentiles(lat: &mut [u32]) -> [f64; 3] {
    lat.sort_unstable();
    let at = |q: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    [at(0.50), at(0.99), at(0.999)]
}

/// One load test's outcome.
pub struct Report {
    /// `produce` or `consume`.
    pub what: &'static str,
    /// Records sent or read.
    pub records: u64,
    /// Key and value bytes of those records.
    pub bytes: u64,
    /// From the first send (or the start of reading) to the last acknowledgement (or record).
    pub elapsed: Duration,
    /// p50, p99 and p99.9 latency in milliseconds.
    pub latency_ms: [f64; 3],
    /// What the latency measures.
    pub latency_of: &'static str,
    /// Client CPU, user + system, of the process ([`Report::cpu_of`]).
    pub cpu: Duration,
    /// Over what [`Report::cpu`] was measured: the whole process unless said otherwise.
    pub cpu_of: &'static str,
    /// Transactions committed, when the load was transactional.
    pub transactions: Option<u64>,
    /// Produce requests sent and batch resends (`WriterStats::requests`, `retries`), when
    /// the client counted them.
    pub produce_requests: Option<(u64, u64)>,
    /// Fetch requests sent, how many of them were incremental (KIP-227), and the partitions
    /// they named in all (`ReaderStats::fetches`, `incremental_fetches`, `fetch_partitions`),
    /// when the client counted them.
    pub fetch_requests: Option<(u64, u64, u64)>,
    /// Peak resident memory of the process, bytes.
    pub rss: u64,
}

impl Report {
    /// The report of a load test that just finished: this process's CPU and peak RSS so far,
    /// and the percentiles of `latency_us` (sorted in place). `what` is `produce` (latency
    /// from send to acknowledgement) or `consume` (from the record timestamp to receipt).
    pub fn finish(what: &'static str, records: u64, bytes: u64, elapsed: Duration, latency_us: &mut [u32]) -> Report {
        let (cpu, rss) = usage();
        let latency_of = if what == "produce" { "send to acknowledgement" } else { "record timestamp to receipt" };
        Report {
            what,
            records,
            bytes,
            elapsed,
            latency_ms: percentiles(latency_us),
            latency_of,
            cpu,
            cpu_of: "the whole process",
            transactions: None,
            produce_requests: None,
            fetch_requests: None,
            rss,
        }
    }

    /// Prints one line of text, or one JSON object.
    pub fn print(&self, json: bool) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rps = self.records as f64 / secs;
        let mbps = self.bytes as f64 / secs / 1e6;
        let mut out = std::io::stdout().lock();
        if json {
            let mut o = serde_json::json!({
                "workload": self.what,
                "records": self.records,
                "bytes": self.bytes,
                "seconds": secs,
                "records_per_sec": rps,
                "mb_per_sec": mbps,
                "latency": { "of": self.latency_of, "p50_ms": self.latency_ms[0], "p99_ms": self.latency_ms[1], "p999_ms": self.latency_ms[2] },
                "client_cpu_seconds": self.cpu.as_secs_f64(),
                "cpu_us_per_record": self.cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64,
                "cpu_of": self.cpu_of,
                "peak_rss_bytes": self.rss,
            });
            if let Some(t) = self.transactions {
                o["transactions"] = t.into();
                o["transactions_per_sec"] = (t as f64 / secs).into();
            }
            if let Some((requests, resends)) = self.produce_requests {
                o["produce_requests"] = requests.into();
                o["produce_resends"] = resends.into();
            }
            if let Some((fetches, incremental, partitions)) = self.fetch_requests {
                o["fetch_requests"] = fetches.into();
                o["incremental_fetches"] = incremental.into();
                o["fetch_partitions"] = partitions.into();
            }
            let _ = writeln!(out, "{o}");
        } else {
            let _ = writeln!(
                out,
                "{}: {} records, {:.0} records/s, {}{mbps:.1} MB/s, latency ({}) p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, client CPU {:.2} s ({:.2} us/record), peak RSS {:.1} MiB",
                self.what,
                self.records,
                rps,
                self.transactions
                    .map(|t| format!("{t} transactions, {:.1} transactions/s, ", t as f64 / secs))
                    .unwrap_or_default(),
                self.latency_of,
                self.latency_ms[0],
                self.latency_ms[1],
                self.latency_ms[2],
                self.cpu.as_secs_f64(),
                self.cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64,
                self.rss as f64 / (1 << 20) as f64
            );
        }
    }
}

/// The acknowledgements of records written through a [`kafkit::Writer`], and each one's
/// latency from the write to its acknowledgement, in microseconds: as `kafkit perf produce`
/// and the side-by-side harness measure it. Records go into `lanes` queues by the caller's
/// choice (the harness: record i into queue i % 6, the partition it is written to), since a
/// partition's batches are acknowledged in order but two partitions' need not be (their
/// Produce requests may go on two connections). Each queue's futures are looked at, oldest
/// first, every 64 writes and at the end. 24 bytes a record in flight, 4 a record done.
pub struct Acknowledgements {
    started: std::time::Instant,
    pending: Vec<std::collections::VecDeque<(u32, kafkit::DeliveryFuture)>>,
    latency_us: Vec<u32>,
    written: u64,
}

impl Acknowledgements {
    /// Starts the clock, for `records` records in `lanes` queues (at least 1).
    pub fn new(records: u64, lanes: usize) -> Acknowledgements {
        let lanes = lanes.max(1);
        let per_lane = (kafkit::DEFAULT_QUEUE_CAPACITY + 128).div_ceil(lanes);
        Acknowledgements {
            started: std::time::Instant::now(),
            pending: (0..lanes).map(|_| std::collections::VecDeque::with_capacity(per_lane)).collect(),
            latency_us: Vec::with_capacity(records.min(1 << 26) as usize),
            written: 0,
        }
    }

    /// When the clock started.
    pub fn started(&self) -> std::time::Instant {
        self.started
    }

    fn since(&self) -> u32 {
        self.started.elapsed().as_micros().min(u32::MAX as u128) as u32
    }

    /// Notes a record just written into queue `lane` (modulo the queues), and takes the
    /// acknowledgements that have come.
    ///
    /// # Errors
    /// A record the Writer failed, as one line.
    pub fn written(&mut self, lane: usize, f: kafkit::DeliveryFuture) -> Result<(), String> {
        let sent = self.since();
        let lanes = self.pending.len();
        self.pending[lane % lanes].push_back((sent, f));
        self.written += 1;
        if self.written % 64 == 1 {
            self.settle()?;
        }
        Ok(())
    }

    fn settle(&mut self) -> Result<(), String> {
        let mut cx = Context::from_waker(Waker::noop());
        for lane in 0..self.pending.len() {
            while let Some((sent, f)) = self.pending[lane].front_mut() {
                let sent = *sent;
                match std::pin::Pin::new(f).poll(&mut cx) {
                    Poll::Ready(Ok(_)) => {
                        let now = self.since();
                        self.latency_us.push(now.saturating_sub(sent));
                    }
                    Poll::Ready(Err(err)) => return Err(format!("a record was not acknowledged: {err}")),
                    Poll::Pending => break,
                }
                self.pending[lane].pop_front();
            }
        }
        Ok(())
    }

    /// Waits for every acknowledgement; the latencies, in microseconds.
    ///
    /// # Errors
    /// As [`Acknowledgements::written`].
    pub async fn finish(mut self) -> Result<Vec<u32>, String> {
        loop {
            // Wait for the oldest still pending (in the queue with the oldest front), then
            // take every one that is done.
            let Some(lane) = (0..self.pending.len())
                .filter(|&l| !self.pending[l].is_empty())
                .min_by_key(|&l| self.pending[l].front().map_or(u32::MAX, |(sent, _)| *sent))
            else {
                return Ok(self.latency_us);
            };
            if let Some((_, f)) = self.pending[lane].front_mut() {
                if let Err(err) = f.await {
                    return Err(format!("a record was not acknowledged: {err}"));
                }
            }
            self.settle()?;
        }
    }
}
