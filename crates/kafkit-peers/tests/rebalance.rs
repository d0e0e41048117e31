//! The rebalance measurement end to end, small: on the run's shared Apache Kafka node, a group
//! of 3 kafkit members and one of 3 Java members each grow to 4, eager and cooperative, once.
//! What is checked is that every group got stable with 4 members (the run would fail
//! otherwise) and that the figures are read from real receipts; how long rebalances take is
//! for `kafkit-peers rebalance` at full length, never a test.

use std::process::Command;

#[test]
fn a_group_of_3_grows_to_4_for_each_client_and_assignor() {
    let brokers = kafkit_testbed::Cluster::shared().bootstrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit-peers"))
        .args(["rebalance", "--brokers", &brokers, "--reps", "1", "--steady-ms", "500"])
        .output()
        .expect("kafkit-peers runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rebalance failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| kafkit |") || l.starts_with("| java |"))
        .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect())
        .collect();
    let names: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        names,
        [("kafkit", "eager"), ("kafkit", "cooperative"), ("java", "eager"), ("java", "cooperative")],
        "{stdout}"
    );
    for row in &rows {
        let ms: Vec<f64> = row[2..].iter().map(|c| c.parse().unwrap_or(f64::NAN)).collect();
        assert_eq!(ms.len(), 5, "{row:?}");
        let (stopped, partition_gap, rebalance, steady_stopped, steady_gap) = (ms[0], ms[1], ms[2], ms[3], ms[4]);
        assert!(ms.iter().all(|m| m.is_finite() && *m >= 0.0), "{row:?}");
        // A time in which no partition was read is one in which each went unread.
        assert!(partition_gap >= stopped && steady_gap >= steady_stopped, "{row:?}");
        // The group of 4 is stable only once every partition was read after the last change,
        // which comes after the 4th member started.
        assert!(rebalance > 0.0, "{row:?}");
    }
}
