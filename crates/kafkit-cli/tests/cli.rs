//! The `kafkit` command against a real broker (Tansu).

#[path = "../../kafkit/tests/common/mod.rs"]
mod common;

use common::{unique_topic, TestBroker};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kafkit(broker: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["--brokers", broker])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kafkit");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("kafkit output")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "kafkit failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// A failure: exit code 1 and one line on stderr.
fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout {:?}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("kafkit: error: "), "{err}");
    err
}

#[test]
fn topics_create_list_describe_delete() {
    let b = TestBroker::start();
    let t = unique_topic("cli-topics");
    ok(&kafkit(&b.addr, &["topics", "create", &t, "--partitions", "3", "--config", "retention.ms=60000"], b""));
    assert!(ok(&kafkit(&b.addr, &["topics", "list"], b"")).lines().any(|l| l == t));
    let d = ok(&kafkit(&b.addr, &["topics", "describe", &t], b""));
    assert!(d.contains(&format!("topic {t}: 3 partitions")), "{d}");
    assert_eq!(d.lines().filter(|l| l.trim_start().starts_with("partition ")).count(), 3, "{d}");
    assert!(d.contains("retention.ms=60000"), "{d}");
    let err = one_line_error(&kafkit(&b.addr, &["topics", "create", &t, "--partitions", "1"], b""));
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    ok(&kafkit(&b.addr, &["topics", "delete", &t], b""));
    assert!(!ok(&kafkit(&b.addr, &["topics", "list"], b"")).lines().any(|l| l == t));
}

#[test]
fn produce_then_consume_as_json_with_keys_headers_and_a_codec() {
    let b = TestBroker::start();
    let t = unique_topic("cli-rw");
    ok(&kafkit(&b.addr, &["topics", "create", &t, "--partitions", "2"], b""));
    let input = b"k1=alpha|k2=beta|gamma|k1=delta";
    ok(&kafkit(&b.addr, &["produce", &t, "-D", "|", "-K", "=", "-H", "src=test", "-H", "n=1", "-z", "lz4"], input));
    let out = ok(&kafkit(&b.addr, &["consume", &t, "-e", "-f", "json"], b""));
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
    assert_eq!(ok(&kafkit(&b.addr, &["consume", &t, "-e", "-c", "2"], b"")).lines().count(), 2);
    let p0 = ok(&kafkit(&b.addr, &["consume", &t, "-e", "-p", "0"], b"")).lines().count();
    let p1 = ok(&kafkit(&b.addr, &["consume", &t, "-e", "-p", "1", "-o", "1"], b"")).lines().count();
    let p1_all = ok(&kafkit(&b.addr, &["consume", &t, "-e", "-p", "1"], b"")).lines().count();
    assert_eq!(p0 + p1_all, 4);
    assert_eq!(p1, p1_all.saturating_sub(1));
}

#[test]
fn bytes_that_are_not_utf8_come_out_as_base64_and_say_so() {
    let b = TestBroker::start();
    let t = unique_topic("cli-bin");
    ok(&kafkit(&b.addr, &["topics", "create", &t, "--partitions", "1"], b""));
    ok(&kafkit(&b.addr, &["produce", &t], &[0xff, 0xfe, b'a']));
    let out = ok(&kafkit(&b.addr, &["consume", &t, "-e", "-f", "json"], b""));
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["value_encoding"], "base64");
    assert_eq!(v["value"], "//5h");
    assert!(v["key"].is_null());
}

#[test]
fn bad_input_is_one_line_and_a_nonzero_exit_never_a_hang() {
    let b = TestBroker::start();
    let err = one_line_error(&kafkit(&b.addr, &["consume", &unique_topic("missing"), "-e"], b""));
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
    let t = unique_topic("cli-bad");
    ok(&kafkit(&b.addr, &["topics", "create", &t, "--partitions", "1"], b""));
    let err = one_line_error(&kafkit(&b.addr, &["produce", &t, "-p", "7"], b"x\n"));
    assert!(err.contains("partition 7"), "{err}");
    // A broker that is not there: an error within seconds.
    let started = Instant::now();
    let dead = format!("127.0.0.1:{}", common::free_port());
    let err = one_line_error(&kafkit(&dead, &["topics", "list"], b""));
    assert!(err.contains("connecting to"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // A malformed command line: clap's usage error, exit 2.
    let out = kafkit(&b.addr, &["consume"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = kafkit(&b.addr, &["topics", "create", "x", "--partitions", "many"], b"");
    assert_eq!(out.status.code(), Some(2));
}
