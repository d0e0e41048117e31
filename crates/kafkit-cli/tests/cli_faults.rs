//! The fault suite's scenario f (issue 14): consumer-group members killed with `kill -9`
//! while partition leaders move, on a dedicated three-node Apache Kafka 4.4 cluster. The
//! members are `kafkit consume -g` processes (each commits what it has printed, every
//! 500 ms); the test kills one every few seconds with SIGKILL and starts another, while one
//! broker after another is stopped and started again. Nothing is skipped, and the only records
//! read twice are ones a killed member had printed and not yet committed.

mod run;

use bytes::Bytes;
use kafkit::{ClusterConfig, Message, TopicConfig, Writer, WriterConfig};
use kafkit_testbed::{Cluster, ClusterOptions, Listener};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What every member printed: (member, partition, offset).
type Printed = Arc<Mutex<Vec<(usize, i32, i64)>>>;

/// Starts member `id`: `kafkit consume TOPIC -g GROUP -f json`, its stdout read by a thread.
fn member(seeds: &str, topic: &str, group: &str, id: usize, printed: &Printed) -> Child {
    let mut child = run::command(seeds, &["consume", topic, "-g", group, "-f", "json", "--session-timeout", "6s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start kafkit consume");
    let out = child.stdout.take().expect("stdout");
    let printed = printed.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
            let (p, o) = (v["partition"].as_i64().expect("partition"), v["offset"].as_i64().expect("offset"));
            printed.lock().unwrap().push((id, p as i32, o));
        }
    });
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn f_group_members_killed_while_leaders_move_skip_nothing() {
    let cluster = Cluster::start(ClusterOptions::default().nodes(3));
    let seeds = cluster.addrs_on(Listener::Plaintext);
    let s: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let bootstrap = seeds.join(",");
    let topic = kafkit_testbed::unique("fault-members");
    let group = kafkit_testbed::unique("fault-members-group");
    let admin = kafkit::admin::Client::new(&s, ClusterConfig::default()).await.unwrap();
    let created = admin.create_topics(&[TopicConfig::new(&topic, 6)], false).await.unwrap();
    assert!(created[&topic].is_ok(), "{created:?}");

    // The writer: 20,000 records at about 500 a second, each acknowledged (acks=all).
    let n = 20_000u64;
    let w = Writer::new(&s, WriterConfig::default().with_topic(&topic).with_linger(Duration::from_millis(5)))
        .await
        .unwrap();
    let writing = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut pending = Vec::new();
        for seq in 0..n {
            if seq % 100 == 0 {
                tick.tick().await;
            }
            pending.push(w.write(Message::new(None::<Bytes>, Some(Bytes::from(format!("{seq:012}"))))).await.unwrap());
        }
        let mut written = BTreeSet::new();
        for p in pending {
            let d = p.await.expect("every record acknowledged");
            written.insert((d.partition, d.offset));
        }
        w.close().await.unwrap();
        written
    });

    let printed: Printed = Arc::default();
    let mut next_id = 0;
    let mut members: Vec<(usize, Child)> = (0..3)
        .map(|_| {
            next_id += 1;
            (next_id, member(&bootstrap, &topic, &group, next_id, &printed))
        })
        .collect();
    let mut killed = BTreeSet::new();
    // Kill a member every 4 s (the oldest), and start another; every third kill, also
    // restart a broker (a controlled shutdown: its partitions' leaders move).
    let mut node = 0;
    let t0 = Instant::now();
    let mut rng = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1;
    eprintln!("f: victims chosen with seed {rng}");
    while !writing.is_finished() {
        let wait = Instant::now();
        while wait.elapsed() < Duration::from_secs(4) && !writing.is_finished() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let victim = (rng % members.len() as u64) as usize;
        let (id, mut child) = members.remove(victim);
        child.kill().expect("kill -9"); // SIGKILL
        child.wait().unwrap();
        killed.insert(id);
        next_id += 1;
        members.push((next_id, member(&bootstrap, &topic, &group, next_id, &printed)));
        if killed.len() % 3 == 1 {
            node = node % 3 + 1;
            let c = &cluster;
            let i = node;
            tokio::task::block_in_place(|| {
                c.stop(i);
                c.restart(i);
            });
            eprintln!("f: node {i} restarted ({:?} in)", t0.elapsed());
        }
    }
    let written = writing.await.unwrap();
    eprintln!("f: {} records written, {} members killed, in {:?}", written.len(), killed.len(), t0.elapsed());

    // Every written record is printed by some member.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got: BTreeSet<(i32, i64)> = printed.lock().unwrap().iter().map(|(_, p, o)| (*p, *o)).collect();
        let missing = written.difference(&got).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "f: {missing} records never read after 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No commit passes what was printed.
    let committed = admin.fetch_offsets(&group, None).await.unwrap();
    {
        let printed = printed.lock().unwrap();
        for (tp, off) in &committed {
            let max = printed.iter().filter(|(_, p, _)| *p == tp.partition).map(|(_, _, o)| o + 1).max().unwrap_or(0);
            assert!(*off <= max, "{tp}: committed {off}, but only up to {max} was printed");
        }
    }
    for (_, mut c) in members {
        c.kill().ok();
        c.wait().ok();
    }
    // A record printed twice was first printed by a member killed before committing it.
    let printed = std::mem::take(&mut *printed.lock().unwrap());
    let mut first: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let mut twice = 0;
    for (id, p, o) in &printed {
        match first.get(&(*p, *o)) {
            None => {
                first.insert((*p, *o), *id);
            }
            Some(by) => {
                twice += 1;
                assert!(
                    killed.contains(by),
                    "({p}, {o}) read again though member {by}, which printed it, was not killed"
                );
            }
        }
    }
    let foreign = first.keys().filter(|k| !written.contains(k)).count();
    assert_eq!(foreign, 0, "records read that were never written");
    eprintln!(
        "f: {} printed, {} distinct, {twice} read twice (the killed members' uncommitted tails), 0 skipped",
        printed.len(),
        first.len()
    );
}
