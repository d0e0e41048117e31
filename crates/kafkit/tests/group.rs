//! Consumer groups against a real broker (Apache Kafka): members share a topic's partitions,
//! survive a member's crash without skipping anything, rebalance cooperatively, and keep
//! static assignments across a restart.

mod common;
mod members;

use common::unique_topic;
use kafkit::{
    CommitMode, CooperativeStickyAssignor, Dialer, Message, Reader, ReaderConfig, RebalanceKind, TopicConfig,
    TopicPartition, Writer, WriterConfig,
};
use members::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn topic_with(addr: &str, partitions: i32) -> String {
    let topic = unique_topic("group");
    Dialer::new().dial(addr).await.unwrap().create_topics(&[TopicConfig::new(&topic, partitions)]).await.unwrap();
    topic
}

#[tokio::test]
async fn three_members_process_every_record_exactly_once_and_commit_on_close() {
    let broker = common::kafka();
    let topic = topic_with(&broker.addr(), 12).await;
    let group = unique_topic("g");
    let seen = Arc::new(Seen::default());
    let members = start_members(&broker.addr(), 3, |_| member_config(&group, &topic), &seen).await;
    wait_even(&members.iter().collect::<Vec<_>>(), 12).await;
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&topic)).await.unwrap();
    produce(&w, 0, 3000).await;
    wait_until("all 3000 records", Duration::from_secs(30), || seen.distinct() == 3000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let values = seen.values();
    assert_eq!(values.len(), 3000);
    assert!(values.values().all(|&n| n == 1), "a record was processed twice");
    for id in 0..3 {
        assert!(!seen.of(id).is_empty(), "member {id} processed nothing");
    }
    close_settled(members).await;

    // The members committed what they processed: a new member of the group reads only what
    // is written after.
    let seen2 = Arc::new(Seen::default());
    let late = Member::start(&broker.addr(), member_config(&group, &topic), 9, seen2.clone()).await;
    wait_balanced(&[&late], 12).await;
    produce(&w, 3000, 3010).await;
    wait_until("the 10 new records", Duration::from_secs(20), || seen2.distinct() == 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got: BTreeSet<String> = seen2.values().into_keys().collect();
    let want: BTreeSet<String> = (3000..3010).map(|i| format!("v{i}")).collect();
    assert_eq!(got, want);
    late.stop(Stop::Close).await.unwrap();
}

#[tokio::test]
async fn a_killed_members_partitions_move_and_nothing_is_skipped() {
    let broker = common::kafka();
    let topic = topic_with(&broker.addr(), 12).await;
    let group = unique_topic("g");
    let seen = Arc::new(Seen::default());
    let mut members = start_members(&broker.addr(), 3, |_| member_config(&group, &topic), &seen).await;
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&topic)).await.unwrap();
    // Produce in steps, so the killed member is mid-stream when it dies.
    let producer = {
        let w = w.clone();
        tokio::spawn(async move {
            for step in 0..40 {
                produce(&w, step * 100, step * 100 + 100).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_until("some progress", Duration::from_secs(20), || seen.distinct() >= 1000).await;
    let killed = members.remove(2);
    let killed_parts = killed.assignment();
    killed.stop(Stop::Abort).await.unwrap();
    producer.await.unwrap();
    wait_until("all 4000 records", Duration::from_secs(40), || seen.distinct() == 4000).await;
    // The survivors took the killed member's partitions over.
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    for tp in &killed_parts {
        assert!(members.iter().any(|m| m.assignment().contains(tp)), "{tp} was not taken over");
    }
    // Every duplicate is a record the killed member had received (its uncommitted window),
    // received again by a survivor; per partition they are the tail of what it received.
    let values = seen.values();
    let from_killed: HashMap<String, (i32, i64)> = seen.of(2).into_iter().map(|(p, o, v, _)| (v, (p, o))).collect();
    let mut dup_offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (v, n) in &values {
        if *n > 1 {
            assert_eq!(*n, 2, "{v} processed {n} times");
            let (p, o) =
                from_killed.get(v).unwrap_or_else(|| panic!("{v} duplicated but the killed member never had it"));
            dup_offsets.entry(*p).or_default().push(*o);
        }
    }
    for (p, offsets) in &dup_offsets {
        let received: Vec<i64> = seen.of(2).iter().filter(|r| r.0 == *p).map(|r| r.1).collect();
        let first_dup = *offsets.iter().min().unwrap();
        let tail: Vec<i64> = received.iter().copied().filter(|o| *o >= first_dup).collect();
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, tail, "partition {p}: the duplicates are not the uncommitted tail");
    }
    eprintln!("duplicates after the kill: {}", dup_offsets.values().map(Vec::len).sum::<usize>());
    close_settled(members).await;
}

#[tokio::test]
async fn a_cooperative_join_mid_stream_never_stops_the_kept_partitions() {
    let broker = common::kafka();
    let topic = topic_with(&broker.addr(), 12).await;
    let group = unique_topic("g");
    let seen = Arc::new(Seen::default());
    let coop = |g: &str| member_config(g, &topic).with_assignor(CooperativeStickyAssignor);
    let a = Member::start(&broker.addr(), coop(&group), 0, seen.clone()).await;
    let b = Member::start(&broker.addr(), coop(&group), 1, seen.clone()).await;
    wait_balanced(&[&a, &b], 12).await;
    let (a_before, b_before) = (a.assignment(), b.assignment());
    let generation_before = a.generation();
    // A steady stream: 100 records every 20 ms.
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&topic)).await.unwrap();
    let producer = {
        let w = w.clone();
        tokio::spawn(async move {
            for step in 0..150 {
                produce(&w, step * 100, step * 100 + 100).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joined_at = Instant::now();
    let c = Member::start(&broker.addr(), coop(&group), 2, seen.clone()).await;
    wait_even(&[&a, &b, &c], 12).await;
    let settled_at = Instant::now();
    producer.await.unwrap();
    wait_until("all 15000 records", Duration::from_secs(40), || seen.distinct() == 15000).await;

    assert!(a.generation() > generation_before, "a rebalance happened");
    assert_eq!(c.assignment().len(), 4);
    for (m, id, before) in [(&a, 0, &a_before), (&b, 1, &b_before)] {
        let now: BTreeSet<TopicPartition> = m.assignment().into_iter().collect();
        let kept: Vec<&TopicPartition> = before.iter().filter(|tp| now.contains(tp)).collect();
        assert_eq!(kept.len(), 4, "member {id} keeps 4 of its 6");
        // Only the moved partitions were ever revoked.
        for (kind, parts, _) in m.events.lock().unwrap().iter() {
            if *kind != RebalanceKind::Assigned {
                assert!(
                    parts.iter().all(|tp| !now.contains(tp)),
                    "member {id} had a kept partition {kind:?}: {parts:?}"
                );
            }
        }
        // The kept partitions went on being consumed during the rebalance, from where they
        // were, each offset once.
        let records = seen.of(id);
        for tp in kept {
            let offs: Vec<i64> = records.iter().filter(|r| r.0 == tp.partition).map(|r| r.1).collect();
            assert!(offs.windows(2).all(|w| w[1] == w[0] + 1), "member {id} {tp}: offsets not consecutive");
            let during = records.iter().filter(|r| r.0 == tp.partition && r.3 > joined_at && r.3 < settled_at).count();
            assert!(during > 0, "member {id} stopped consuming kept {tp} during the rebalance");
            eprintln!("member {id} {tp}: {during} records during the {:?} rebalance", settled_at - joined_at);
        }
    }
    assert!(seen.values().values().all(|&n| n == 1), "nothing is processed twice when nothing fails");
    close_settled([a, b, c]).await;
}

/// KIP-345 on the client's side: a static member does not leave the group when it closes,
/// rejoins under its group instance id, and gets its partitions back in the same generation;
/// no partition of the other member moves, and the other member sees no rebalance at all
/// (Kafka hands a follower's known group instance id its old assignment without a JoinGroup
/// round for the others; librdkafka's mock cluster rebalances on every join, see
/// mock_group.rs).
#[tokio::test]
async fn a_static_member_restarting_within_the_session_timeout_gets_its_partitions_back_without_moving_any() {
    let broker = common::kafka();
    let topic = topic_with(&broker.addr(), 6).await;
    let group = unique_topic("g");
    let seen = Arc::new(Seen::default());
    let stat = |id: &str| {
        member_config(&group, &topic)
            .with_session_timeout(Duration::from_secs(6))
            .with_assignor(CooperativeStickyAssignor)
            .with_group_instance_id(id)
    };
    let a = Member::start(&broker.addr(), stat("a"), 0, seen.clone()).await;
    let b = Member::start(&broker.addr(), stat("b"), 1, seen.clone()).await;
    wait_balanced(&[&a, &b], 6).await;
    // Restart the member that is not the leader (a restarting leader makes the broker
    // rebalance unless it supports KIP-814's skip_assignment).
    let (a, b, a_id) = if a.is_leader() { (b, a, "b") } else { (a, b, "a") };
    let (a_parts, b_parts, generation) = (a.assignment(), b.assignment(), b.generation());
    let b_events = b.events.lock().unwrap().len();
    a.stop(Stop::Close).await.unwrap();
    // No LeaveGroup: the group stays as it was while the member is away (a dynamic member's
    // close rebalances at once; see the next test).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b.events.lock().unwrap().len(), b_events, "closing a static member rebalanced the group");
    let a2 = Member::start(&broker.addr(), stat(a_id), 2, seen.clone()).await;
    wait_until("the restarted member's assignment", Duration::from_secs(15), || !a2.assignment().is_empty()).await;
    assert_eq!(a2.assignment(), a_parts, "the same partitions come back");
    assert_eq!(a2.generation(), generation, "in the same generation");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b.assignment(), b_parts, "the other member's partitions did not move");
    assert_eq!(b.generation(), generation);
    let extra: Vec<_> = b.events.lock().unwrap().iter().skip(b_events).map(|e| (e.0, e.1.clone())).collect();
    assert!(extra.is_empty(), "the other member saw a rebalance: {extra:?}");
    close_settled([a2, b]).await;
}

/// The contrast: a dynamic member leaves on close, and the group rebalances into a new
/// generation at once.
#[tokio::test]
async fn a_dynamic_member_leaves_on_close_and_the_group_rebalances() {
    let broker = common::kafka();
    let topic = topic_with(&broker.addr(), 6).await;
    let group = unique_topic("g");
    let seen = Arc::new(Seen::default());
    let a = Member::start(&broker.addr(), member_config(&group, &topic), 0, seen.clone()).await;
    let b = Member::start(&broker.addr(), member_config(&group, &topic), 1, seen.clone()).await;
    wait_balanced(&[&a, &b], 6).await;
    let generation = b.generation();
    a.stop(Stop::Close).await.unwrap();
    wait_until("b to take all 6 partitions", Duration::from_secs(10), || b.assignment().len() == 6).await;
    assert!(b.generation() > generation);
    b.stop(Stop::Close).await.unwrap();
}

async fn fetch_n(r: &mut Reader, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(tokio::time::timeout(Duration::from_secs(20), r.fetch_message()).await.expect("a message").unwrap());
    }
    out
}

#[tokio::test]
async fn explicit_commits_pause_resume_lag_and_a_topic_created_later() {
    let broker = common::kafka();
    let t1 = topic_with(&broker.addr(), 3).await;
    let t2 = unique_topic("later");
    let group = unique_topic("g");
    let config = ReaderConfig::group(&group, [t1.clone(), t2.clone()])
        .with_session_timeout(Duration::from_millis(2000))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_max_wait(Duration::from_millis(100))
        .with_partition_watch_interval(Duration::from_millis(300));
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&t1)).await.unwrap();
    produce(&w, 0, 30).await;
    let got = fetch_n(&mut r, 30).await;
    assert_eq!(r.assignment().len(), 3, "only t1 exists yet");

    // Per-partition lag: everything read, so 0 once the fetches' high watermarks are in.
    let parts = r.partitions();
    assert_eq!(parts.len(), 3);
    for (tp, p) in &parts {
        assert_eq!(p.lag, 0, "{tp}: {p:?}");
        assert_eq!(p.committed, -1, "fetch_message commits nothing");
    }

    // Explicit commits: per partition the highest offset wins; the next offset is committed.
    let p0: Vec<&Message> = got.iter().filter(|m| m.partition == got[0].partition).collect();
    let tp0 = TopicPartition::new(&t1, got[0].partition);
    let mid = p0[p0.len() / 2].clone();
    r.commit_messages(&[p0[0].clone(), mid.clone()]).await.unwrap();
    assert_eq!(r.partitions()[&tp0].committed, mid.offset + 1);
    // A message not yet returned is refused, and commits nothing.
    let mut ahead = mid.clone();
    ahead.offset = 1000;
    let err = r.commit_messages(&[ahead]).await.unwrap_err();
    assert!(matches!(err, kafkit::Error::CommitFailed(_)), "{err}");
    assert_eq!(r.partitions()[&tp0].committed, mid.offset + 1);

    // Pause keeps what was fetched: write to every partition, let it be fetched, pause
    // tp0, and only the other partitions' messages come; after resume tp0's come too.
    produce(&w, 30, 60).await;
    wait_until("the new messages to be fetched", Duration::from_secs(10), || {
        r.partitions().values().all(|p| p.high_watermark >= 20)
    })
    .await;
    r.pause(std::slice::from_ref(&tp0));
    assert!(r.partitions()[&tp0].paused);
    let mut during = Vec::new();
    while let Ok(m) = tokio::time::timeout(Duration::from_millis(700), r.fetch_message()).await {
        during.push(m.unwrap());
    }
    assert!(!during.is_empty() && during.iter().all(|m| m.partition != tp0.partition), "paused {tp0} was read");
    assert!(r.stats().buffered_bytes > 0, "the paused partition's messages stay buffered");
    r.resume(std::slice::from_ref(&tp0));
    let rest = fetch_n(&mut r, 30 - during.len()).await;
    let all: BTreeSet<String> = during
        .iter()
        .chain(rest.iter())
        .map(|m| String::from_utf8(m.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(all, (30..60).map(|i| format!("v{i}")).collect::<BTreeSet<_>>());

    // The ends of t1's partitions, taken before the rebalance below resets their state.
    let hw: BTreeMap<i32, i64> = r.partitions().iter().map(|(tp, p)| (tp.partition, p.high_watermark)).collect();
    // A subscribed topic created while the group runs is picked up by the leader's watch.
    Dialer::new().dial(&broker.addr()).await.unwrap().create_topics(&[TopicConfig::new(&t2, 2)]).await.unwrap();
    let w2 = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&t2)).await.unwrap();
    produce(&w2, 100, 104).await;
    // The rebalance (eager, range) revoked t1's partitions and assigned them again: reading
    // restarts from the committed offsets, so t1's uncommitted messages come again (tp0 from
    // the explicit commit on, the others from the start).
    let want: BTreeMap<i32, Vec<i64>> =
        hw.iter().map(|(p, h)| (*p, ((if *p == tp0.partition { mid.offset + 1 } else { 0 })..*h).collect())).collect();
    let total: usize = want.values().map(Vec::len).sum();
    let mut new = Vec::new();
    let mut again: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    while new.len() < 4 || again.values().map(Vec::len).sum::<usize>() < total {
        let m = tokio::time::timeout(Duration::from_secs(20), r.fetch_message()).await.expect("a message").unwrap();
        if *m.topic == *t2 {
            new.push(m);
        } else {
            again.entry(m.partition).or_default().push(m.offset);
        }
    }
    assert_eq!(r.assignment().len(), 5);
    assert_eq!(again, want);
    r.close().await.unwrap();
}

#[tokio::test]
async fn on_read_commits_what_earlier_reads_returned() {
    let broker = common::kafka();
    let topic = topic_with(&broker.addr(), 1).await;
    let group = unique_topic("g");
    let config = member_config(&group, &topic).with_commit(CommitMode::OnRead);
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&topic)).await.unwrap();
    produce(&w, 0, 5).await;
    let tp = TopicPartition::new(&topic, 0);
    for i in 0..5 {
        let m = r.read_message().await.unwrap();
        assert_eq!(m.offset, i);
        // Committed: what the reads before this one returned, never this one.
        assert_eq!(r.partitions()[&tp].committed, if i == 0 { -1 } else { i });
    }
    // Close commits the last one.
    r.close().await.unwrap();
    let mut again = Reader::new(&[&broker.addr()], member_config(&group, &topic)).await.unwrap();
    produce(&w, 5, 6).await;
    let m = again.read_message().await.unwrap();
    assert_eq!(m.offset, 5, "everything before was committed");
    again.close().await.unwrap();
}
