//! The harness end to end, small: on the run's shared Apache Kafka node (its CPU and, over JMX,
//! its request counts measured), it runs kafkit, rdkafka,
//! rdkafka without idempotence, rskafka, the Java client (tuned and with its defaults), franz-go
//! and kafka-go on all eight
//! workloads at 0.5% of their size, once at full speed and once at half that rate, and prints
//! both tables. What is checked is that every client produced and consumed every workload and
//! reported real figures (latency at half load included), and that every producer sends the same records; speed itself is for
//! `kafkit-peers compare` at full size, never a test.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn a_small_comparison_runs_every_client_on_every_workload() {
    let exe = env!("CARGO_BIN_EXE_kafkit-peers");
    // `cargo test --workspace` builds the kafkit binary beside this one (kafkit-cli's tests
    // need it).
    let kafkit = Path::new(exe).with_file_name("kafkit");
    assert!(kafkit.exists(), "{kafkit:?} is built by cargo test --workspace");
    // On the run's shared Apache Kafka node (the full comparison starts brokers of its own).
    let shared = kafkit_testbed::Cluster::shared();
    let brokers = shared.bootstrap();
    let pid = shared.pid(1).expect("the shared node's pid").to_string();
    // scripts/test.sh starts the shared node with --jmx.
    let jmx = shared.jmx(1).expect("the shared node serves JMX (scripts/kafka.sh start --jmx)");
    let out = Command::new(exe)
        .args(["compare", "--brokers", &brokers, "--broker-pid", &pid, "--broker-jmx", &jmx])
        // No warm-up: its extra run of every client on every workload would double the
        // test for nothing it checks.
        .args(["--scale", "0.005", "--reps", "1", "--no-warmup", "--kafkit"])
        .arg(&kafkit)
        .output()
        .expect("kafkit-peers runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "compare failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    // The header names the payload of both value sizes, with 16 B keys, and its lz4 ratio:
    // real text gains about 2x, where one repeated byte gained ~100x.
    for size in ["100 B values", "1024 B values"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("Payload: ") && l.contains(size))
            .unwrap_or_else(|| panic!("no payload line for {size}:\n{stdout}"));
        assert!(line.contains("16 B keys"), "{line}");
        let ratio: f64 = line
            .split("lz4 gains ")
            .nth(1)
            .and_then(|r| r.split('x').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no lz4 ratio in {line}"));
        assert!((1.2..6.0).contains(&ratio), "lz4 ratio {ratio} in {line}");
    }
    // The peak table, then the latency table.
    let (peak, latency) =
        stdout.split_once("Latency at half load").unwrap_or_else(|| panic!("no latency table:\n{stdout}"));
    // The workload, eight clients, four ratios.
    for (row, cells) in table(peak, 13) {
        for client in &cells[1..9] {
            // "0.01 s (0.74 µs/rec), 1.19M/s, 11 MiB; broker 0.52 µs/rec (12% JIT), 135 req/s"
            // (or "2.5k/s"): every client figure positive; the broker's measured (at 0.5% size
            // a run may cost it less than one clock tick, and then no JIT share is given);
            // every client sent requests.
            let (client, broker) = client.split_once("; broker ").unwrap_or((client, ""));
            let (broker, requests) = broker.split_once(", ").unwrap_or((broker, ""));
            let (cpu, jit) = broker.split_once(" µs/rec").unwrap_or(("", ""));
            let cpu: f64 = cpu.parse().unwrap_or(f64::NAN);
            assert!(cpu >= 0.0, "no broker CPU in {row}");
            let jit: Option<f64> =
                jit.strip_prefix(" (").and_then(|j| j.strip_suffix("% JIT)")).map(|j| j.parse().unwrap_or(f64::NAN));
            assert!(
                if cpu > 0.0 { jit.is_some_and(|j| j >= 0.0) } else { jit.is_none() },
                "the JIT's share of the broker's CPU in {row}"
            );
            let requests: f64 = requests.strip_suffix(" req/s").and_then(|r| r.parse().ok()).unwrap_or(f64::NAN);
            assert!(requests > 0.0, "no requests counted in {row}");
            let rate = client.split(", ").nth(1).unwrap_or("");
            let rate: f64 = match (rate.strip_suffix("M/s"), rate.strip_suffix("k/s")) {
                (Some(m), _) => m.parse::<f64>().map_or(0.0, |m| m * 1e6),
                (_, Some(k)) => k.parse::<f64>().map_or(0.0, |k| k * 1e3),
                _ => 0.0,
            };
            let rss: f64 = client
                .rsplit(", ")
                .next()
                .and_then(|r| r.strip_suffix(" MiB"))
                .and_then(|r| r.parse().ok())
                .unwrap_or(0.0);
            assert!(rate > 0.0 && rss > 0.0, "a client reported nothing in {row}");
        }
        assert_ne!(cells[10], "n/a", "the broker's CPU is counted: {row}");
        for ratio in [cells[9], cells[11], cells[12]] {
            let r: f64 = ratio.trim_end_matches(" ✗").parse().unwrap_or(f64::NAN);
            assert!(r.is_finite() && r > 0.0, "ratio {ratio:?} in {row}");
        }
    }
    // Every client's p50 and p99 at half its peak rate, in every cell: "1.20 / 4.51 ms at
    // 2.5k/s". With --broker-jmx, consume cells are measured too. Then kafkit's at the rate of
    // the peer with the lowest p99, which is that peer's rate.
    // The workload, eight clients, the ratio, kafkit at the peer's rate, its ratio.
    let latency_cell = |row: &str, cell: &str| -> (f64, f64, String) {
        let (ms, rate) = cell.split_once(" ms at ").unwrap_or_else(|| panic!("no latency in {row}"));
        let (p50, p99) = ms.split_once(" / ").unwrap_or(("", ""));
        let (p50, p99): (f64, f64) = (p50.parse().unwrap_or(f64::NAN), p99.parse().unwrap_or(f64::NAN));
        assert!(p50 >= 0.0 && p99 > 0.0 && p99 >= p50, "p50 {p50}, p99 {p99} in {row}");
        assert!(rate.ends_with("/s"), "{row}");
        (p50, p99, rate.to_string())
    };
    for (row, cells) in table(latency, 12) {
        let peers: Vec<(f64, f64, String)> = cells[2..9].iter().map(|c| latency_cell(row, c)).collect();
        latency_cell(row, cells[1]);
        for ratio in [cells[9], cells[11]] {
            let r: f64 = ratio.trim_end_matches(" ✗").parse().unwrap_or(f64::NAN);
            assert!(r.is_finite() && r > 0.0, "ratio {ratio:?} in {row}");
        }
        let (_, _, at_rate) = latency_cell(row, cells[10]);
        // As printed, to two decimals, several peers may share the lowest p99.
        let lowest = peers.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        assert!(
            peers.iter().any(|p| p.1 == lowest && p.2 == at_rate),
            "kafkit ran at the rate of the peer with the lowest p99: {row}"
        );
    }
    // Each run's progress line names its client: every client ran every workload once, and
    // nothing else ran (--no-warmup).
    let runs = |what: &str| stderr.lines().filter(|l| l.contains(what)).count();
    for client in ["kafkit", "rdkafka", "rdkafka-plain", "rskafka", "java", "java-defaults", "franz-go", "kafka-go"] {
        assert_eq!(runs(&format!(" rep 1 {client} ")), 8, "{client}:\n{stderr}");
        // kafkit's second paced run of each workload is at the lowest peer's rate.
        let paced = if client == "kafkit" { 16 } else { 8 };
        assert_eq!(runs(&format!(" paced 1 {client} ")), paced, "{client}:\n{stderr}");
    }
    assert_eq!(runs(" warm-up ") + runs(" settling "), 0, "{stderr}");
}

