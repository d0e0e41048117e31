//! `kafkit produce --transactional-id`, `kafkit consume --isolation` and `kafkit
//! transactions list|describe` against Apache Kafka 4.4.

#[path = "../../kafkit/tests/common/mod.rs"]
mod common;
mod run;

use common::unique_topic;
use run::{kafkit, ok};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

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
    // The commit returns once the coordinator accepted it; the markers that make the records
    // readable under read_committed (and end the coordinator's PrepareCommit) land just after.
    let consume = ["consume", t.as_str(), "-e", "--isolation", "read_committed"];
    let mut got: Vec<String> = poll_until(&b.addr(), &consume, "10 committed records", |o| o.lines().count() >= 10)
        .lines()
        .map(String::from)
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(got, want);

    let d = poll_until(&b.addr(), &["transactions", "describe", &id], "CompleteCommit", |d| {
        d.contains("state\tCompleteCommit")
    });
    assert!(d.contains(&format!("transactional id {id}")), "{d}");
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
    // The abort's markers land after the exit; until then read_committed may stop short.
    let consume = ["consume", t.as_str(), "-e", "--isolation", "read_committed"];
    let got = poll_until(&b.addr(), &consume, "2 committed records", |o| o.lines().count() >= 2);
    assert_eq!(got.lines().collect::<Vec<_>>(), ["c1", "c2"]);
    // A bad combination is refused before anything is sent.
    let out = kafkit(&b.addr(), &["produce", &t, "--transactional-id", &id, "--acks", "1"], b"z\n");
    assert_eq!(out.status.code(), Some(1));
}

/// Runs `kafkit ARGS` until `done` holds of its stdout lines, or fails after 60 s.
fn poll_until(broker: &str, args: &[&str], what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = kafkit(broker, args, b"");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in 60 s: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The interval between two looks at the condition (each look is a kafkit run).
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl-C (SIGINT) while a transaction is open: `kafkit produce --transactional-id` aborts
/// it and exits 1 saying so; the transactions committed before it stay visible under
/// read_committed, and the coordinator ends the id's transaction with CompleteAbort.
#[test]
fn ctrl_c_aborts_the_open_transaction_and_exits_non_zero() {
    let b = common::kafka();
    let t = unique_topic("cli-txn-int");
    let id = unique_topic("cli-txn-int-id");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "2"], b""));
    let mut child =
        run::command(&b.addr(), &["produce", &t, "--transactional-id", &id, "--transaction-records", "1000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kafkit");
    // 1,500 records and stdin left open: one transaction of 1,000 commits, the next is open,
    // waiting for its other 500.
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = (0..1500).map(|i| format!("r{i}\n")).collect();
    stdin.write_all(input.as_bytes()).expect("write stdin");
    stdin.flush().expect("flush stdin");

    let committed = poll_until(
        &b.addr(),
        &["consume", &t, "-e", "--isolation", "read_committed"],
        "the first transaction's commit",
        |out| out.lines().count() >= 1000,
    );
    assert_eq!(committed.lines().count(), 1000, "only the first transaction is committed");
    // The second transaction reached the coordinator (its partitions were added).
    poll_until(&b.addr(), &["transactions", "describe", &id], "the second transaction", |out| {
        out.contains("state\tOngoing") && out.contains("partition\t")
    });

    let (status, err) = interrupt(&mut child, stdin);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("kafkit: error: interrupted; the open transaction was aborted;"), "{err}");
    assert!(err.contains("1000 of 1500 records committed in 1 transactions"), "{err}");

    // The first 1,000 (-c: `consume -e` can stop short of the end, see the report) ...
    let mut got: Vec<String> =
        ok(&kafkit(&b.addr(), &["consume", &t, "-c", "1000", "--isolation", "read_committed"], b""))
            .lines()
            .map(String::from)
            .collect();
    got.sort();
    let mut want: Vec<String> = (0..1000).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(got, want, "the first 1,000 records are committed");
    // ... and nothing more: the aborted 500 are in the log (read_uncommitted reads all
    // 1,500) but not visible under read_committed.
    let all = ok(&kafkit(&b.addr(), &["consume", &t, "-c", "1500"], b""));
    assert_eq!(all.lines().count(), 1500);
    let committed = ok(&kafkit(&b.addr(), &["consume", &t, "-e", "--isolation", "read_committed"], b""));
    assert!(committed.lines().count() <= 1000, "aborted records are visible under read_committed");
    let d = ok(&kafkit(&b.addr(), &["transactions", "describe", &id], b""));
    assert!(d.contains("state\tCompleteAbort"), "{d}");
}

