//! The Go peers of the harness (scripts/go-peer: franz-go and segmentio/kafka-go, built by
//! `scripts/go-peer.sh build`) on the run's shared Apache Kafka node: each Go producer sends
//! exactly the records `kafkit-peers client kafkit produce` sends (the same partition, key and
//! value bytes for every record), each Go consumer reads a topic of N records and reports N,
//! and a consumer that meets a record twice fails. Go is needed: without it these tests fail,
//! saying so. Speed is for `kafkit-peers compare`, never a test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const GO_CLIENTS: [&str; 2] = ["franz-go", "kafka-go"];
/// Records per produced topic (100 on each of the 6 partitions).
const RECORDS: usize = 600;

/// The Go peer's binary, built (once per test run) when missing.
fn go_peer() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/go-peer.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("build")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(
            out.status.success(),
            "scripts/go-peer.sh build failed (Go 1.26 or newer is needed on PATH):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(bin.is_file(), "scripts/go-peer.sh build printed {bin:?}, which is no file");
        bin
    })
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The JSON report, the last line of stdout starting with `{`.
fn report(what: &str, out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{what} failed: {}", text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{what}: no JSON report: {}", text(out)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"))
}

/// Checks the fields `kafkit-peers compare` reads (compare.rs's parse_report), and more.
fn check_report(what: &str, r: &serde_json::Value, workload: &str, records: usize) {
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{what}: no {k} in {r}"));
    assert_eq!(r["workload"], workload, "{what}: {r}");
    assert_eq!(f("records"), records as f64, "{what}: {r}");
    assert!(f("client_cpu_seconds") > 0.0, "{what}: {r}");
    assert!(f("records_per_sec") > 0.0, "{what}: {r}");
    // At least 4 MiB: a Go process with its runtime, and the producers' 4 MiB of text.
    assert!(f("peak_rss_bytes") > 4e6, "{what}: {r}");
    let p99 = r["latency"]["p99_ms"].as_f64().unwrap_or_else(|| panic!("{what}: no latency.p99_ms in {r}"));
    assert!(p99.is_finite() && p99 >= 0.0, "{what}: {r}");
    let p50 = r["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN);
    assert!(p50 <= p99, "{what}: {r}");
    let config = r["config"].as_str().unwrap_or_else(|| panic!("{what}: no config in {r}"));
    assert!(config.starts_with(&r["client"].as_str().unwrap_or("?").to_string()), "{what}: {r}");
}

struct Broker {
    addr: String,
    rt: tokio::runtime::Runtime,
}

fn broker() -> Broker {
    Broker {
        addr: kafkit_testbed::Cluster::shared().bootstrap(),
        rt: tokio::runtime::Runtime::new().expect("a runtime"),
    }
}

impl Broker {
    /// A new topic of 6 partitions.
    fn topic(&self, prefix: &str) -> String {
        common::create_topic(&self.rt, &self.addr, prefix)
    }

    /// All `records` records of `topic`, and no more, read back with kafkit: (partition,
    /// key, value), sorted.
    fn read(&self, topic: &str, records: usize) -> Vec<common::Record> {
        common::read_back(&self.rt, &self.addr, topic, records, true)
    }
}

/// `client produce TOPIC` with the Rust peers' flags: kafkit through `kafkit-peers client`,
/// the Go clients through the Go peer.
fn produce(client: &str, b: &Broker, topic: &str, records: usize, extra: &[&str]) -> Output {
    let mut cmd = if client == "kafkit" {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kafkit-peers"));
        c.arg("client");
        c
    } else {
        Command::new(go_peer())
    };
    cmd.args([client, "produce", topic, "--brokers", &b.addr, "--records", &records.to_string(), "--json"]);
    cmd.args(extra).output().unwrap_or_else(|e| panic!("{client}: {e}"))
}

/// A text file for the values, raw (as `compare` writes its text): numbered lines of words.
fn raw_text() -> PathBuf {
    let path = std::env::temp_dir().join(format!("kafkit-go-peers-text-{}.txt", std::process::id()));
    let mut s = String::new();
    for i in 0..4000u32 {
        s.push_str(&format!(
            "{i:05} {} packets crossed the broker on partition {}\n",
            i.wrapping_mul(2654435761),
            i % 7
        ));
    }
    std::fs::write(&path, s).expect("write the text");
    path
}

#[test]
fn go_producers_send_the_same_records_to_the_same_partitions_as_kafkit() {
    let b = broker();
    let raw = raw_text();
    let raw_arg = raw.to_str().expect("a UTF-8 temp path").to_string();
    // 16 B keys, lz4, the default text (the Debian package index, an lz4 frame, when present;
    // else the fixed random words); then keyless, uncompressed, from a raw text file.
    let cases: [(&str, Vec<&str>); 2] = [
        ("16 B keys, lz4, default text", vec!["--record-size", "100", "--key-size", "16", "--compression", "lz4"]),
        (
            "keyless, no compression, raw text file",
            vec!["--record-size", "300", "--key-size", "0", "--compression", "none", "--payload-text", &raw_arg],
        ),
    ];
    for (case, flags) in &cases {
        let topic = b.topic("go-peers-kafkit");
        let out = produce("kafkit", &b, &topic, RECORDS, flags);
        assert!(out.status.success(), "kafkit ({case}): {}", text(&out));
        let kafkit = b.read(&topic, RECORDS);
        // What kafkit sent is the harness's payload: records 0..599, record i on partition i % 6.
        let seqs: std::collections::BTreeSet<u64> = kafkit
            .iter()
            .map(|(p, _, v)| {
                let seq: u64 =
                    std::str::from_utf8(&v[..12]).ok().and_then(|s| s.parse().ok()).expect("a sequence number");
                assert_eq!(*p as u64, seq % 6, "record {seq} on partition {p}");
                seq
            })
            .collect();
        assert_eq!(seqs, (0..RECORDS as u64).collect(), "{case}: records 0 to 599, once each");
        for client in GO_CLIENTS {
            let what = format!("{client} ({case})");
            let topic = b.topic(&format!("go-peers-{client}"));
            let out = produce(client, &b, &topic, RECORDS, flags);
            check_report(&what, &report(&what, &out), "produce", RECORDS);
            let got = b.read(&topic, RECORDS);
            if got != kafkit {
                let diff = got.iter().zip(&kafkit).position(|(g, k)| g != k);
                panic!("{what} sent other records than kafkit: first difference at sorted index {diff:?}");
            }
        }
    }
    let _ = std::fs::remove_file(&raw);
}

#[test]
fn go_consumers_read_every_record_once() {
    const N: usize = 3000;
    let b = broker();
    let topic = b.topic("go-peers-consume");
    // Filled by kafkit's producer, 1024 B values with 16 B keys, lz4 (what compare's consume
    // cells read).
    let fill = produce("kafkit", &b, &topic, N, &["--record-size", "1024", "--compression", "lz4"]);
    assert!(fill.status.success(), "fill: {}", text(&fill));
    for client in GO_CLIENTS {
        let out = Command::new(go_peer())
            .args([client, "consume", &topic, "--brokers", &b.addr, "--records", &N.to_string(), "--json"])
            .output()
            .unwrap_or_else(|e| panic!("{client}: {e}"));
        let r = report(&format!("{client} consume"), &out);
        check_report(&format!("{client} consume"), &r, "consume", N);
        assert_eq!(r["bytes"].as_f64(), Some((N * (1024 + 16)) as f64), "{client}: {r}");
    }
}

#[test]
fn go_consumers_fail_on_a_record_read_twice() {
    let b = broker();
    let topic = b.topic("go-peers-twice");
    // Records 0..599 twice: 1200 records, each sequence number twice.
    for _ in 0..2 {
        let fill = produce("kafkit", &b, &topic, RECORDS, &["--record-size", "100"]);
        assert!(fill.status.success(), "fill: {}", text(&fill));
    }
    for client in GO_CLIENTS {
        let out = Command::new(go_peer())
            .args([client, "consume", &topic, "--brokers", &b.addr, "--records", &(2 * RECORDS).to_string(), "--json"])
            .output()
            .unwrap_or_else(|e| panic!("{client}: {e}"));
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{client} must fail: {all}");
        assert!(all.contains("go-peer: error:") && all.contains("read twice"), "{client}: {all}");
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let missing = std::env::temp_dir().join("kafkit-go-peers-no-such-file");
    let missing = missing.to_str().expect("a UTF-8 temp path");
    // No broker is contacted: every one fails before (port 9 has no listener).
    let cases: [(&[&str], &str); 7] = [
        (&[], "missing arguments"),
        (&["sarama", "produce", "t"], "unknown client"),
        (&["franz-go", "fetch", "t"], "unknown command"),
        (&["kafka-go", "produce", "t", "--record-size", "11"], "too small"),
        (&["franz-go", "produce", "t", "--compression", "brotli"], "unknown compression"),
        (&["kafka-go", "produce", "t", "--payload-text", missing], "payload text"),
        (&["franz-go", "consume", "t", "--records", "nine"], "invalid value"),
    ];
    for (args, message) in cases {
        let out = Command::new(go_peer()).args(args).args(["--brokers", "127.0.0.1:9"]).output().expect("go-peer runs");
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        assert!(all.contains("go-peer: error:") && all.contains(message), "{args:?}: {all}");
        assert!(!all.contains("panic") && !all.contains("goroutine "), "{args:?}: {all}");
    }
}
