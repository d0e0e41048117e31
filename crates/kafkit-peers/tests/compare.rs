//! The harness end to end, small: on the run's shared Apache Kafka node, it runs kafkit, rdkafka
//! and rskafka on all eight workloads at 0.5% of their size, once, and prints the table. What
//! is checked is that every client produced and consumed every workload and reported real
//! figures; speed itself is for `kafkit-peers compare` at full size, never a test.

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
    let brokers = kafkit_testbed::Cluster::shared().bootstrap();
    let out = Command::new(exe)
        .args(["compare", "--brokers", &brokers, "--scale", "0.005", "--reps", "1", "--kafkit"])
        .arg(&kafkit)
        .output()
        .expect("kafkit-peers runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "compare failed:\n{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| produce") || l.starts_with("| consume")).collect();
    assert_eq!(rows.len(), 8, "eight workloads:\n{stdout}");
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells.len(), 7, "{row}");
        for client in &cells[1..4] {
            // "0.01 s (0.74 µs/rec), 1.19M/s, 11 MiB" (or "2.5k/s"): every figure positive.
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
        for ratio in &cells[4..] {
            let r: f64 = ratio.trim_end_matches(" ✗").parse().unwrap_or(f64::NAN);
            assert!(r.is_finite() && r > 0.0, "ratio {ratio:?} in {row}");
        }
    }
    // Each run's progress line names its client: all three ran every workload.
    for client in ["kafkit", "rdkafka", "rskafka"] {
        assert_eq!(stderr.lines().filter(|l| l.contains(&format!(" {client} "))).count(), 8, "{client}:\n{stderr}");
    }
}
