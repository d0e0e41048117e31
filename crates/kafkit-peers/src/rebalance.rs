//! Rebalance cost (issue 17, item 7): how long a consumer group of 3 members stops consuming
//! when a 4th joins, with eager and with cooperative-sticky assignment, for kafkit and for the
//! Java client on the same broker.
//!
//! One run: a new topic of `--partitions` partitions that the harness's kafkit `Writer` writes
//! at `--rate` records per second throughout, round-robin; 3 members of a new group, each its
//! own process (`kafkit-peers member`, or `Peer group_member` of `scripts/java-peer/Member.java`),
//! each printing a line per receipt and per change of its assignment ([`Member`]). Once the
//! group is stable (its members' assignments cover every partition once and every partition
//! has been read since the last change) and has read for `--steady-ms` more and a phase, a 4th
//! member starts, and the run ends when the group of 4 is stable. The members of a classic
//! group learn of a rebalance from their next heartbeat (every 3 s, from their join), so how
//! long the rebalance takes depends mostly on where in that interval the 4th member joins:
//! run `i` of `n` waits `(i + 1/2) / n` of [`HEARTBEAT`] more, so every client meets the same
//! spread of phases. From the receipts, between the 4th
//! member's start and that end:
//!
//! - **stopped**: the longest time in which no member read any record (the group stopped);
//! - **partition gap**: the longest time one partition went unread;
//! - **rebalance**: from the 4th member's start to the group of 4 stable;
//!
//! and, for scale, the same two gaps over the steady window before it.

use crate::compare::{create_topic, delete_topic, median, External};
use kafkit::{
    CooperativeStickyAssignor, Message, RangeAssignor, Reader, ReaderConfig, RoundRobin, Writer, WriterConfig,
};
use kafkit_cli::report::Pace;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct Args {
    /// Bootstrap broker of the cluster to measure on.
    #[arg(long)]
    brokers: String,
    /// Partitions of each run's topic.
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// Records per second the harness writes throughout a run.
    #[arg(long, default_value_t = 12_000)]
    rate: u64,
    /// Runs of every client and assignor; the table has their medians.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// The clients whose groups are measured: kafkit, java.
    #[arg(long, value_delimiter = ',', default_value = "kafkit,java")]
    clients: Vec<String>,
    /// The assignors: eager (range, RebalanceProtocol::Eager), cooperative (cooperative-sticky, KIP-429).
    #[arg(long, value_delimiter = ',', default_value = "eager,cooperative")]
    assignors: Vec<String>,
    /// How long the group of 3 reads, stable, before the 4th member starts (milliseconds).
    #[arg(long, default_value_t = 2000)]
    steady_ms: u64,
}

/// `kafkit-peers member`: one kafkit member of a consumer group, for [`run`].
#[derive(clap::Args)]
pub struct MemberArgs {
    /// The topic it subscribes to.
    topic: String,
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    group: String,
    /// eager (RangeAssignor) or cooperative (CooperativeStickyAssignor).
    #[arg(long)]
    assignor: String,
}

/// The heartbeat interval of every client's members (their default): the span the 4th
/// member's start is spread over.
pub const HEARTBEAT: Duration = Duration::from_secs(3);

/// The extra wait of run `rep` of `reps` before the 4th member starts: the middle of the
/// `rep`-th of `reps` equal parts of [`HEARTBEAT`].
fn phase_ms(rep: usize, reps: usize) -> u64 {
    let part = HEARTBEAT.as_millis() as u64 / reps.max(1) as u64;
    rep as u64 * part + part / 2
}

/// Wall-clock milliseconds since the epoch: every member's process reads the same clock.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn list(parts: impl IntoIterator<Item = i32>) -> String {
    parts.into_iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
}