/// Ctrl-C before any record arrived: nothing was open, nothing committed, exit 1.
#[test]
fn ctrl_c_with_no_open_transaction_exits_non_zero() {
    let b = common::kafka();
    let t = unique_topic("cli-txn-int0");
    let id = unique_topic("cli-txn-int0-id");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "1"], b""));
    let mut child = run::command(&b.addr(), &["produce", &t, "--transactional-id", &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kafkit");
    let stdin = child.stdin.take().expect("stdin");
    // init_transactions done: the id is known to its coordinator (state Empty).
    poll_until(&b.addr(), &["transactions", "describe", &id], "init_transactions", |out| out.contains("state\tEmpty"));
    let (status, err) = interrupt(&mut child, stdin);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.starts_with("kafkit: error: interrupted; no transaction was open; 0 of 0 records committed"), "{err}");
}

/// `kafkit perf produce --transactional-id`: 200 transactions of 100 keyed records over 6
/// partitions, all committed, and (one connection per partition leader for a transactional
/// writer) resends in only a few of them: with two, the broker failed the older of a
/// transaction's two concurrent Produce requests in most transactions (NOT_ENOUGH_REPLICAS,
/// "unable to verify the partition has been added to the transaction").
#[test]
fn perf_produce_in_transactions_reports_them_with_few_resends() {
    let b = common::kafka();
    let t = unique_topic("cli-txn-perf");
    let id = unique_topic("cli-txn-perf-id");
    ok(&kafkit(&b.addr(), &["topics", "create", &t, "--partitions", "6"], b""));
    let args = [
        "perf",
        "produce",
        &t,
        "--records",
        "20000",
        "--key-size",
        "16",
        "--random-values",
        "--transactional-id",
        &id,
        "--transaction-records",
        "100",
        "--json",
    ];
    let out = ok(&kafkit(&b.addr(), &args, b""));
    let r: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(r["records"], 20000, "{r}");
    assert_eq!(r["transactions"], 200, "{r}");
    assert!(r["transactions_per_sec"].as_f64().is_some_and(|x| x > 0.0), "{r}");
    assert!(r["produce_requests"].as_u64().is_some_and(|n| n >= 200), "{r}");
    // Resends come six at a time, one per partition: the just-created topic's first
    // batches meet NOT_LEADER_OR_FOLLOWER until its partition leaders serve it, and now and
    // then a transaction's first batches meet CONCURRENT_TRANSACTIONS while the markers of
    // the one before are written (0 to 12 resends in 16 runs on 2 busy cores). Two
    // connections per leader resent in most of the 200 transactions.
    assert!(r["produce_resends"].as_u64().is_some_and(|n| n < 40), "{r}");
    let got = ok(&kafkit(&b.addr(), &["consume", &t, "-c", "20000", "--isolation", "read_committed"], b""));
    assert_eq!(got.lines().count(), 20000);
    // Values of random text: not one repeated byte.
    let first = got.lines().next().expect("a record");
    assert_eq!(first.len(), 100);
    assert!(first.bytes().collect::<std::collections::BTreeSet<u8>>().len() > 10, "{first}");
}

/// Sends SIGINT to `child`, waits (up to 60 s) for it to exit, then closes its stdin:
/// its exit status and stderr.
fn interrupt(child: &mut std::process::Child, stdin: std::process::ChildStdin) -> (std::process::ExitStatus, String) {
    // SAFETY: kill(2) with the pid of the child this test started, which has not been
    // waited for yet (so the pid is still its).
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for kafkit") {
            break s;
        }
        assert!(Instant::now() < deadline, "kafkit did not exit in 60 s after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    (status, err)
}
