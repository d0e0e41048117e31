//! The `kafkit` command against a real broker (Apache Kafka).

#[path = "../../kafkit/tests/common/mod.rs"]
mod common;
mod run;

use common::unique_topic;
use run::{kafkit, ok, one_line_error};
use std::time::{Duration, Instant};

#[test]
fn topics_create_list_describe_delete() {
    let b = common::kafka();
    let t = unique_topic("cli-topics");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "3", "--config", "retention.ms=60000"], b""));
    assert!(ok(&kafkit(&b.addr(), &["topics", "list"], b"")).lines().any(|l| l == t));
    let d = ok(&kafkit(&b.addr(), &["topics", "describe", &t], b""));
    assert!(d.contains(&format!("topic {t}: 3 partitions")), "{d}");
    assert_eq!(d.lines().filter(|l| l.trim_start().starts_with("partition ")).count(), 3, "{d}");
    assert!(d.contains("retention.ms=60000"), "{d}");
    let err = one_line_error(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "1"], b""));
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    ok(&kafkit(&b.addr(), &["topics", "delete", &t], b""));
    assert!(!ok(&kafkit(&b.addr(), &["topics", "list"], b"")).lines().any(|l| l == t));
}

#[test]
fn produce_then_consume_as_json_with_keys_headers_and_a_codec() {
    let b = common::kafka();
    let t = unique_topic("cli-rw");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "2"], b""));
    let input = b"k1=alpha|k2=beta|gamma|k1=delta";
    ok(&kafkit(&b.addr(), &["produce", &t, "-D", "|", "-K", "=", "-H", "src=test", "-H", "n=1", "-z", "lz4"], input));
    let out = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "-f", "json"], b""));
    let mut got: Vec<(Option<String>, String)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["topic"], t.as_str());
            assert_eq!(v["headers"]["src"], "test");
            assert_eq!(v["headers"]["n"], "1");
            assert!(v["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
            (v["key"].as_str().map(String::from), v["value"].as_str().unwrap().to_string())
        })
        .collect();
    got.sort();
    let want = vec![
        (None, "gamma".to_string()),
        (Some("k1".to_string()), "alpha".to_string()),
        (Some("k1".to_string()), "delta".to_string()),
        (Some("k2".to_string()), "beta".to_string()),
    ];
    assert_eq!(got, want);
    // -c stops early; -p and -o pick a partition and an offset.
    assert_eq!(ok(&kafkit(&b.addr(), &["consume", &t, "-e", "-c", "2"], b"")).lines().count(), 2);
    let p0 = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "-p", "0"], b"")).lines().count();
    let p1 = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "-p", "1", "-o", "1"], b"")).lines().count();
    let p1_all = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "-p", "1"], b"")).lines().count();
    assert_eq!(p0 + p1_all, 4);
    assert_eq!(p1, p1_all.saturating_sub(1));
}

#[test]
fn since_starts_every_partition_at_the_first_record_at_or_after_a_time() {
    let b = common::kafka();
    let t = unique_topic("cli-since");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "2"], b""));
    for p in ["0", "1"] {
        ok(&kafkit(&b.addr(), &["produce", &t, "-p", p], format!("old-{p}\n").as_bytes()));
    }
    std::thread::sleep(Duration::from_millis(50));
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    std::thread::sleep(Duration::from_millis(50));
    for p in ["0", "1"] {
        ok(&kafkit(&b.addr(), &["produce", &t, "-p", p], format!("new-{p}\n").as_bytes()));
    }
    let out = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "--since", &since.to_string()], b""));
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["new-0", "new-1"]);
    // Without --since both partitions are read from the start.
    assert_eq!(ok(&kafkit(&b.addr(), &["consume", &t, "-e"], b"")).lines().count(), 4);
}

#[test]
fn bytes_that_are_not_utf8_come_out_as_base64_and_say_so() {
    let b = common::kafka();
    let t = unique_topic("cli-bin");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "1"], b""));
    ok(&kafkit(&b.addr(), &["produce", &t], &[0xff, 0xfe, b'a']));
    let out = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "-f", "json"], b""));
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["value_encoding"], "base64");
    assert_eq!(v["value"], "//5h");
    assert!(v["key"].is_null());
}