/// Runs one kafkit member until its stdin closes, then closes the reader (it commits and
/// leaves the group). Its lines, as the Java member's:
///
/// - `s MS`: it is about to join;
/// - `a MS P,P,...`: its assignment changed to these partitions (may be empty);
/// - `r MS P,P,...`: it read records of these partitions in this millisecond.
///
/// Defaults but the assignor (session 45 s, heartbeat 3 s, commits every 5 s and on revoke),
/// starting at the log start offset.
pub fn member(a: MemberArgs) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let e = |e: kafkit::Error| e.to_string();
        let cfg = ReaderConfig::group(a.group.as_str(), [a.topic.as_str()]);
        let cfg = match a.assignor.as_str() {
            "eager" => cfg.with_assignor(RangeAssignor),
            "cooperative" => cfg.with_assignor(CooperativeStickyAssignor),
            other => return Err(format!("unknown assignor {other:?}: eager or cooperative")),
        };
        let mut out = std::io::stdout().lock();
        let mut say = |line: String| writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| e.to_string());
        say(format!("s {}", now_ms()))?;
        let mut reader = Reader::new(&[a.brokers.as_str()], cfg).await.map_err(e)?;
        // stdin's end is the harness's stop (a task of its own: reading stdin is not cancel-safe).
        let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
            let _ = stop_tx.send(());
        });
        let mut assigned: Vec<i32> = Vec::new();
        let (mut ms, mut read) = (0u64, BTreeSet::new());
        loop {
            let m = tokio::select! {
                _ = &mut stop => break,
                // Cancel-safe: a message leaves the reader only when this completes.
                m = reader.read_message() => m.map_err(e)?,
            };
            let now = now_ms();
            if now != ms && !read.is_empty() {
                say(format!("r {ms} {}", list(std::mem::take(&mut read))))?;
            }
            ms = now;
            read.insert(m.partition);
            let mut parts: Vec<i32> = reader.assignment().iter().map(|tp| tp.partition).collect();
            parts.sort_unstable();
            if parts != assigned {
                say(format!("a {now} {}", list(parts.iter().copied())))?;
                assigned = parts;
            }
        }
        if !read.is_empty() {
            say(format!("r {ms} {}", list(read)))?;
        }
        reader.close().await.map_err(e)
    })
}

/// What the harness knows of one member, from its lines.
#[derive(Default)]
struct Member {
    started_ms: Option<u64>,
    assigned: Vec<i32>,
    changed_ms: u64,
    /// Lines it printed that were not its protocol (its errors), for the run's failure.
    other: Vec<String>,
}

/// What the harness knows of a run: its members, and every partition's receipt times.
struct Group {
    members: Vec<Member>,
    receipts: Vec<Vec<u64>>,
    /// Each partition's latest receipt (its members' lines may interleave out of order).
    latest: Vec<u64>,
}

impl Group {
    fn line(&mut self, member: usize, line: &str) {
        let mut it = line.splitn(3, ' ');
        let (kind, ms) = (it.next().unwrap_or(""), it.next().and_then(|m| m.parse::<u64>().ok()));
        let parts: Vec<i32> = it.next().unwrap_or("").split(',').filter_map(|p| p.parse().ok()).collect();
        let m = &mut self.members[member];
        match (kind, ms) {
            ("s", Some(ms)) => m.started_ms = Some(ms),
            ("a", Some(ms)) => (m.assigned, m.changed_ms) = (parts, ms),
            ("r", Some(ms)) => {
                for p in parts {
                    if let (Some(r), Some(l)) = (self.receipts.get_mut(p as usize), self.latest.get_mut(p as usize)) {
                        r.push(ms);
                        *l = (*l).max(ms);
                    }
                }
            }
            _ => m.other.push(line.to_string()),
        }
    }

    fn new(members: usize, partitions: usize) -> Group {
        Group {
            members: (0..members).map(|_| Member::default()).collect(),
            receipts: vec![Vec::new(); partitions],
            latest: vec![0; partitions],
        }
    }

