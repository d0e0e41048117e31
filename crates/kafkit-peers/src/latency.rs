//! Latency at half load (issue 17): after a workload's peak runs, every client runs it again
//! at half its median peak rate ([`half_load`]), and the table gets each client's p50 and p99.
//! Clients whose peaks differ are then paced at different rates, and at a higher rate a
//! record meets fuller batches and longer queues; so kafkit also runs at the rate of the
//! peer with the lowest p99 ([`lowest_peer`]), and the table gives both ratios.

use crate::bench::Bench;
use crate::compare::{
    client_command, delete_topic, harness_writer, median, prepare, rate_text, turn, write_records, Run, Workload,
    CLIENTS, HEADINGS,
};
use crate::payload::Payload;
use kafkit_cli::report::Pace;
use std::process::Command;

/// One paced run's latency: the rate it ran at, p50 and p99 in milliseconds (produce: send to
/// acknowledgement; consume: the record's timestamp to its receipt). NaN when not measured.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub rate: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Latency {
    pub(crate) const NOT_MEASURED: Latency = Latency { rate: 0, p50_ms: f64::NAN, p99_ms: f64::NAN };
}

/// The rate of a client's paced run of a cell: half its median peak rate there, and for a
/// consume cell at most half the rate at which the harness's producer filled its topics (the
/// records are produced while the consumer reads them). At least 1 record per second.
pub fn half_load(w: &Workload, peak: &Run) -> u64 {
    let mut rate = peak.records_per_sec;
    if w.op == "consume" && peak.fill_records_per_sec.is_finite() {
        rate = rate.min(peak.fill_records_per_sec);
    }
    ((rate / 2.0) as u64).max(1)
}

/// Medians of a client's paced runs.
pub fn latency_medians(runs: &[Latency]) -> Latency {
    Latency {
        rate: runs.first().map_or(0, |l| l.rate),
        p50_ms: median(runs.iter().map(|l| l.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|l| l.p99_ms).collect()),
    }
}

/// kafkit's p99 at half load over the best peer's (target <= 1); NaN when not measured.
pub fn latency_ratio(kafkit: &Latency, peers: &[Latency]) -> f64 {
    let best = peers.iter().map(|l| l.p99_ms).filter(|p| !p.is_nan()).fold(f64::INFINITY, f64::min);
    if !best.is_finite() || kafkit.p99_ms.is_nan() {
        f64::NAN
    } else {
        kafkit.p99_ms / best.max(0.001)
    }
}

/// The peer (an index into [`CLIENTS`], never kafkit's 0) with the lowest measured p99, if any.
pub fn lowest_peer(latency: &[Latency]) -> Option<usize> {
    (1..latency.len())
        .filter(|&i| !latency[i].p99_ms.is_nan())
        .min_by(|&a, &b| latency[a].p99_ms.total_cmp(&latency[b].p99_ms))
}

/// What a workload's latency pass measured.
#[derive(Clone, Debug)]
pub struct LatencyPass {
    /// Each client's medians at its own [`half_load`], by [`CLIENTS`] index.
    pub own: Vec<Latency>,
    /// kafkit's medians at the [`lowest_peer`]'s rate; NOT_MEASURED when there is none.
    pub kafkit_at_peer_rate: Latency,
}

impl LatencyPass {
    pub(crate) fn not_measured() -> LatencyPass {
        LatencyPass { own: vec![Latency::NOT_MEASURED; CLIENTS.len()], kafkit_at_peer_rate: Latency::NOT_MEASURED }
    }
}

/// p50 and p99 (ms) of a report's latency.
fn parse_latency(stdout: &str) -> Result<(f64, f64), String> {
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or("no JSON report")?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let f = |k: &str| v["latency"][k].as_f64().ok_or(format!("report lacks latency.{k}"));
    Ok((f("p50_ms")?, f("p99_ms")?))
}

