//! The Java client's load tests for the harness (scripts/java-peer/Perf.java, the commands
//! `perf_produce` and `perf_consume`, run as `scripts/java-peer.sh perf` runs them: on the JVM's
//! default flags), on the run's shared Apache Kafka node. What is checked: the Java producer
//! writes exactly the (partition, key, value) records `kafkit-peers client kafkit produce`
//! writes, keyed and keyless, from the default text and from a raw text file, tuned and with
//! `--java-defaults`; the Java consumer reads a topic of N records, reports N, and fails
//! clearly when the topic holds fewer or more; its JSON report has the fields `compare` reads;
//! bad input is one line on stderr and exit code 1. Speed is for `kafkit-peers compare`, never
//! a test.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

mod common;

use common::{create_topic, Record};

/// Records per produce check (as tests/compare.rs's `produced`).
const RECORDS: usize = 600;
/// Value bytes per record in these checks.
const VALUE_SIZE: usize = 100;

/// `scripts/java-peer.sh perf-command`: java, its flags, the classpath, the class (built first
/// when missing).
fn java_perf() -> &'static [String] {
    static CMD: OnceLock<Vec<String>> = OnceLock::new();
    CMD.get_or_init(|| {
        let script = kafkit_testbed::repo_root().join("scripts/java-peer.sh");
        let version = std::env::var("KAFKIT_KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".to_string());
        let out = Command::new(&script)
            .args(["perf-command", &version])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(out.status.success(), "scripts/java-peer.sh perf-command failed ({})", out.status);
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    })
}

/// Runs the Java peer with `args` (a command, its topic and options).
fn java(args: &[&str]) -> Output {
    let cmd = java_perf();
    Command::new(&cmd[0]).args(&cmd[1..]).args(args).stdin(Stdio::null()).output().expect("the Java peer runs")
}

fn show(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The JSON report: the last line of stdout that is an object.
fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line =
        stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON report:\n{}", show(out)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// The fields `kafkit-peers compare` reads, and the rest of Report::print's, sane for a run of
/// `records` records of `bytes` key and value bytes.
fn check_report(r: &Value, workload: &str, records: u64, bytes: u64) {
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("no {k} in {r}"));
    assert_eq!(r["workload"], workload, "{r}");
    assert_eq!(r["records"], records, "{r}");
    assert_eq!(r["bytes"], bytes, "{r}");
    assert!(f("seconds") > 0.0 && f("records_per_sec") > 0.0, "{r}");
    assert!((f("records_per_sec") * f("seconds") - records as f64).abs() < 1.0, "rate x time = records: {r}");
    // The whole JVM process: at least the timed part, and a JVM start costs well over 10 ms.
    let cpu = f("client_cpu_seconds");
    assert!(cpu >= f("timed_cpu_seconds") && cpu > 0.01 && cpu < 600.0, "{r}");
    assert!((f("cpu_us_per_record") - cpu * 1e6 / records as f64).abs() < 1e-3 * f("cpu_us_per_record"), "{r}");
    // A JVM with a Kafka client resides in more than 16 MiB, and (here) less than 4 GiB.
    let rss = f("peak_rss_bytes");
    assert!(rss > 16.0 * 1048576.0 && rss < 4096.0 * 1048576.0, "{r}");
    let lat = &r["latency"];
    let p = |k: &str| lat[k].as_f64().unwrap_or_else(|| panic!("no latency.{k} in {r}"));
    assert!(p("p50_ms") <= p("p99_ms") && p("p99_ms") <= p("p999_ms"), "{r}");
    if workload == "produce" {
        // Every acknowledgement comes after its send.
        assert!(p("p50_ms") > 0.0, "{r}");
    }
    assert!(p("p999_ms") < 300_000.0, "{r}");
    assert_eq!(r["config"]["client"], "java", "{r}");
    assert!(r["config"]["jvm"]["version"].as_str().is_some_and(|v| !v.is_empty()), "{r}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a runtime")
}

/// `kafkit-peers client kafkit produce` of `records` records onto a new topic; the topic.
fn kafkit_produce(rt: &tokio::runtime::Runtime, brokers: &str, records: usize, opts: &[&str]) -> String {
    let topic = create_topic(rt, brokers, "java-peer-kafkit");
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit-peers"))
        .args(["client", "kafkit", "produce", &topic, "--brokers", brokers, "--records", &records.to_string()])
        .args(["--record-size", &VALUE_SIZE.to_string(), "--json"])
        .args(opts)
        .output()
        .expect("kafkit-peers runs");
    assert!(out.status.success(), "kafkit-peers client kafkit produce: {}", show(&out));
    topic
}