    /// When the group of its first `n` members is stable: each holds some partition, together
    /// they hold each partition once, and every partition was read after the latest change.
    fn stable_at(&self, n: usize) -> Option<u64> {
        let members = &self.members[..n];
        let mut held: Vec<i32> = members.iter().flat_map(|m| m.assigned.iter().copied()).collect();
        held.sort_unstable();
        let all: Vec<i32> = (0..self.latest.len() as i32).collect();
        if held != all || members.iter().any(|m| m.assigned.is_empty()) {
            return None;
        }
        let changed = members.iter().map(|m| m.changed_ms).max()?;
        self.latest.iter().all(|&t| t > changed).then(|| self.latest.iter().copied().max()).flatten()
    }
}

/// The longest gap between consecutive times of `times` (sorted) in `[from, to]`, counting
/// from the last time at or before `from` (or `from`) and up to `to`.
fn longest_gap(times: &[u64], from: u64, to: u64) -> u64 {
    let start = times.iter().rev().find(|&&t| t <= from).copied().unwrap_or(from);
    let mut last = start;
    let mut gap = 0;
    for &t in times.iter().filter(|&&t| t > from && t <= to) {
        gap = gap.max(t - last);
        last = t;
    }
    gap.max(to.saturating_sub(last))
}

/// One run's figures, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cost {
    stopped: u64,
    partition_gap: u64,
    rebalance: u64,
    steady_stopped: u64,
    steady_partition_gap: u64,
}

fn cost(receipts: &[Vec<u64>], steady_from: u64, join: u64, end: u64) -> Cost {
    let mut all: Vec<u64> = receipts.iter().flatten().copied().collect();
    all.sort_unstable();
    let per_partition = |from, to| receipts.iter().map(|r| longest_gap(r, from, to)).max().unwrap_or(0);
    Cost {
        stopped: longest_gap(&all, join, end),
        partition_gap: per_partition(join, end),
        rebalance: end.saturating_sub(join),
        steady_stopped: longest_gap(&all, steady_from, join),
        steady_partition_gap: per_partition(steady_from, join),
    }
}

/// A member's process, its output read into the run's [`Group`] by a thread.
struct Process {
    child: Child,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command, group: &Arc<Mutex<Group>>, index: usize) -> Result<Process, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("member {index}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let group = Arc::clone(group);
    let reader = std::thread::spawn(move || {
        let trace = std::env::var_os("KAFKIT_REBALANCE_TRACE").is_some();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if trace && !line.starts_with("r ") {
                eprintln!("member {index}: {line}");
            }
            group.lock().unwrap_or_else(|e| e.into_inner()).line(index, &line);
        }
    });
    Ok(Process { child, reader: Some(reader) })
}

