//! The requests a broker handled during a client's run, counted by the broker itself: its
//! JMX meters `kafka.network:type=RequestMetrics,name=RequestsPerSec` (a node started with
//! `scripts/kafka.sh start DIR --jmx`), read by `scripts/kafka/Requests.java` before and
//! after the run. Every client is counted the same way, whatever it reports of itself.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// What is left out of a client's count:
/// - the APIs the brokers and controllers send each other (KRaft, replication,
///   producer id blocks): a single node still heartbeats to its own controller;
/// - the harness's own topic creation and deletion, around each run;
/// - `FetchConsumer` and `FetchFollower`: the broker marks one of them for every `Fetch` as
///   well, so they would count each fetch twice.
const NOT_THE_CLIENTS: [&str; 17] = [
    "AddRaftVoter",
    "AllocateProducerIds",
    "AlterPartition",
    "BeginQuorumEpoch",
    "BrokerHeartbeat",
    "BrokerRegistration",
    "ControllerRegistration",
    "CreateTopics",
    "DeleteTopics",
    "DescribeQuorum",
    "EndQuorumEpoch",
    "FetchConsumer",
    "FetchFollower",
    "FetchSnapshot",
    "RemoveRaftVoter",
    "UpdateRaftVoter",
    "Vote",
];

/// Requests per API.
pub type Counts = BTreeMap<String, u64>;

/// Reads a broker's request counts over JMX, through one `Requests.java` process kept for
/// all the reads (one JVM start and one JMX connection, not one per read).
pub struct Counter {
    addr: String,
    /// Where `Requests.class` was compiled.
    classes: PathBuf,
    child: Child,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

impl Counter {
    /// Compiles `scripts/kafka/Requests.java` into a directory of its own under `tmp` and
    /// starts it on the broker whose JMX is at `addr` (HOST:PORT).
    pub fn new(addr: &str, tmp: &Path) -> Result<Counter, String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka/Requests.java");
        let classes = tmp.join(format!("kafkit-peers-requests-{}", std::process::id()));
        std::fs::create_dir_all(&classes).map_err(|e| format!("{classes:?}: {e}"))?;
        let out = Command::new("javac")
            .arg("-d")
            .arg(&classes)
            .arg(&src)
            .output()
            .map_err(|e| format!("javac (needed for --broker-jmx): {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&classes);
            return Err(format!("javac {src:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let mut child = Command::new("java")
            .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx64m", "-cp"])
            .arg(&classes)
            .args(["Requests", addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("java Requests: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("java Requests: its stdin and stdout were not piped".to_string());
        };
        let c = Counter { addr: addr.to_string(), classes, child, io: Mutex::new((stdin, BufReader::new(stdout))) };
        // It prints the counts once as it starts: a broker that serves no JMX there fails
        // now, not after the first client's run.
        c.exchange(false)?;
        Ok(c)
    }

    /// The broker's counts since it started, per API.
    pub fn read(&self) -> Result<Counts, String> {
        self.exchange(true)
    }

    /// Asks for the counts (`ask`: a line to its stdin) and reads the block that answers:
    /// lines up to an empty one. One lock holds the question and its answer together.
    fn exchange(&self, ask: bool) -> Result<Counts, String> {
        let mut io = self.io.lock().unwrap_or_else(|p| p.into_inner());
        let (stdin, stdout) = &mut *io;
        if ask {
            stdin.write_all(b"\n").and_then(|()| stdin.flush()).map_err(|e| self.failed(e))?;
        }
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).map_err(|e| self.failed(e))? == 0 {
                return Err(self.failed("it exited (its error is above)"));
            }
            if line.trim().is_empty() {
                return parse(&text);
            }
            text.push_str(&line);
        }
    }

    fn failed(&self, e: impl std::fmt::Display) -> String {
        format!("reading the broker's JMX at {}: {e}", self.addr)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.classes);
    }
}

/// `Requests.java`'s output: `API\tCOUNT` lines.
pub fn parse(text: &str) -> Result<Counts, String> {
    let mut counts = Counts::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (api, n) = line.split_once('\t').ok_or_else(|| format!("not API<TAB>COUNT: {line:?}"))?;
        let n: u64 = n.trim().parse().map_err(|_| format!("not a count: {line:?}"))?;
        counts.insert(api.to_string(), n);
    }
    Ok(counts)
}

/// The client's requests between two reads: per API (those the counts went up for), and
/// their total, without [`NOT_THE_CLIENTS`].
pub fn between(before: &Counts, after: &Counts) -> (Counts, u64) {
    let mut per = Counts::new();
    for (api, &n) in after {
        let d = n.saturating_sub(before.get(api).copied().unwrap_or(0));
        if d > 0 && !NOT_THE_CLIENTS.contains(&api.as_str()) {
            per.insert(api.clone(), d);
        }
    }
    let total = per.values().sum();
    (per, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_requests_are_the_difference_without_the_clusters_or_the_harnesss() {
        let before = parse("Fetch\t10\nFetchConsumer\t10\nBrokerHeartbeat\t7\nMetadata\t2\n").unwrap();
        let after =
            parse("Fetch\t25\nFetchConsumer\t25\nBrokerHeartbeat\t9\nMetadata\t2\nProduce\t40\nCreateTopics\t1\n\n")
                .unwrap();
        let (per, total) = between(&before, &after);
        assert_eq!(per, parse("Fetch\t15\nProduce\t40\n").unwrap());
        assert_eq!(total, 55);
        assert!(parse("Fetch 3").is_err());
        assert!(parse("Fetch\tmany").is_err());
    }
}
