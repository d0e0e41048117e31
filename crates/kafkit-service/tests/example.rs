//! The example order service (`examples/orders.rs`, the `kafkit-orders` binary) run as a
//! real process against Apache Kafka 4.4: its configuration comes from a file and the
//! environment (precedence, and a bad value's error naming its source); SIGTERM in the middle
//! of a batch loses nothing and a restart redelivers nothing it had handled; a second SIGTERM
//! forces the exit; a crash (SIGKILL) redelivers exactly the records handled after the last
//! commit, as the crate docs say.
#![cfg(feature = "example")]

mod common;

use common::*;
use kafkit::{Message, TopicPartition};
use kafkit_service::dlt::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    fn start(config: &PathBuf, env: &[(&str, String)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafkit-orders"));
        cmd.arg(config).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.env("RUST_LOG", "kafkit_service=info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the example");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let s = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc { child, stderr }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -{sig}");
    }

    /// Waits for the exit (at most `within`): its code and how long it took.
    async fn exit(&mut self, within: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last bytes.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return (status.code(), started.elapsed());
            }
            assert!(started.elapsed() < within, "no exit within {within:?}; stderr: {}", self.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_topic("orders-example"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

struct Setup {
    orders: String,
    results: String,
    dlt: String,
    group: String,
    sources: Vec<Message>,
    poison: BTreeSet<(i32, i64)>,
}

/// `n` orders over 3 partitions, about one in twenty poison (not JSON, or a negative
/// amount).
async fn setup(n: usize) -> Setup {
    let orders = unique_topic("orders");
    let results = format!("{orders}-results");
    let dlt = format!("{orders}.DLT");
    let group = unique_topic("order-service");
    topics(&[(&orders, 3), (&results, 3), (&dlt, 1)]).await;
    let msgs = (0..n)
        .map(|i| {
            let v = match i % 20 {
                7 => "{not json".to_string(),
                13 => format!(r#"{{"id":{i},"customer":"c{}","amount":-1.0}}"#, i % 9),
                _ => format!(r#"{{"id":{i},"customer":"c{}","amount":{}.25}}"#, i % 9, i % 100),
            };
            msg(&orders, &format!("order-{i}"), &v)
        })
        .collect();
    produce(msgs).await;
    let sources = read_all(&orders, 3).await;
    let poison = sources
        .iter()
        .filter(|m| {
            let v = text(&m.value);
            v.starts_with("{not") || v.contains("-1.0")
        })
        .map(|m| (m.partition, m.offset))
        .collect();
    Setup { orders, results, dlt, group, sources, poison }
}

fn base_config(s: &Setup, extra: &str) -> String {
    format!(
        "brokers = [\"{}\"]\n\n[reader]\ngroup_id = \"{}\"\nsession_timeout = \"6s\"\nheartbeat_interval = \"500ms\"\n\n\
         [consumer]\ncommit_interval = \"200ms\"\n\n[consumer.batch]\nmax_records = 20\nmax_wait = \"50ms\"\n\n\
         [shutdown]\ntimeout = \"20s\"\ndrain_timeout = \"15s\"\n\n[app]\norders_topic = \"{}\"\nresults_topic = \"{}\"\n{extra}",
        kafka().addr(),
        s.group,
        s.orders,
        s.results
    )
}

/// The `partition:offset` of each result's order, with how many results it has.
async fn results_by_source(s: &Setup) -> BTreeMap<(i32, i64), usize> {
    let mut out = BTreeMap::new();
    for r in read_all(&s.results, 3).await {
        let src = header_text(&r, "source").unwrap();
        let (p, o) = src.split_once(':').unwrap();
        *out.entry((p.parse().unwrap(), o.parse().unwrap())).or_insert(0) += 1;
    }
    out
}

async fn committed_of(s: &Setup) -> BTreeMap<i32, i64> {
    committed(&s.group)
        .await
        .into_iter()
        .filter(|(tp, _)| tp.topic == s.orders)
        .map(|(tp, o)| (tp.partition, o))
        .collect()
}

fn ends(s: &Setup) -> BTreeMap<i32, i64> {
    let mut e = BTreeMap::new();
    for m in &s.sources {
        e.insert(m.partition, m.offset + 1);
    }
    e
}

#[tokio::test]
async fn sigterm_mid_batch_loses_nothing_and_a_restart_redelivers_nothing_handled() {
    let s = setup(600).await;
    let cfg = config_file("orders.toml", &base_config(&s, "work_per_batch = \"150ms\"\n"));
    let mut p = Proc::start(&cfg, &[]);
    // Mid-way: some results are out, most orders are not handled yet.
    wait_for_async("a first share of the results", Duration::from_secs(30), || async {
        results_by_source(&s).await.len() >= 60
    })
    .await;
    let sent = Instant::now();
    p.signal("TERM");
    let (code, took) = p.exit(Duration::from_secs(25)).await;
    let log = p.stderr();
    assert_eq!(code, Some(0), "{log}");
    let in_flight: usize = log
        .lines()
        .find(|l| l.contains("draining"))
        .and_then(|l| l.split("in_flight=").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no draining line: {log}"));
    assert!(in_flight > 0, "SIGTERM came while batches were in flight: {log}");
    let first_commit = committed_of(&s).await;
    let first_results = results_by_source(&s).await;
    let dead: BTreeSet<(i32, i64)> = read_all(&s.dlt, 1)
        .await
        .iter()
        .map(|d| {
            (
                header_text(d, DLT_ORIGINAL_PARTITION).unwrap().parse().unwrap(),
                header_text(d, DLT_ORIGINAL_OFFSET).unwrap().parse().unwrap(),
            )
        })
        .collect();
    // Nothing lost: every order below the committed offsets has its result or its dead
    // letter; nothing handled is above them (so a restart redelivers nothing handled).
    let mut handled_before = 0;
    for m in &s.sources {
        let pos = (m.partition, m.offset);
        let below = m.offset < first_commit.get(&m.partition).copied().unwrap_or(0);
        let done = first_results.contains_key(&pos) || dead.contains(&pos);
        assert_eq!(below, done, "order {pos:?}: below the commit {below}, handled {done}");
        assert!(!(first_results.contains_key(&pos) && s.poison.contains(&pos)), "poison {pos:?} got a result");
        handled_before += usize::from(done);
    }
    assert!(first_results.values().all(|n| *n == 1), "a result written twice before the restart");
    assert!(handled_before < s.sources.len(), "the shutdown came before the end");
    eprintln!(
        "SIGTERM after {handled_before} of {} orders, {in_flight} batches in flight: exit 0 after {took:?} ({:?} from the signal); committed {first_commit:?}",
        s.sources.len(),
        sent.elapsed()
    );

    // A restart takes up exactly where it stopped.
    let mut p = Proc::start(&cfg, &[]);
    let end = ends(&s);
    wait_for_async("every order committed", Duration::from_secs(60), || async { committed_of(&s).await == end }).await;
    p.signal("TERM");
    let (code, _) = p.exit(Duration::from_secs(25)).await;
    assert_eq!(code, Some(0), "{}", p.stderr());
    let results = results_by_source(&s).await;
    let dups: Vec<_> = results.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "redelivered and handled again after a graceful shutdown: {dups:?}");
    let dead = read_all(&s.dlt, 1).await;
    assert_eq!(dead.len(), s.poison.len(), "each poison order dead-lettered once");
    assert_eq!(results.len() + dead.len(), s.sources.len(), "every order handled or dead-lettered");
    for d in &dead {
        for h in [
            DLT_ORIGINAL_TOPIC,
            DLT_ORIGINAL_TIMESTAMP,
            DLT_CONSUMER_GROUP,
            DLT_ERROR_MESSAGE,
            DLT_ATTEMPTS,
            DLT_FAILURE_FIRST,
            DLT_FAILURE_LAST,
        ] {
            assert!(header_text(d, h).is_some(), "{h} missing");
        }
        assert_eq!(header_text(d, DLT_ERROR_KIND).as_deref(), Some("InvalidOrder"));
        assert_eq!(header_text(d, DLT_ORIGINAL_TOPIC), Some(s.orders.clone()));
    }
    eprintln!("after the restart: {} results, {} dead letters, 0 handled twice", results.len(), dead.len());
}

#[tokio::test]
async fn a_second_sigterm_forces_the_exit() {
    let s = setup(100).await;
    let cfg = config_file("orders.toml", &base_config(&s, "work_per_batch = \"30s\"\n"));
    let mut p = Proc::start(&cfg, &[]);
    wait_for("a batch in flight", Duration::from_secs(30), || p.stderr().contains("assigned")).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // let a batch start its 30 s of work
    p.signal("TERM");
    wait_for("draining", Duration::from_secs(10), || p.stderr().contains("draining")).await;
    p.signal("TERM");
    let (code, took) = p.exit(Duration::from_secs(5)).await;
    let log = p.stderr();
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("a second signal forced the exit"), "{log}");
    assert!(committed_of(&s).await.is_empty(), "nothing handled, nothing committed");
    eprintln!("second SIGTERM: exit 1 after {took:?}");
}

#[tokio::test]
async fn a_crash_redelivers_exactly_what_was_handled_after_the_last_commit() {
    let s = setup(900).await;
    // Commits every 1.5 s while a partition's 15 batches take 300 ms each: a crash between
    // two commits leaves handled records uncommitted.
    let cfg = config_file(
        "orders.toml",
        &base_config(&s, "work_per_batch = \"300ms\"\n")
            .replace("commit_interval = \"200ms\"", "commit_interval = \"1500ms\""),
    );
    let mut p = Proc::start(&cfg, &[]);
    wait_for_async("a first commit and more results", Duration::from_secs(30), || async {
        let c: i64 = committed_of(&s).await.values().sum();
        c > 0 && results_by_source(&s).await.len() as i64 > c + 30
    })
    .await;
    p.signal("KILL");
    p.exit(Duration::from_secs(5)).await;
    let at_crash = committed_of(&s).await;
    let before = results_by_source(&s).await;
    let above: BTreeSet<(i32, i64)> =
        before.keys().filter(|(p, o)| *o >= at_crash.get(p).copied().unwrap_or(0)).copied().collect();
    let mut p = Proc::start(&cfg, &[]);
    let end = ends(&s);
    wait_for_async("every order committed", Duration::from_secs(60), || async { committed_of(&s).await == end }).await;
    p.signal("TERM");
    assert_eq!(p.exit(Duration::from_secs(25)).await.0, Some(0));
    let after = results_by_source(&s).await;
    let twice: BTreeSet<(i32, i64)> = after.iter().filter(|(_, n)| **n > 1).map(|(k, _)| *k).collect();
    assert_eq!(twice, above, "redelivered: exactly the orders handled above the last commit");
    assert!(after.values().all(|n| *n <= 2));
    assert_eq!(after.len() + s.poison.len(), s.sources.len(), "nothing lost");
    eprintln!("crash: {} orders handled after the last commit were handled again, no other", twice.len());
}

#[tokio::test]
async fn the_configuration_precedence_holds_and_a_bad_value_names_its_source() {
    let s = setup(40).await;
    let env_group = unique_topic("order-service-env");
    // The file names a broker nobody listens on and a group; the environment overrides both.
    let text = base_config(&s, "").replace(&kafka().addr(), "127.0.0.1:1");
    let cfg = config_file("orders.toml", &text);
    let mut p =
        Proc::start(&cfg, &[("KAFKIT_BROKERS", kafka().addr()), ("KAFKIT_READER__GROUP_ID", env_group.clone())]);
    let end: BTreeMap<TopicPartition, i64> =
        ends(&s).into_iter().map(|(p, o)| (TopicPartition::new(&s.orders, p), o)).collect();
    wait_for_async("committed under the environment's group", Duration::from_secs(30), || async {
        let c = committed(&env_group).await;
        end.iter().all(|(tp, o)| c.get(tp) == Some(o))
    })
    .await;
    p.signal("TERM");
    assert_eq!(p.exit(Duration::from_secs(25)).await.0, Some(0), "{}", p.stderr());
    assert!(committed(&s.group).await.is_empty(), "the file's group was not used");
    // The dead-letter topic is the default pattern's: nothing set it.
    assert_eq!(read_all(&s.dlt, 1).await.len(), s.poison.len());

    // A bad value in the environment: exit 2, the key and the variable named.
    let cfg = config_file("orders.toml", &base_config(&s, ""));
    let mut p = Proc::start(&cfg, &[("KAFKIT_WRITER__LINGER", "soon".into())]);
    let (code, took) = p.exit(Duration::from_secs(10)).await;
    let log = p.stderr();
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("writer.linger (from env KAFKIT_WRITER__LINGER)") && log.contains("soon"), "{log}");
    eprintln!("bad env value refused in {took:?}: {}", log.trim());

    // A bad value in the file: its path and line.
    let text = base_config(&s, "").replace("max_records = 20", "max_records = \"many\"");
    let line = text.lines().position(|l| l.contains("\"many\"")).unwrap() + 1;
    let cfg = config_file("orders.toml", &text);
    let mut p = Proc::start(&cfg, &[]);
    let (code, _) = p.exit(Duration::from_secs(10)).await;
    let log = p.stderr();
    assert_eq!(code, Some(2), "{log}");
    let want = format!("consumer.batch.max_records (from {}:{line})", cfg.display());
    assert!(log.contains(&want), "{want} in {log}");

    // An unknown key, and a password in the file.
    let cfg = config_file("orders.toml", &(base_config(&s, "") + "\n[sasl]\npassword = \"hunter2\"\n"));
    let mut p = Proc::start(&cfg, &[]);
    let (code, _) = p.exit(Duration::from_secs(10)).await;
    let log = p.stderr();
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("sasl.password") && log.contains("KAFKIT_SASL_PASSWORD") && !log.contains("hunter2"), "{log}");
    let text = base_config(&s, "").replace("[consumer]\n", "[consumer]\ncomit_interval = \"1s\"\n");
    let line = text.lines().position(|l| l.starts_with("comit_interval")).unwrap() + 1;
    let cfg = config_file("orders.toml", &text);
    let mut p = Proc::start(&cfg, &[]);
    let (code, _) = p.exit(Duration::from_secs(10)).await;
    let log = p.stderr();
    assert_eq!(code, Some(2), "{log}");
    let want = format!("consumer.comit_interval (from {}:{line}): unknown key", cfg.display());
    assert!(log.contains(&want), "{want} in {log}");
    eprintln!("unknown key refused: {}", log.trim());
}