/// Waits (polling every 10 ms, at most 60 s) until `done` says the group got where it should.
fn wait_for<T>(group: &Mutex<Group>, what: &str, mut done: impl FnMut(&Group) -> Option<T>) -> Result<T, String> {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        {
            let g = group.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = done(&g) {
                return Ok(t);
            }
            if Instant::now() >= give_up {
                let other: Vec<&String> = g.members.iter().flat_map(|m| &m.other).collect();
                let held: Vec<&Vec<i32>> = g.members.iter().map(|m| &m.assigned).collect();
                return Err(format!("{what} within 60 s: assignments {held:?}; members said {other:?}"));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Harness<'a> {
    args: &'a Args,
    java: &'a [String],
    rt: &'a tokio::runtime::Runtime,
}

impl Harness<'_> {
    fn member_command(&self, client: &str, topic: &str, group: &str, assignor: &str) -> Command {
        let mut cmd;
        if client == "java" {
            cmd = Command::new(&self.java[0]);
            cmd.args(&self.java[1..]).args(["group_member", topic]);
        } else {
            cmd = Command::new(std::env::current_exe().unwrap_or_else(|_| "kafkit-peers".into()));
            cmd.args(["member", topic]);
        }
        cmd.args(["--brokers", &self.args.brokers, "--group", group, "--assignor", assignor]);
        cmd
    }

    /// One run of `client`'s group with `assignor` on a new topic `topic`, the 4th member
    /// starting `phase_ms` after the steady window.
    fn once(&self, client: &str, assignor: &str, topic: &str, phase_ms: u64) -> Result<Cost, String> {
        let a = self.args;
        self.rt.block_on(create_topic(&a.brokers, topic, a.partitions))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = self.rt.spawn(write_until(a.brokers.clone(), topic.to_string(), a.rate, Arc::clone(&stop)));
        let result = self.measure(client, assignor, topic, phase_ms);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = self.rt.block_on(writer).map_err(|e| e.to_string()).and_then(|r| r);
        self.rt.block_on(delete_topic(&a.brokers, topic));
        let cost = result?;
        written?;
        Ok(cost)
    }

    fn measure(&self, client: &str, assignor: &str, topic: &str, phase_ms: u64) -> Result<Cost, String> {
        let a = self.args;
        let group = Arc::new(Mutex::new(Group::new(4, a.partitions as usize)));
        let group_id = format!("{topic}-group");
        let mut members = Vec::new();
        for i in 0..3 {
            members.push(spawn(self.member_command(client, topic, &group_id, assignor), &group, i)?);
        }
        let stable = wait_for(&group, "no stable group of 3", |g| g.stable_at(3))?;
        let steady_until = stable + a.steady_ms;
        wait_for(&group, "no steady reading", |_| (now_ms() >= steady_until).then_some(()))?;
        std::thread::sleep(Duration::from_millis(phase_ms));
        members.push(spawn(self.member_command(client, topic, &group_id, assignor), &group, 3)?);
        let join = wait_for(&group, "the 4th member did not start", |g| g.members[3].started_ms)?;
        let end =
            wait_for(&group, "no stable group of 4", |g| g.stable_at(4).filter(|_| g.members[3].changed_ms >= join))?;
        // Stop: closing stdin lets each member commit and leave.
        for m in &mut members {
            drop(m.child.stdin.take());
        }
        for m in &mut members {
            let give_up = Instant::now() + Duration::from_secs(30);
            while m.child.try_wait().map_err(|e| e.to_string())?.is_none() && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(r) = m.reader.take() {
                let _ = m.child.kill();
                let _ = r.join();
            }
        }
        let g = group.lock().unwrap_or_else(|e| e.into_inner());
        let mut receipts = g.receipts.clone();
        for r in &mut receipts {
            r.sort_unstable();
        }
        Ok(cost(&receipts, stable, join, end))
    }
}

/// Writes records of 100 B (keyless, round-robin, linger 5 ms) to `topic` at `rate` until `stop`.
async fn write_until(
    brokers: String,
    topic: String,
    rate: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), String> {
    let e = |e: kafkit::Error| e.to_string();
    let cfg =
        WriterConfig::default().with_topic(topic).with_linger(crate::peers::LINGER).with_balancer(RoundRobin::new());
    let writer = Writer::new(&[brokers.as_str()], cfg).await.map_err(e)?;
    let value = bytes::Bytes::from(vec![b'r'; 100]);
    let pace = Pace::new(Instant::now(), rate);
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(d) = pace.wait(i) {
            tokio::time::sleep(d).await;
        }
        drop(writer.write(Message::new(None, Some(value.clone()))).await.map_err(e)?);
        i += 1;
    }
    writer.close().await.map_err(e)
}

pub fn run(args: Args) -> Result<(), String> {
    let java = if args.clients.iter().any(|c| c == "java") { External::build()?.java } else { Vec::new() };
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let h = Harness { args: &args, java: &java, rt: &rt };
    let stamp = std::process::id();
    let mut rows = Vec::new();
    for client in &args.clients {
        if client != "kafkit" && client != "java" {
            return Err(format!("unknown client {client:?}: kafkit or java"));
        }
        for assignor in &args.assignors {
            let mut runs = Vec::new();
            for rep in 0..args.reps {
                let topic = format!("rebalance-{stamp}-{client}-{assignor}-{rep}");
                let c = h.once(client, assignor, &topic, phase_ms(rep, args.reps))?;
                eprintln!("{client:<7} {assignor:<12} run {}: {c:?}", rep + 1);
                runs.push(c);
            }
            rows.push((client.clone(), assignor.clone(), runs));
        }
    }
    print_table(&args, &rows);
    Ok(())
}

