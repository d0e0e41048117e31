//! `kafkit produce --transactional-id`, `kafkit consume --isolation` and `kafkit
//! transactions list|describe` against Apache Kafka 4.4.

#[path = "../../kafkit/tests/common/mod.rs"]
mod common;
mod run;

use common::unique_topic;
use run::{kafkit, ok};

#[test]
fn transactional_produce_commits_per_n_records_and_read_committed_reads_them() {
    let b = common::kafka();
    let t = unique_topic("cli-txn");
    let id = unique_topic("cli-txn-id");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "2"], b""));
    let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
    let out =
        kafkit(&b.addr(), &["produce", &t, "--transactional-id", &id, "--transaction-records", "3"], input.as_bytes());
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10 records committed in 4 transactions"), "{err}");
    let mut got: Vec<String> = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "--isolation", "read_committed"], b""))
        .lines()
        .map(String::from)
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(got, want);

    let d = ok(&kafkit(&b.addr(), &["transactions", "describe", &id], b""));
    assert!(d.contains(&format!("transactional id {id}")), "{d}");
    assert!(d.contains("state\tCompleteCommit"), "{d}");
    let l = ok(&kafkit(&b.addr(), &["transactions", "list"], b""));
    assert!(l.lines().any(|line| line.starts_with(&format!("{id}\t")) && line.ends_with("CompleteCommit")), "{l}");
}

/// A record the broker refuses (larger than the topic's max.message.bytes) fails its
/// transaction: it is aborted, the exit code is 1, and only the transactions before it are
/// read under read_committed.
#[test]
fn a_failed_record_aborts_its_transaction_and_the_exit_code_says_so() {
    let b = common::kafka();
    let t = unique_topic("cli-txn-fail");
    let id = unique_topic("cli-txn-fail-id");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "1", "--config", "max.message.bytes=1024"], b""));
    let big = "x".repeat(4000);
    let input = format!("c1\nc2\na1\n{big}\nnever\n");
    let out =
        kafkit(&b.addr(), &["produce", &t, "--transactional-id", &id, "--transaction-records", "2"], input.as_bytes());
    assert_eq!(out.status.code(), Some(1), "stdout {:?}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("the open transaction was aborted") && err.contains("2 of 5 records committed in 1 transactions"),
        "{err}"
    );
    let got = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "--isolation", "read_committed"], b""));
    assert_eq!(got.lines().collect::<Vec<_>>(), ["c1", "c2"]);
    // A bad combination is refused before anything is sent.
    let out = kafkit(&b.addr(), &["produce", &t, "--transactional-id", &id, "--acks", "1"], b"z\n");
    assert_eq!(out.status.code(), Some(1));
}