impl Bench<'_> {
    /// The latency pass of workload `w`: `reps` paced runs of every client at its
    /// [`half_load`] (the client order rotating as in the peak runs), but those `skip` names;
    /// then `reps` runs of kafkit at the [`lowest_peer`]'s rate. Medians (n/a for a client
    /// not run).
    pub(crate) fn latency_pass(
        &self,
        w: &Workload,
        wi: usize,
        payload: &Payload,
        peaks: &[Run],
        reps: usize,
        stamp: u32,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<LatencyPass, String> {
        let mut runs: Vec<Vec<Latency>> = vec![Vec::new(); CLIENTS.len()];
        for rep in 0..reps {
            for (ci, client) in turn(rep, skip) {
                let rate = half_load(w, &peaks[ci]);
                let l = self.paced_logged(
                    client,
                    w,
                    payload,
                    &format!("peers-{stamp}-{wi}-{rep}-{client}-paced"),
                    rate,
                    rep,
                )?;
                runs[ci].push(l);
            }
        }
        let own: Vec<Latency> = runs.iter().map(|r| latency_medians(r)).collect();
        let mut at_peer = Vec::new();
        if let Some(peer) = lowest_peer(&own).filter(|_| !own[0].p99_ms.is_nan()) {
            for rep in 0..reps {
                let topic = format!("peers-{stamp}-{wi}-{rep}-{}-at-{}", CLIENTS[0], CLIENTS[peer]);
                at_peer.push(self.paced_logged(CLIENTS[0], w, payload, &topic, own[peer].rate, rep)?);
            }
        }
        let kafkit_at_peer_rate = if at_peer.is_empty() { Latency::NOT_MEASURED } else { latency_medians(&at_peer) };
        Ok(LatencyPass { own, kafkit_at_peer_rate })
    }

    /// [`Bench::paced`], with a progress line.
    fn paced_logged(
        &self,
        client: &str,
        w: &Workload,
        payload: &Payload,
        topic: &str,
        rate: u64,
        rep: usize,
    ) -> Result<Latency, String> {
        let l = self.paced(client, w, payload, topic, rate)?;
        eprintln!(
            "{:<28} paced {} {:<13} {:>10} rec/s: p50 {:>7.2} ms, p99 {:>7.2} ms",
            w.name(),
            rep + 1,
            client,
            rate,
            l.p50_ms,
            l.p99_ms
        );
        Ok(l)
    }

    /// Runs `client` on workload `w` at `rate` records per second, on a new topic `topic`
    /// (then deleted), for its p50 and p99 latency.
    ///
    /// - Produce: the client's producer sends record `i` at `i / rate` seconds; the latency
    ///   is from each send to its acknowledgement.
    /// - Consume: the client's consumer starts on the empty topic; once the broker has
    ///   handled a Fetch since it started (counted over JMX: the consumer has its positions
    ///   and is fetching), the harness's producer ([`harness_writer`]) writes the cell's
    ///   records at `rate`. The latency is from each record's timestamp (set when the
    ///   harness wrote it) to its receipt. Without `--broker-jmx` there is no such event to
    ///   wait for, and consume latency is not measured. On a broker that others use too,
    ///   their fetches may start the producer early: the first records then wait for the
    ///   consumer, and the latency is higher than the client's own.
    fn paced(&self, client: &str, w: &Workload, payload: &Payload, topic: &str, rate: u64) -> Result<Latency, String> {
        if w.op == "produce" {
            return self.paced_produce(client, w, payload, topic, rate);
        }
        let Some(counter) = self.counter else { return Ok(Latency { rate, ..Latency::NOT_MEASURED }) };
        self.rt.block_on(prepare(&self.broker.addr, topic, w, payload, false))?;
        let fetches = || -> Result<u64, String> { Ok(counter.read()?.get("Fetch").copied().unwrap_or(0)) };
        let before = fetches()?;
        let mut cmd =
            client_command(client, self.kafkit, self.external, &self.broker.addr, topic, w, self.text, self.key_size);
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("{client}: {e}"))?;
        let pid = child.id();
        // Its output is read while the harness produces, so a full pipe never stops it.
        let waiter = std::thread::spawn(move || child.wait_with_output());
        let started = std::time::Instant::now();
        let produced = loop {
            if waiter.is_finished() {
                break Ok(());
            }
            if fetches()? > before {
                let writer = self.rt.block_on(harness_writer(&self.broker.addr, topic, w));
                let pace = Pace::new(std::time::Instant::now(), rate);
                break writer.and_then(|writer| self.rt.block_on(write_records(writer, w, payload, pace)));
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                break Err(format!("{client} sent no Fetch within 60 s of its start"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        if produced.is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let out = waiter.join().map_err(|_| format!("{client}: its waiter panicked"))?.map_err(|e| e.to_string());
        self.rt.block_on(delete_topic(&self.broker.addr, topic));
        produced?;
        paced_report(client, w, rate, out?)
    }

    fn paced_produce(
        &self,
        client: &str,
        w: &Workload,
        payload: &Payload,
        topic: &str,
        rate: u64,
    ) -> Result<Latency, String> {
        self.rt.block_on(prepare(&self.broker.addr, topic, w, payload, false))?;
        let out =
            client_command(client, self.kafkit, self.external, &self.broker.addr, topic, w, self.text, self.key_size)
                .args(["--rate", &rate.to_string()])
                .output()
                .map_err(|e| format!("{client}: {e}"));
        self.rt.block_on(delete_topic(&self.broker.addr, topic));
        paced_report(client, w, rate, out?)
    }
}

/// The latency a paced run of `client` reported, or its failure.
fn paced_report(client: &str, w: &Workload, rate: u64, out: std::process::Output) -> Result<Latency, String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{client} on {} at {rate}/s: {stdout}{}", w.name(), String::from_utf8_lossy(&out.stderr)));
    }
    let (p50_ms, p99_ms) = parse_latency(&stdout)?;
    Ok(Latency { rate, p50_ms, p99_ms })
}

/// The second table: each client's p50 and p99 latency at half its peak rate ([`half_load`]),
/// kafkit's p99 over the best peer's, and kafkit's p50 / p99 at that peer's rate.
pub(crate) fn print_latency_table(table: &[(Workload, Vec<Run>, LatencyPass)]) {
    println!();
    println!(
        "Latency at half load, medians of p50 / p99 in ms, at half of each client's median peak rate in the table \
         above (consume: also at most half the rate at which the harness's producer filled the topics, as it writes \
         the records while the consumer reads them). Produce: send to acknowledgement; consume: the record's \
         timestamp to its receipt. The last two columns: kafkit paced at the rate of the peer with the lowest p99, \
         and its p99 there over that peer's."
    );
    println!();
    println!(
        "| workload | {} | p99 vs best peer (≤ 1.00) | kafkit at the best peer's rate | p99 vs best peer, same rate |",
        HEADINGS.join(" | ")
    );
    println!("|---|{}---|---|---|", "---|".repeat(HEADINGS.len()));
    let text = |l: &Latency| {
        if l.p99_ms.is_nan() {
            "n/a".to_string()
        } else {
            format!("{:.2} / {:.2} ms at {}", l.p50_ms, l.p99_ms, rate_text(l.rate as f64))
        }
    };
    let ratio_text = |ratio: f64| {
        if ratio.is_nan() {
            "n/a".to_string()
        } else {
            format!("{ratio:.2}{}", if ratio <= 1.0 { "" } else { " ✗" })
        }
    };
    for (w, _, pass) in table {
        let cells: Vec<String> = pass.own.iter().map(text).collect();
        let ratio = latency_ratio(&pass.own[0], &pass.own[1..]);
        let same_rate = latency_ratio(&pass.kafkit_at_peer_rate, &pass.own[1..]);
        println!(
            "| {} | {} | {} | {} | {} |",
            w.name(),
            cells.join(" | "),
            ratio_text(ratio),
            text(&pass.kafkit_at_peer_rate),
            ratio_text(same_rate)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peak(records_per_sec: f64, fill_records_per_sec: f64) -> Run {
        Run { records_per_sec, fill_records_per_sec, ..Run::default() }
    }

    #[test]
    fn half_load_is_half_the_peak_and_for_consume_at_most_half_the_fill_rate() {
        let produce = Workload { op: "produce", records: 1000, size: 100, codec: "none" };
        let consume = Workload { op: "consume", ..produce.clone() };
        assert_eq!(half_load(&produce, &peak(800_000.0, f64::NAN)), 400_000);
        // A produce cell ignores the fill rate, even when one is set.
        assert_eq!(half_load(&produce, &peak(800_000.0, 100_000.0)), 400_000);
        assert_eq!(half_load(&consume, &peak(2_000_000.0, 600_000.0)), 300_000);
        assert_eq!(half_load(&consume, &peak(200_000.0, 600_000.0)), 100_000);
        assert_eq!(half_load(&consume, &peak(200_000.0, f64::NAN)), 100_000);
        assert_eq!(half_load(&consume, &peak(0.5, f64::NAN)), 1);
    }

    #[test]
    fn the_latency_ratio_is_over_the_best_measured_peer() {
        let l = |p99_ms: f64| Latency { rate: 10, p50_ms: 1.0, p99_ms };
        assert_eq!(latency_ratio(&l(6.0), &[l(12.0), l(3.0), l(f64::NAN)]), 2.0);
        assert_eq!(latency_ratio(&l(1.5), &[l(3.0)]), 0.5);
        assert!(latency_ratio(&l(f64::NAN), &[l(3.0)]).is_nan());
        assert!(latency_ratio(&l(2.0), &[l(f64::NAN)]).is_nan());
        let m = latency_medians(&[l(5.0), l(1.0), l(3.0)]);
        assert_eq!((m.rate, m.p99_ms), (10, 3.0));
    }

    #[test]
    fn the_lowest_peer_is_the_measured_peer_with_the_lowest_p99_never_kafkit() {
        let l = |p99_ms: f64| Latency { rate: 10, p50_ms: 1.0, p99_ms };
        assert_eq!(lowest_peer(&[l(1.0), l(9.0), l(f64::NAN), l(4.0), l(6.0)]), Some(3));
        assert_eq!(lowest_peer(&[l(1.0), l(f64::NAN)]), None);
        assert_eq!(lowest_peer(&[l(1.0)]), None);
    }

    #[test]
    fn a_paced_report_gives_its_latency_line() {
        let out = "progress\n{\"records\":10,\"latency\":{\"p50_ms\":1.25,\"p99_ms\":4.5}}\n";
        assert_eq!(parse_latency(out), Ok((1.25, 4.5)));
        assert!(parse_latency("{\"records\":10}").unwrap_err().contains("latency.p50_ms"));
        assert!(parse_latency("no report").is_err());
    }
}