fn print_table(args: &Args, rows: &[(String, String, Vec<Cost>)]) {
    println!(
        "Rebalance cost, a group of 3 growing to 4: medians of {} runs, milliseconds. {} partitions written at {} \
         records/s throughout; each client's defaults (classic group protocol, session 45 s, heartbeat 3 s) but the \
         assignor; the 4th member starts {} ms after the group of 3 is stable plus a phase spread over one heartbeat \
         interval; the steady columns are the same gaps from the group of 3 stable to the 4th member's start.",
        args.reps, args.partitions, args.rate, args.steady_ms
    );
    println!();
    println!("| client | assignor | group stopped | one partition unread | rebalance | steady: group stopped | steady: one partition unread |");
    println!("|---|---|---|---|---|---|---|");
    for (client, assignor, runs) in rows {
        let m = |f: fn(&Cost) -> u64| median(runs.iter().map(|c| f(c) as f64).collect());
        println!(
            "| {client} | {assignor} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            m(|c| c.stopped),
            m(|c| c.partition_gap),
            m(|c| c.rebalance),
            m(|c| c.steady_stopped),
            m(|c| c.steady_partition_gap)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phases_spread_evenly_over_one_heartbeat_interval() {
        assert_eq!((0..5).map(|i| phase_ms(i, 5)).collect::<Vec<_>>(), [300, 900, 1500, 2100, 2700]);
        assert_eq!(phase_ms(0, 1), 1500);
        assert_eq!(phase_ms(0, 0), 1500);
    }

    #[test]
    fn the_longest_gap_counts_from_the_last_receipt_before_the_window_to_its_end() {
        let t = [100, 110, 130, 400, 410];
        assert_eq!(longest_gap(&t, 120, 420), 270); // 130 -> 400
        assert_eq!(longest_gap(&t, 0, 105), 100); // from 0 to 100
        assert_eq!(longest_gap(&t, 405, 900), 490); // 410 -> 900
        assert_eq!(longest_gap(&[], 5, 20), 15);
    }

    #[test]
    fn costs_are_read_from_the_receipts_of_every_partition() {
        // Partition 0 read throughout; partition 1 unread from 1000 to 1800 (it moved).
        let receipts = vec![(0..20).map(|i| 100 * i).collect::<Vec<u64>>(), vec![0, 500, 1000, 1800, 1900]];
        let c = cost(&receipts, 0, 1000, 1900);
        assert_eq!(
            c,
            Cost { stopped: 100, partition_gap: 800, rebalance: 900, steady_stopped: 100, steady_partition_gap: 500 }
        );
    }

    #[test]
    fn a_group_is_stable_once_every_partition_is_held_once_and_read_since_the_last_change() {
        let mut g = Group::new(2, 3);
        g.line(0, "s 10");
        g.line(0, "a 20 0,1");
        g.line(1, "a 25 2");
        assert_eq!(g.members[0].started_ms, Some(10));
        assert_eq!(g.stable_at(2), None, "nothing read yet");
        g.line(0, "r 30 0,1");
        assert_eq!(g.stable_at(2), None, "partition 2 unread");
        g.line(1, "r 31 2");
        assert_eq!(g.stable_at(2), Some(31));
        g.line(1, "a 40 1,2");
        assert_eq!(g.stable_at(2), None, "partition 1 held twice");
        g.line(1, "oops: a broker error");
        assert_eq!(g.members[1].other, ["oops: a broker error"]);
    }
}
