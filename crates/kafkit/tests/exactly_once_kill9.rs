//! The consume-transform-produce example (`examples/exactly_once.rs`) as separate OS processes
//! on a dedicated three-node Apache Kafka cluster (KRaft; replication factor 3,
//! `min.insync.replicas` 2, the transaction state log and the offsets topic alike): three
//! processors in one group copy 100,000 sequence-numbered records from INPUT to OUTPUT,
//! upper-cased. At seeded random points (the seed is printed; `KAFKIT_EOS_SEED` repeats a run)
//! a processor is killed with SIGKILL and started again at once with the same transactional id,
//! and the node that is the transaction coordinator of processor `a` is killed once with
//! SIGKILL and restarted later. Under read_committed, an independent [`Reader`] sees every input
//! record exactly once in the output, transformed: no record lost, none duplicated.
//!
//! The processors are this test binary run again (`std::env::current_exe()`) as
//! `--exact child_processor_process --ignored`: that test is a helper, not a test of its own
//! (it fails when run without the environment the parent gives it).

mod common;

#[allow(dead_code)]
#[path = "../examples/exactly_once.rs"]
mod example;

use bytes::Bytes;
use common::{Cluster, ClusterOptions};
use kafkit::admin::{Client, OffsetSpec};
use kafkit::protocol::messages::FindCoordinatorRequest;
use kafkit::{
    ClusterConfig, IsolationLevel, Message, Reader, ReaderConfig, StartOffset, TopicConfig, TopicPartition, Writer,
    WriterConfig,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 6;
const PROCESSORS: [&str; 3] = ["a", "b", "c"];
/// Processor kills (SIGKILL) during the run.
const KILLS: usize = 5;
/// The whole run, from the input written to the last record out.
const RUN_DEADLINE: Duration = Duration::from_secs(360);

const ENV_BROKERS: &str = "KAFKIT_EOS_BROKERS";
const ENV_INPUT: &str = "KAFKIT_EOS_INPUT";
const ENV_OUTPUT: &str = "KAFKIT_EOS_OUTPUT";
const ENV_GROUP: &str = "KAFKIT_EOS_GROUP";
const ENV_INSTANCE: &str = "KAFKIT_EOS_INSTANCE";
const CHILD: &str = "child_processor_process";

fn value(i: usize) -> String {
    format!("record-{i:06}")
}

/// Not a test: one processor of [`pipeline_copies_every_record_once_through_kill_9s_and_a_broker_kill`],
/// which runs this binary again for it and kills it with SIGKILL. It runs `example::run` until
/// killed, or until its standard input closes (the parent is gone). Run without the parent's
/// environment it fails rather than pass having done nothing.
#[test]
#[ignore = "a helper process of pipeline_copies_every_record_once_through_kill_9s_and_a_broker_kill, not a test"]
fn child_processor_process() {
    let env = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: {CHILD} is a processor process the pipeline test starts, not a test of its own")
        })
    };
    let (brokers, input, output, group, instance) =
        (env(ENV_BROKERS), env(ENV_INPUT), env(ENV_OUTPUT), env(ENV_GROUP), env(ENV_INSTANCE));
    // The parent holds our stdin: end of file means it is gone, and so must we be.
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        eprintln!("the parent is gone");
        std::process::exit(3);
    });
    let p = example::Pipeline {
        brokers: brokers.split(',').map(String::from).collect(),
        input,
        output,
        group: group.clone(),
        transactional_id: format!("{group}-{instance}"),
        // Only SIGKILL or the parent's end stops it.
        idle: Duration::from_secs(3600),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match rt.block_on(example::run(p)) {
        Ok(s) => eprintln!("processor {instance} stopped: {} committed, {} aborted", s.committed, s.aborted),
        Err(e) => panic!("processor {instance} failed: {e}"),
    }
}

/// The processor processes, killed when this drops.
struct Processors {
    exe: PathBuf,
    logs: PathBuf,
    env: Vec<(&'static str, String)>,
    running: BTreeMap<&'static str, (Child, PathBuf)>,
    started: usize,
}

impl Processors {
    fn start(&mut self, instance: &'static str) {
        self.started += 1;
        let log = self.logs.join(format!("{instance}-{}.log", self.started));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&self.exe)
            .args(["--exact", CHILD, "--ignored", "--nocapture", "--test-threads=1"])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env(ENV_INSTANCE, instance)
            .stdin(Stdio::piped())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start a processor process");
        self.running.insert(instance, (child, log));
    }