/// Checks that `records` are records 0..RECORDS-1 of the payload: record i on partition i % 6,
/// 100 B values starting with i's 12 digits, then text differing from record to record, keys
/// of `key_size` hex digits (or none).
fn check_payload(records: &[Record], key_size: usize) {
    let mut seqs = std::collections::BTreeSet::new();
    for (partition, key, value) in records {
        assert_eq!(value.len(), VALUE_SIZE);
        let seq: u64 = std::str::from_utf8(&value[..12]).ok().and_then(|s| s.parse().ok()).expect("a sequence number");
        assert!(seqs.insert(seq), "record {seq} twice");
        assert_eq!(*partition as u64, seq % 6, "record {seq} on partition {partition}");
        match key {
            Some(k) => assert!(key_size > 0 && k.len() == key_size && k.iter().all(u8::is_ascii_hexdigit), "{k:?}"),
            None => assert_eq!(key_size, 0),
        }
    }
    assert_eq!(seqs, (0..RECORDS as u64).collect(), "records 0 to {}", RECORDS - 1);
    let texts: std::collections::BTreeSet<&[u8]> = records.iter().map(|(_, _, v)| &v[12..]).collect();
    assert!(texts.len() > RECORDS - 10, "{} distinct texts", texts.len());
}

/// The Java producer's records on a new topic, and its report.
fn java_produce(rt: &tokio::runtime::Runtime, brokers: &str, opts: &[&str]) -> (Vec<Record>, Value) {
    let topic = create_topic(rt, brokers, "java-peer-java");
    let records = RECORDS.to_string();
    let size = VALUE_SIZE.to_string();
    let mut args = vec!["perf_produce", &topic, "--brokers", brokers, "--records", &records, "--record-size", &size];
    args.extend_from_slice(opts);
    args.push("--json");
    let out = java(&args);
    assert!(out.status.success(), "Java perf_produce {opts:?}: {}", show(&out));
    let r = report(&out);
    (common::read_back(rt, brokers, &topic, RECORDS, false), r)
}

#[test]
fn the_java_producer_sends_the_records_kafkit_sends() {
    let brokers = kafkit_testbed::Cluster::shared().bootstrap();
    let rt = runtime();
    // A raw text file, as `compare` hands every client (Text::write): this crate's sources,
    // about 80 KB (so that few of the 600 values start at the same offset).
    let text = std::env::temp_dir().join(format!("kafkit-java-peer-text-{}.txt", std::process::id()));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut source = Vec::new();
    for f in
        ["src/payload.rs", "src/peers.rs", "src/compare.rs", "src/main.rs", "tests/compare.rs", "tests/java_peer.rs"]
    {
        source.extend(std::fs::read(dir.join(f)).expect("a source file"));
    }
    std::fs::write(&text, &source).expect("the text file");
    let text_arg = text.to_str().expect("a UTF-8 path").to_string();
    let cases: [(&str, usize, Vec<&str>); 4] = [
        // The default text (the Debian package index when present, else random words).
        ("default text, 16 B keys, lz4", 16, vec!["--compression", "lz4", "--key-size", "16"]),
        ("default text, keyless, none", 0, vec!["--compression", "none", "--key-size", "0"]),
        (
            "raw text file, 16 B keys, lz4",
            16,
            vec!["--compression", "lz4", "--key-size", "16", "--payload-text", &text_arg],
        ),
        (
            "raw text file, 40 B keys, none",
            40,
            vec!["--compression", "none", "--keys", "40", "--payload-text", &text_arg],
        ),
    ];
    for (what, key_size, opts) in &cases {
        let kafkit = common::read_back(&rt, &brokers, &kafkit_produce(&rt, &brokers, RECORDS, opts), RECORDS, false);
        check_payload(&kafkit, *key_size);
        let (got, r) = java_produce(&rt, &brokers, opts);
        assert!(got == kafkit, "{what}: the Java producer sent other records than kafkit");
        check_report(&r, "produce", RECORDS as u64, (RECORDS * (VALUE_SIZE + key_size)) as u64);
        let c = &r["config"];
        // Tuned as the Rust peers (peers.rs FAIR).
        assert_eq!(
            (&c["acks"], &c["enable.idempotence"], &c["linger.ms"]),
            (&"all".into(), &true.into(), &5.into()),
            "{r}"
        );
        assert_eq!((&c["batch.size"], &c["max.request.size"]), (&1048576.into(), &(1048576 + 65536).into()), "{r}");
        let codec = if opts.contains(&"lz4") { "lz4" } else { "none" };
        assert_eq!(c["compression.type"], codec, "{r}");
        println!("{what}: same records as kafkit; Java report {r}");
        if *key_size == 16 && !opts.contains(&text_arg.as_str()) {
            // Java's defaults (16 KiB batches, 32 MiB of buffer) but acks and compression: the
            // same records still.
            let mut defaults = opts.clone();
            defaults.push("--java-defaults");
            let (got, r) = java_produce(&rt, &brokers, &defaults);
            assert!(got == kafkit, "{what}, --java-defaults: the Java producer sent other records than kafkit");
            check_report(&r, "produce", RECORDS as u64, (RECORDS * (VALUE_SIZE + key_size)) as u64);
            let c = &r["config"];
            assert_eq!((&c["acks"], &c["compression.type"]), (&"all".into(), &codec.into()), "{r}");
            assert_eq!((&c["batch.size"], &c["buffer.memory"]), (&16384.into(), &33554432.into()), "{r}");
            assert_eq!((&c["max.request.size"], &c["enable.idempotence"]), (&1048576.into(), &true.into()), "{r}");
            println!("{what}, --java-defaults: same records as kafkit; config {c}");
        }
    }
    let _ = std::fs::remove_file(&text);
}