#[test]
fn bad_input_is_one_line_and_a_nonzero_exit_never_a_hang() {
    let b = common::kafka();
    let err = one_line_error(&kafkit(&b.addr(), &["consume", &unique_topic("missing"), "-e"], b""));
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
    let t = unique_topic("cli-bad");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "1"], b""));
    let err = one_line_error(&kafkit(&b.addr(), &["produce", &t, "-p", "7"], b"x\n"));
    assert!(err.contains("partition 7"), "{err}");
    // A broker that is not there: an error within seconds.
    let started = Instant::now();
    let dead = format!("127.0.0.1:{}", common::free_port());
    let err = one_line_error(&kafkit(&dead, &["topics", "list"], b""));
    assert!(err.contains("connecting to"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // A malformed command line: clap's usage error, exit 2.
    let out = kafkit(&b.addr(), &["consume"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = kafkit(&b.addr(), &["topics", "create", "x", "--partitions", "many"], b"");
    assert_eq!(out.status.code(), Some(2));
}

/// Writes `n` records to partition `p`, one batch each.
fn write_one_per_batch(addr: &str, topic: &str, p: i32, from: usize, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let config = kafkit::WriterConfig::default()
            .with_topic(topic)
            .with_batch_size(1)
            .with_balancer(move |_: &kafkit::Message, _: &[i32]| p);
        let w = kafkit::Writer::new(&[addr], config).await.unwrap();
        for i in from..from + n {
            w.write_messages(vec![kafkit::Message::new(
                None::<bytes::Bytes>,
                Some(bytes::Bytes::from(format!("v{i}"))),
            )])
            .await
            .unwrap();
        }
        w.close().await.unwrap();
    });
}

fn total_lag(out: &str) -> i64 {
    out.lines().find_map(|l| l.strip_prefix("total lag: ")).expect("a total").parse().unwrap()
}

#[test]
fn a_group_consumes_commits_what_it_printed_and_its_offsets_can_be_reset() {
    let b = common::kafka();
    let t = unique_topic("cli-group");
    let g = unique_topic("cli-g");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "2"], b""));
    write_one_per_batch(&b.addr(), &t, 0, 0, 12);
    write_one_per_batch(&b.addr(), &t, 1, 12, 8);
    let consume = |extra: &[&str]| {
        let mut args = vec!["consume", t.as_str(), "-g", g.as_str(), "--session-timeout", "2s"];
        args.extend_from_slice(extra);
        ok(&kafkit(&b.addr(), &args, b""))
    };
    // Reads everything, exits at the end, and commits what it printed.
    let first = consume(&["-e"]);
    let mut values: Vec<&str> = first.lines().collect();
    values.sort_unstable();
    let mut want: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    want.sort_unstable();
    assert_eq!(values, want);
    let lag = ok(&kafkit(&b.addr(), &["lag", &g], b""));
    assert_eq!(total_lag(&lag), 0, "{lag}");
    assert!(lag.contains(&format!("{t}\t0\t12\t12\t0")), "{lag}");
    assert!(ok(&kafkit(&b.addr(), &["groups", "list"], b"")).lines().any(|l| l.starts_with(&format!("{g}\t"))));

    // Five more: the lag shows them, and the next run prints only them.
    write_one_per_batch(&b.addr(), &t, 1, 20, 5);
    assert_eq!(total_lag(&ok(&kafkit(&b.addr(), &["lag", &g], b""))), 5);
    let d = ok(&kafkit(&b.addr(), &["groups", "describe", &g], b""));
    assert!(d.starts_with(&format!("group {g} state ")), "{d}");
    assert_eq!(total_lag(&d), 5, "{d}");
    let second = consume(&["-c", "5"]);
    assert_eq!(second.lines().count(), 5);
    assert!(second.lines().all(|v| v[1..].parse::<usize>().unwrap() >= 20), "{second}");

    // Reset to the first offsets: a dry run changes nothing; --execute does.
    let dry = ok(&kafkit(&b.addr(), &["groups", "reset-offsets", &g, "--topic", &t, "--to", "first"], b""));
    assert!(dry.contains("dry run"), "{dry}");
    assert!(dry.contains(&format!("{t}\t1\t13\t0")), "{dry}");
    assert_eq!(total_lag(&ok(&kafkit(&b.addr(), &["lag", &g], b""))), 0);
    ok(&kafkit(&b.addr(), &["groups", "reset-offsets", &g, "--topic", &t, "--to", "first", "--execute"], b""));
    assert_eq!(total_lag(&ok(&kafkit(&b.addr(), &["lag", &g], b""))), 25);
    ok(&kafkit(&b.addr(), &["groups", "reset-offsets", &g, "--topic", &t, "--to", "10", "--execute"], b""));
    assert_eq!(total_lag(&ok(&kafkit(&b.addr(), &["lag", &g], b""))), 2 + 3);
    let err =
        one_line_error(&kafkit(&b.addr(), &["groups", "reset-offsets", &g, "--topic", &t, "--to", "yesterday"], b""));
    assert!(err.contains("--to"), "{err}");

    ok(&kafkit(&b.addr(), &["groups", "delete", &g], b""));
    assert!(!ok(&kafkit(&b.addr(), &["groups", "list"], b"")).lines().any(|l| l.starts_with(&format!("{g}\t"))));
}

#[test]
fn perf_produce_and_consume_report_throughput_latency_cpu_and_memory() {
    let b = common::kafka();
    let t = unique_topic("cli-perf");
    let out = ok(&kafkit(
        &b.addr(),
        &[
            "perf",
            "produce",
            &t,
            "--records",
            "5000",
            "--record-size",
            "64",
            "--key-size",
            "8",
            "--partitions",
            "3",
            "--json",
        ],
        b"",
    ));
    let p: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (p["workload"].as_str(), p["records"].as_u64(), p["bytes"].as_u64()),
        (Some("produce"), Some(5000), Some(5000 * 72))
    );
    for k in ["records_per_sec", "mb_per_sec", "client_cpu_seconds"] {
        assert!(p[k].as_f64().unwrap() > 0.0, "{k}: {p}");
    }
    assert!(p["latency"]["p50_ms"].as_f64().unwrap() <= p["latency"]["p99_ms"].as_f64().unwrap());
    assert!(p["latency"]["p99_ms"].as_f64().unwrap() <= p["latency"]["p999_ms"].as_f64().unwrap());
    assert!(p["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    let out = ok(&kafkit(&b.addr(), &["perf", "consume", &t, "--records", "5000", "--json"], b""));
    let c: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (c["workload"].as_str(), c["records"].as_u64(), c["bytes"].as_u64()),
        (Some("consume"), Some(5000), Some(5000 * 72))
    );
    // The text form names the same figures.
    let text = ok(&kafkit(&b.addr(), &["perf", "consume", &t, "--records", "5000"], b""));
    assert!(
        text.starts_with("consume: 5000 records, ") && text.contains("p99.9") && text.contains("peak RSS"),
        "{text}"
    );
}
