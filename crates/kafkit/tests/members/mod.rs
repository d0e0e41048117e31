//! Consumer-group members for tests: a task per member that records what it received and
//! the rebalance events it saw. Used by `group.rs` (Apache Kafka) and `mock_group.rs` (librdkafka's
//! mock cluster).
#![allow(dead_code)]

use bytes::Bytes;
use kafkit::{CommitMode, Message, Reader, ReaderConfig, RebalanceKind, TopicPartition, Writer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Short timeouts, so that a crashed member's partitions move within seconds (the test
/// clusters allow session timeouts from 1 s).
pub fn member_config(group: &str, topic: &str) -> ReaderConfig {
    ReaderConfig::group(group, [topic])
        .with_session_timeout(Duration::from_millis(2000))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_rebalance_timeout(Duration::from_millis(4000))
        .with_max_wait(Duration::from_millis(100))
        .with_commit(CommitMode::Interval(Duration::from_millis(100)))
}

/// What members received: (member, partition, offset, value, when).
#[derive(Default)]
pub struct Seen(pub Mutex<Vec<(usize, i32, i64, String, Instant)>>);

impl Seen {
    pub fn values(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (_, _, _, v, _) in self.0.lock().unwrap().iter() {
            *out.entry(v.clone()).or_default() += 1;
        }
        out
    }
    pub fn distinct(&self) -> usize {
        self.values().len()
    }
    pub fn of(&self, member: usize) -> Vec<(i32, i64, String, Instant)> {
        self.0.lock().unwrap().iter().filter(|r| r.0 == member).map(|r| (r.1, r.2, r.3.clone(), r.4)).collect()
    }
}

pub enum Stop {
    Close,
    Abort,
}

pub struct Member {
    stop: oneshot::Sender<Stop>,
    task: tokio::task::JoinHandle<kafkit::Result<()>>,
    info: Arc<Mutex<(i32, Vec<TopicPartition>, bool)>>,
    /// Partitions given up with what was read of them perhaps uncommitted: lost, or
    /// revoked with the member's commit of them refused. Their next owner may read that
    /// tail again; nothing else may be read twice.
    uncommitted: Arc<Mutex<BTreeSet<i32>>>,
    pub events: Arc<Mutex<Vec<(RebalanceKind, Vec<TopicPartition>, Instant)>>>,
}

impl Member {
    pub async fn start(addr: &str, config: ReaderConfig, id: usize, seen: Arc<Seen>) -> Member {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut r = Reader::new(&[addr], config).await.unwrap();
        let mut rx = r.rebalance_events();
        let (stop_tx, mut stop_rx) = oneshot::channel::<Stop>();
        let info = Arc::new(Mutex::new((-1, Vec::new(), false)));
        let events = Arc::new(Mutex::new(Vec::new()));
        let uncommitted = Arc::new(Mutex::new(BTreeSet::new()));
        let (info2, events2, uncommitted2) = (info.clone(), events.clone(), uncommitted.clone());
        let task = tokio::spawn(async move {
            // The last message read of each partition.
            let mut last: BTreeMap<TopicPartition, Message> = BTreeMap::new();
            loop {
                tokio::select! {
                    stop = &mut stop_rx => {
                        return match stop {
                            Ok(Stop::Abort) => { r.abort(); Ok(()) }
                            _ => r.close().await,
                        };
                    }
                    Some(ev) = rx.recv() => {
                        events2.lock().unwrap().push((ev.kind, ev.partitions.clone(), Instant::now()));
                        // As a Java application commits in onPartitionsRevoked.
                        let read: Vec<Message> = ev.partitions.iter().filter_map(|tp| last.remove(tp)).collect();
                        let committed = match ev.kind {
                            RebalanceKind::Revoked => read.is_empty() || r.commit_messages(&read).await.is_ok(),
                            RebalanceKind::Lost => false,
                            _ => true,
                        };
                        if !committed {
                            uncommitted2.lock().unwrap().extend(ev.partitions.iter().map(|tp| tp.partition));
                        }
                        ev.done();
                        *info2.lock().unwrap() = (r.generation(), r.assignment(), r.is_leader());
                    }
                    m = r.read_message() => {
                        let m = m.unwrap();
                        let v = String::from_utf8(m.value.clone().unwrap().to_vec()).unwrap();
                        seen.0.lock().unwrap().push((id, m.partition, m.offset, v, Instant::now()));
                        last.insert(TopicPartition::new(&*m.topic, m.partition), m);
                    }
                }
            }
        });
        Member { stop: stop_tx, task, info, uncommitted, events }
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.info.lock().unwrap().1.clone()
    }
    pub fn is_leader(&self) -> bool {
        self.info.lock().unwrap().2
    }
    pub fn generation(&self) -> i32 {
        self.info.lock().unwrap().0
    }
    /// See the field.
    pub fn uncommitted(&self) -> BTreeSet<i32> {
        self.uncommitted.lock().unwrap().clone()
    }

    /// Stops the member; with [`Stop::Close`], returns what `close` did (its final commit).
    pub async fn stop(self, how: Stop) -> kafkit::Result<()> {
        let _ = self.stop.send(how);
        self.task.await.unwrap()
    }
}

pub async fn produce(w: &Writer, from: usize, to: usize) {
    let msgs: Vec<Message> = (from..to)
        .map(|i| Message::new(Some(Bytes::from(format!("k{i}"))), Some(Bytes::from(format!("v{i}")))))
        .collect();
    w.write_messages(msgs).await.unwrap();
}

pub async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the members' assignments cover all `n` partitions, disjointly.
pub async fn wait_balanced(members: &[&Member], n: usize) {
    wait_until("a balanced assignment", Duration::from_secs(30), || {
        let all: Vec<TopicPartition> = members.iter().flat_map(|m| m.assignment()).collect();
        let set: BTreeSet<&TopicPartition> = all.iter().collect();
        all.len() == n && set.len() == n && members.iter().all(|m| !m.assignment().is_empty())
    })
    .await;
}

/// Closes the members once their last interval commit has gone out (5 intervals of the
/// 100 ms in [`member_config`]), so the final commit at close has nothing left: each close
/// leaves the group, and a broker may then refuse the next member's commit from the old
/// generation (librdkafka's mock answers REBALANCE_IN_PROGRESS; Kafka accepts it until the
/// rebalance completes).
pub async fn close_settled(members: impl IntoIterator<Item = Member>) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    for m in members {
        m.stop(Stop::Close).await.unwrap();
    }
}

/// Waits until the members' assignments cover all `n` partitions disjointly and evenly (the
/// end of a cooperative rebalance, which passes through uneven but covering states).
pub async fn wait_even(members: &[&Member], n: usize) {
    wait_balanced(members, n).await;
    let each = n / members.len();
    wait_until("an even assignment", Duration::from_secs(30), || {
        members.iter().all(|m| m.assignment().len() == each) && {
            let all: BTreeSet<TopicPartition> = members.iter().flat_map(|m| m.assignment()).collect();
            all.len() == n
        }
    })
    .await;
}

/// Starts `n` members (ids 0..n) with the configs `config(id)` gives, recording into `seen`.
pub async fn start_members(
    addr: &str,
    n: usize,
    config: impl Fn(usize) -> ReaderConfig,
    seen: &Arc<Seen>,
) -> Vec<Member> {
    let mut out = Vec::new();
    for id in 0..n {
        out.push(Member::start(addr, config(id), id, seen.clone()).await);
    }
    out
}