#[test]
fn the_java_consumer_reads_every_record_once_and_reports_it() {
    const N: usize = 3000;
    let brokers = kafkit_testbed::Cluster::shared().bootstrap();
    let rt = runtime();
    let topic = kafkit_produce(&rt, &brokers, N, &["--compression", "lz4", "--key-size", "16"]);
    let consume = |records: usize, extra: &[&str]| {
        let n = records.to_string();
        let mut args = vec!["perf_consume", topic.as_str(), "--brokers", &brokers, "--records", &n, "--json"];
        args.extend_from_slice(extra);
        java(&args)
    };
    let out = consume(N, &[]);
    assert!(out.status.success(), "Java perf_consume: {}", show(&out));
    let r = report(&out);
    check_report(&r, "consume", N as u64, (N * (VALUE_SIZE + 16)) as u64);
    assert_eq!(r["config"]["settings"], "Java defaults but enable.auto.commit=false, no group", "{r}");
    assert_eq!(
        (&r["config"]["fetch.max.wait.ms"], &r["config"]["max.poll.records"]),
        (&500.into(), &500.into()),
        "{r}"
    );
    println!("Java consumer: {r}");
    // Fewer records than asked for: a clear error once the time is up.
    let out = consume(N + 1, &["--timeout-ms", "3000"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("error: only {N} of {} records read within 3000 ms", N + 1)), "{err}");
    // More records than asked for: a record beyond them is an error too.
    let out = consume(N - 1, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("is beyond the {} records asked for", N - 1)), "{err}");
}

#[test]
fn bad_input_is_one_clear_line_and_exit_code_1() {
    // Nothing listens on port 9: every one fails before it connects.
    let b = ["--brokers", "127.0.0.1:9"];
    let cases: [(&[&str], &str); 8] = [
        (&["perf_produce", "t", "--records", "many"], "--records many: not a whole number"),
        (&["perf_produce", "t", "--record-size", "5"], "values of 5 B are too small"),
        (&["perf_produce", "t", "--compression", "brotli"], "--compression brotli: none, gzip, snappy, lz4 or zstd"),
        (&["perf_produce", "t", "--payload-text", "/nonexistent/kafkit-text"], "payload text /nonexistent/kafkit-text"),
        (&["perf_produce", "--records", "10"], "no topic"),
        (&["perf_consume", "t", "--bogus", "1"], "unknown option --bogus"),
        (&["perf_consume", "t", "--records", "-3"], "--records -3: from 0 to"),
        (&["perf_consume", "t", "--partitions"], "--partitions needs a value"),
    ];
    for (args, want) in cases {
        let mut all = vec![args[0]];
        all.extend_from_slice(&b);
        all.extend_from_slice(&args[1..]);
        let out = java(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        let line = err.lines().find(|l| l.starts_with("java-peer ")).unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(line.contains(&format!("{}: error: ", args[0])) && line.contains(want), "{args:?}: {line}");
        assert!(!err.contains("\tat ") && !err.contains("Exception in thread"), "{args:?}: a stack trace:\n{err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", show(&out));
    }
}