    /// SIGKILL, and waits for it to be gone.
    fn kill(&mut self, instance: &'static str) -> u32 {
        let (mut child, _) = self.running.remove(instance).expect("a running processor");
        let pid = child.id();
        child.kill().expect("kill -9 a processor");
        child.wait().expect("reap a processor");
        pid
    }

    /// Panics, with its log, if a processor exited on its own.
    fn check(&mut self) {
        for (instance, (child, log)) in self.running.iter_mut() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("processor {instance} exited by itself ({status}):\n{}", tail(log));
            }
        }
    }
}

impl Drop for Processors {
    fn drop(&mut self) {
        for (_, (mut child, _)) in std::mem::take(&mut self.running) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What the independent read_committed reader of OUTPUT has seen.
#[derive(Default)]
struct Seen {
    /// Per input sequence number, how often it appeared in the output.
    counts: Vec<u32>,
    /// Output records that are no transformed input record.
    bad: Vec<String>,
    /// Records read, duplicates included.
    total: usize,
    /// Distinct input records seen.
    distinct: usize,
    /// The reader's position per output partition.
    positions: BTreeMap<i32, i64>,
    /// The reader's error, if it failed.
    failed: Option<String>,
}

/// The node id of the coordinator of `key` (key type 0: a group, 1: a transactional id),
/// asked of the live node `addr`.
async fn coordinator(addr: &str, key_type: i8, key: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conn = kafkit::Dialer::new().dial(addr).await.expect("dial");
        let resp = conn
            .request(
                &FindCoordinatorRequest::default().with_key_type(key_type).with_coordinator_keys(vec![key.to_string()]),
            )
            .await
            .expect("FindCoordinator");
        let c = &resp.coordinators[0];
        if c.error_code == 0 {
            return c.node_id;
        }
        assert!(Instant::now() < deadline, "no coordinator for {key}: error {}", c.error_code);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every partition's offset by `spec` under `isolation`, retried (a node may be down).
async fn offsets(admin: &Client, topic: &str, isolation: IsolationLevel) -> BTreeMap<i32, i64> {
    let specs: Vec<_> = (0..PARTITIONS).map(|p| (TopicPartition::new(topic, p), OffsetSpec::Latest)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match admin.list_offsets(&specs, isolation).await {
            Ok(r) if r.values().all(|o| o.is_ok()) => {
                return r.into_iter().map(|(tp, o)| (tp.partition, o.unwrap().offset)).collect();
            }
            other => assert!(Instant::now() < deadline, "listing offsets of {topic}: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records of `topic` read with `isolation` from the start until every partition's position
/// reaches `ends` (within 60 s).
async fn count_to_end(seeds: &[&str], topic: &str, isolation: IsolationLevel, ends: &BTreeMap<i32, i64>) -> usize {
    let mut r = Reader::new(
        seeds,
        ReaderConfig::assign((0..PARTITIONS).map(|p| TopicPartition::new(topic, p)))
            .with_isolation(isolation)
            .with_start(StartOffset::First)
            .with_max_wait(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        let at = r.partitions();
        if ends.iter().all(|(p, end)| at.get(&TopicPartition::new(topic, *p)).is_some_and(|s| s.position >= *end)) {
            return n;
        }
        assert!(Instant::now() < deadline, "{isolation:?} reader of {topic} at {at:?}, the ends {ends:?}");
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(200), r.read_message()).await {
            m.expect("read the output");
            n += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_copies_every_record_once_through_kill_9s_and_a_broker_kill() {
    common::init_tracing();
    let t0 = Instant::now();
    let seed: u64 = match std::env::var("KAFKIT_EOS_SEED") {
        Ok(s) => s.parse().expect("KAFKIT_EOS_SEED is a u64"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    eprintln!("seed {seed} (KAFKIT_EOS_SEED={seed} repeats the schedule)");
    let mut rng = StdRng::seed_from_u64(seed);

    // Replication factor 3 and min.insync.replicas 2 for every topic, the offsets topic and the
    // transaction state log (`scripts/kafka.sh --nodes 3`).
    let cluster = Arc::new(Cluster::start(ClusterOptions::default().nodes(3)));
    let seeds = cluster.addrs_on(common::Listener::Plaintext);
    let seeds_s: Vec<&str> = seeds.iter().map(String::as_str).collect();
    eprintln!("3 nodes up after {:?}", t0.elapsed());
    let (input, output, group) =
        (common::unique_topic("eos9-in"), common::unique_topic("eos9-out"), common::unique_topic("eos9-group"));
    let topics: Vec<TopicConfig> = [&input, &output]
        .iter()
        .map(|t| TopicConfig::new(*t, PARTITIONS).with_replication_factor(3).with_config("min.insync.replicas", "2"))
        .collect();
    common::create_topics(&cluster.addr(), &topics).await;
    let admin = Client::new(&seeds_s, ClusterConfig::default()).await.unwrap();

    let t = Instant::now();
    let w = Writer::new(&seeds_s, WriterConfig::default().with_topic(&input)).await.unwrap();
    let msgs: Vec<Message> = (0..RECORDS).map(|i| Message::new(None, Some(Bytes::from(value(i))))).collect();
    w.write_messages(msgs).await.expect("input written");
    w.close().await.unwrap();
    let input_ends = offsets(&admin, &input, IsolationLevel::ReadUncommitted).await;
    assert_eq!(input_ends.values().sum::<i64>(), RECORDS as i64, "{input_ends:?}");
    eprintln!("{RECORDS} input records written in {:?}: {input_ends:?}", t.elapsed());

    // The output, under read_committed, as it lands.
    let seen = Arc::new(Mutex::new(Seen { counts: vec![0; RECORDS], ..Seen::default() }));
    let mut r = Reader::new(
        &seeds_s,
        ReaderConfig::assign((0..PARTITIONS).map(|p| TopicPartition::new(&output, p)))
            .with_isolation(IsolationLevel::ReadCommitted)
            .with_start(StartOffset::First)
            .with_max_wait(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let sink = seen.clone();
    let reading = tokio::spawn(async move {
        loop {
            let m = tokio::time::timeout(Duration::from_millis(200), r.read_message()).await;
            let positions: BTreeMap<i32, i64> =
                r.partitions().into_iter().map(|(tp, s)| (tp.partition, s.position)).collect();
            let mut s = sink.lock().unwrap();
            s.positions = positions;
            match m {
                Err(_) => {}
                Ok(Err(e)) => {
                    s.failed = Some(e.to_string());
                    return;
                }
                Ok(Ok(m)) => {
                    s.total += 1;
                    let v = String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into_owned();
                    match v.strip_prefix("RECORD-").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n < RECORDS) {
                        Some(n) => {
                            s.counts[n] += 1;
                            if s.counts[n] == 1 {
                                s.distinct += 1;
                            }
                        }
                        None => s.bad.push(v),
                    }
                }
            }
        }
    });

    let logs = std::env::temp_dir().join(common::unique_topic("eos9-processors"));
    std::fs::create_dir_all(&logs).unwrap();
    eprintln!("processor logs in {}", logs.display());
    let mut procs = Processors {
        exe: std::env::current_exe().unwrap(),
        logs,
        env: vec![
            (ENV_BROKERS, seeds.join(",")),
            (ENV_INPUT, input.clone()),
            (ENV_OUTPUT, output.clone()),
            (ENV_GROUP, group.clone()),
        ],
        running: BTreeMap::new(),
        started: 0,
    };
    let t_run = Instant::now();
    for p in PROCESSORS {
        procs.start(p);
    }

    // The schedule, by records out: processor kills anywhere from 3% to 92%, the broker's
    // kill between 25% and 50%, its restart between 65% and 80%.
    let at = |rng: &mut StdRng, lo: f64, hi: f64| (RECORDS as f64 * rng.gen_range(lo..hi)) as usize;
    let mut kills: Vec<(usize, &'static str)> =
        (0..KILLS).map(|_| (at(&mut rng, 0.03, 0.92), PROCESSORS[rng.gen_range(0..PROCESSORS.len())])).collect();
    kills.sort();
    let (broker_kill_at, broker_restart_at) = (at(&mut rng, 0.25, 0.50), at(&mut rng, 0.65, 0.80));
    eprintln!("schedule: processor kills {kills:?}; broker kill at {broker_kill_at}, restart at {broker_restart_at}");
    let mut killed_broker: Option<i32> = None;
    // The broker's restart (seconds: it catches up first) runs beside the schedule.
    let mut restarting: Option<(tokio::task::JoinHandle<()>, Instant, usize)> = None;
    let mut restarted = false;
    // The longest time without a new record out, and when it ended.
    let (mut last_distinct, mut last_progress) = (0, Instant::now());
    let mut longest_stall = (Duration::ZERO, Duration::ZERO);
    let mut mid_transaction = 0;
    let mut events: Vec<String> = Vec::new();
    let progress = |seen: &Arc<Mutex<Seen>>| {
        let s = seen.lock().unwrap();
        if let Some(e) = &s.failed {
            panic!("the output reader failed: {e}");
        }
        (s.distinct, s.total)
    };

    let deadline = Instant::now() + RUN_DEADLINE;
    loop {
        let (distinct, total) = progress(&seen);
        procs.check();
        if distinct > last_distinct {
            if last_progress.elapsed() > longest_stall.0 {
                longest_stall = (last_progress.elapsed(), t_run.elapsed());
            }
            (last_distinct, last_progress) = (distinct, Instant::now());
        }
        if restarting.as_ref().is_some_and(|(h, _, _)| h.is_finished()) {
            let (h, t, from) = restarting.take().unwrap();
            h.await.expect("the broker restarted");
            let e = format!(
                "{:>7.1?} at {distinct} out: node {} serving again, {:?} after its restart began at {from} out",
                t_run.elapsed(),
                killed_broker.unwrap(),
                t.elapsed()
            );
            eprintln!("{e}");
            events.push(e);
        }
        if distinct >= RECORDS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{distinct} of {RECORDS} records out ({total} read) after {:?}; events: {events:#?}",
            t_run.elapsed()
        );
        if let Some(&(n, victim)) = kills.first() {
            if distinct >= n {
                kills.remove(0);
                // Its transaction's state just before (it may move on before the signal lands).
                let id = format!("{group}-{victim}");
                let state = match admin.describe_transactions(&[&id]).await {
                    Ok(mut d) => match d.remove(&id) {
                        Some(Ok(t)) => t.state,
                        other => format!("{other:?}"),
                    },
                    Err(e) => format!("{e}"),
                };
                if state == "Ongoing" {
                    mid_transaction += 1;
                }
                let pid = procs.kill(victim);
                procs.start(victim);
                let e = format!(
                    "{:>7.1?} at {distinct} out: kill -9 processor {victim} (pid {pid}; its transaction {state}), restarted",
                    t_run.elapsed()
                );
                eprintln!("{e}");
                events.push(e);
                continue;
            }
        }
        if killed_broker.is_none() && distinct >= broker_kill_at {
            let live = cluster.node_addr(1);
            let node = coordinator(&live, 1, &format!("{group}-a")).await;
            // What else it is: the group's coordinator, a partition leader.
            let group_coordinator = coordinator(&live, 0, &group).await == node;
            let meta = admin.cluster().refresh_metadata(Some(&[&input, &output])).await.unwrap();
            let led: Vec<String> = [&input, &output]
                .iter()
                .flat_map(|t| (0..PARTITIONS).map(move |p| (t, p)))
                .filter(|(t, p)| meta.partition(t, *p).is_some_and(|m| m.leader == node))
                .map(|(t, p)| format!("{}/{p}", if *t == &input { "input" } else { "output" }))
                .collect();
            tokio::task::block_in_place(|| cluster.kill(node as usize));
            killed_broker = Some(node);
            let e = format!(
                "{:>7.1?} at {distinct} out: kill -9 node {node}, the transaction coordinator of processor a \
                 (group coordinator too: {group_coordinator}; leader of {led:?})",
                t_run.elapsed()
            );
            eprintln!("{e}");
            events.push(e);
            continue;
        }
        if let (Some(node), false) = (killed_broker, restarted) {
            if distinct >= broker_restart_at {
                let c = cluster.clone();
                let h = tokio::task::spawn_blocking(move || c.restart(node as usize));
                restarting = Some((h, Instant::now(), distinct));
                restarted = true;
                let e = format!("{:>7.1?} at {distinct} out: node {node} restarting", t_run.elapsed());
                eprintln!("{e}");
                events.push(e);
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_out = t_run.elapsed();
    eprintln!(
        "all {RECORDS} records out after {all_out:?}; the longest time without a new record out: {:?}, ending at {:?}",
        longest_stall.0, longest_stall.1
    );
    if let Some((h, t, _)) = restarting.take() {
        h.await.expect("the broker restarted");
        eprintln!("node {} serving again {:?} after its restart began", killed_broker.unwrap(), t.elapsed());
    }
    assert!(kills.is_empty() && killed_broker.is_some(), "the schedule did not run out: {kills:?}, {killed_broker:?}");

    // The group has committed every input record's offset (with the transactions that wrote
    // their output).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let committed = admin.fetch_offsets(&group, None).await.ok().unwrap_or_default();
        let committed: BTreeMap<i32, i64> = committed.into_iter().map(|(tp, o)| (tp.partition, o)).collect();
        if committed == input_ends {
            break;
        }
        assert!(Instant::now() < deadline, "committed {committed:?}, input ends {input_ends:?}");
        procs.check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stop the processors, and fence every transactional id once more: whatever transaction
    // might still be open is aborted, so the last stable offset reaches the high watermark.
    procs.check();
    for p in PROCESSORS {
        procs.kill(p);
    }
    for p in PROCESSORS {
        let id = format!("{group}-{p}");
        let fence = Writer::new(&seeds_s, WriterConfig::default().with_topic(&output).with_transactional_id(&id))
            .await
            .unwrap();
        fence.init_transactions().await.expect("fence a processor's transactional id");
    }
    let hw = offsets(&admin, &output, IsolationLevel::ReadUncommitted).await;
    let lso = offsets(&admin, &output, IsolationLevel::ReadCommitted).await;
    assert_eq!(lso, hw, "a transaction is still open on the output");
    // The reader reaches the end of every output partition.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let positions = seen.lock().unwrap().positions.clone();
        if hw.iter().all(|(p, end)| positions.get(p).is_some_and(|at| at >= end)) {
            break;
        }
        assert!(Instant::now() < deadline, "the output reader at {positions:?}, the output ends at {hw:?}");
        progress(&seen);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reading.abort();
    // The same output under read_uncommitted: what the aborted transactions left in the log.
    let uncommitted = count_to_end(&seeds_s, &output, IsolationLevel::ReadUncommitted, &hw).await;
    // And once more under read_committed, from the start, by a reader of its own.
    let committed_again = count_to_end(&seeds_s, &output, IsolationLevel::ReadCommitted, &hw).await;

    let s = seen.lock().unwrap();
    let lost: Vec<usize> = (0..RECORDS).filter(|i| s.counts[*i] == 0).collect();
    let duplicated: Vec<(usize, u32)> = (0..RECORDS).filter(|i| s.counts[*i] > 1).map(|i| (i, s.counts[i])).collect();
    let extra: u64 = duplicated.iter().map(|(_, n)| u64::from(*n - 1)).sum();
    eprintln!(
        "{RECORDS} input records; {} output records read under read_committed; {} distinct; lost {}; \
         duplicated {} ({} extra copies); not transformed {}",
        s.total,
        s.distinct,
        lost.len(),
        duplicated.len(),
        extra,
        s.bad.len()
    );
    eprintln!(
        "{uncommitted} output records under read_uncommitted: {} of aborted transactions; a fresh read_committed \
         reader read {committed_again}",
        uncommitted as i64 - s.total as i64
    );
    eprintln!(
        "{} processor processes started, {KILLS} killed with SIGKILL mid-run ({mid_transaction} with their \
         transaction Ongoing just before), node {} killed and restarted; all out after {all_out:?}, whole test {:?}",
        procs.started,
        killed_broker.unwrap(),
        t0.elapsed()
    );
    assert!(s.bad.is_empty(), "output records that are no transformed input: {:?}", &s.bad[..s.bad.len().min(5)]);
    assert!(lost.is_empty(), "{} records lost, such as {:?}", lost.len(), &lost[..lost.len().min(10)]);
    assert!(
        duplicated.is_empty(),
        "{} records duplicated, such as {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(10)]
    );
    assert_eq!(s.total, RECORDS);
    assert_eq!(committed_again, RECORDS);
    let output_records: i64 = hw.values().sum();
    eprintln!("output high watermarks {hw:?} ({output_records} offsets: records and transaction markers)");
    let _ = std::fs::remove_dir_all(&procs.logs);
}