/// A table's eight rows (one per workload) in `text`, each with its cells, `columns` of them.
fn table(text: &str, columns: usize) -> Vec<(&str, Vec<&str>)> {
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| produce") || l.starts_with("| consume")).collect();
    assert_eq!(rows.len(), 8, "eight workloads:\n{text}");
    rows.into_iter()
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
            assert_eq!(cells.len(), columns, "{row}");
            (row, cells)
        })
        .collect()
}

/// The records `kafkit-peers client <client> produce` put on a new topic of 6 partitions,
/// read back with kafkit: (partition, key, value), sorted.
fn produced(client: &str, brokers: &str, key_size: usize) -> Vec<common::Record> {
    const RECORDS: usize = 600;
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let topic = common::create_topic(&rt, brokers, &format!("peers-payload-{client}"));
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit-peers"))
        .args(["client", client, "produce", &topic, "--brokers", brokers, "--records", &RECORDS.to_string()])
        .args(["--record-size", "100", "--compression", "lz4", "--key-size", &key_size.to_string(), "--json"])
        .output()
        .expect("kafkit-peers runs");
    assert!(
        out.status.success(),
        "{client}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    common::read_back(&rt, brokers, &topic, RECORDS, false)
}

#[test]
fn every_producer_sends_the_same_records_to_the_same_partitions() {
    let brokers = kafkit_testbed::Cluster::shared().bootstrap();
    for key_size in [16, 0] {
        let kafkit = produced("kafkit", &brokers, key_size);
        let mut seqs = std::collections::BTreeSet::new();
        for (partition, key, value) in &kafkit {
            assert_eq!(value.len(), 100);
            let seq: u64 =
                std::str::from_utf8(&value[..12]).ok().and_then(|s| s.parse().ok()).expect("a sequence number");
            assert!(seqs.insert(seq), "record {seq} twice");
            assert_eq!(*partition as u64, seq % 6, "record {seq} on partition {partition}");
            match key {
                Some(k) => assert!(key_size == 16 && k.len() == 16 && k.iter().all(u8::is_ascii_hexdigit), "{k:?}"),
                None => assert_eq!(key_size, 0),
            }
        }
        assert_eq!(seqs, (0..600).collect(), "records 0 to 599");
        // Real text after the number, different from record to record.
        let texts: std::collections::BTreeSet<&[u8]> = kafkit.iter().map(|(_, _, v)| &v[12..]).collect();
        assert!(texts.len() > 590, "{} distinct texts", texts.len());
        for peer in ["rdkafka", "rdkafka-plain", "rskafka"] {
            assert!(
                produced(peer, &brokers, key_size) == kafkit,
                "{peer} sent other records than kafkit (keys of {key_size} B)"
            );
        }
    }
}
