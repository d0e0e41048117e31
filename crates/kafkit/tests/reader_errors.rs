//! How a `Reader`'s errors reach the application, against real brokers (Apache Kafka): a
//! fatal group error fails every later read and commit until the reader is closed; a failed
//! partition fails every read until it is sought; a reader whose only broker is gone returns
//! `NoBrokerReachable` (retriable) and reads again once the broker is back.

mod common;

use bytes::Bytes;
use common::{unique_topic, Cluster, ClusterOptions};
use kafkit::protocol::ErrorCode;
use kafkit::{
    ClusterConfig, Error, Message, OffsetReset, RangeAssignor, Reader, ReaderConfig, RoundRobinAssignor, StartOffset,
    TopicConfig, Writer, WriterConfig,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn topic_with(addr: &str, partitions: i32, records: usize) -> String {
    let topic = unique_topic("rerr");
    common::create_topics(addr, &[TopicConfig::new(&topic, partitions)]).await;
    if records > 0 {
        let w = Writer::new(&[addr], WriterConfig::default().with_topic(&topic)).await.unwrap();
        let msgs = (0..records).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(i.to_string())))).collect();
        w.write_messages(msgs).await.unwrap();
        w.close().await.unwrap();
    }
    topic
}

/// A read that must end within `limit` (a read that waits forever fails the test).
/// The first message `r` reads once its broker is back (within `limit` of `restarted`), and
/// how many NoBrokerReachable it returned meanwhile; any other error fails the test.
async fn read_again(r: &mut Reader, restarted: Instant, limit: Duration, what: &str) -> (Message, usize) {
    let mut unreachable = 0;
    loop {
        assert!(restarted.elapsed() < limit, "{what}: no read within {limit:?} of the restart");
        match r.read_message().await {
            Ok(m) => return (m, unreachable),
            Err(Error::NoBrokerReachable { .. }) => unreachable += 1,
            Err(e) => panic!("{what}: unexpected error after the restart: {e}"),
        }
    }
}

async fn within<T>(limit: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => panic!("{what}: no answer within {limit:?}"),
    }
}

#[tokio::test]
async fn a_fatal_group_error_fails_every_later_read_and_commit_until_closed() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = topic_with(&addr, 2, 0).await;
    let group = unique_topic("g-rerr");
    let cfg = |a: Arc<dyn kafkit::consumer::Assignor>| {
        let mut c = ReaderConfig::group(&group, [&topic])
            .with_session_timeout(Duration::from_secs(10))
            .with_heartbeat_interval(Duration::from_millis(300))
            .with_rebalance_timeout(Duration::from_secs(5))
            .with_max_wait(Duration::from_millis(100));
        c.assignors = vec![a];
        c
    };
    // The group's protocol is "range"; a member offering only "roundrobin" is refused by the
    // coordinator with INCONSISTENT_GROUP_PROTOCOL, which the reader cannot get past.
    let first = Reader::new(&[&addr], cfg(Arc::new(RangeAssignor))).await.unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while first.assignment().len() != 2 {
        assert!(Instant::now() < until, "the first member never got its partitions");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut odd = Reader::new(&[&addr], cfg(Arc::new(RoundRobinAssignor))).await.unwrap();
    let started = Instant::now();
    let e1 = within(Duration::from_secs(30), "first read", odd.read_message()).await.unwrap_err();
    println!("first read failed after {:?}: {e1}", started.elapsed());
    assert_eq!(e1.error_code(), Some(ErrorCode::InconsistentGroupProtocol), "{e1}");
    assert!(e1.to_string().contains(&group), "the error names the group: {e1}");
    assert!(!e1.is_retriable());
    // Every later read and commit fails at once with the same error.
    for i in 0..5 {
        let e = within(Duration::from_secs(2), "a later read", odd.read_message()).await.unwrap_err();
        assert_eq!(e.to_string(), e1.to_string(), "read {i}");
        let e = within(Duration::from_secs(2), "a later fetch", odd.fetch_message()).await.unwrap_err();
        assert_eq!(e.to_string(), e1.to_string(), "fetch {i}");
        let e = within(Duration::from_secs(2), "a later commit", odd.commit_messages(&[])).await.unwrap_err();
        assert_eq!(e.to_string(), e1.to_string(), "commit {i}");
    }
    assert!(odd.stats().errors >= 1);
    within(Duration::from_secs(10), "close", odd.close()).await.unwrap();
    // The first member was not disturbed.
    assert_eq!(first.assignment().len(), 2);
    first.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_partition_fails_every_read_until_it_is_sought() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = topic_with(&addr, 1, 3).await;
    // Offset 100 is past the end of a 3-record log: OFFSET_OUT_OF_RANGE, and no reset.
    let cfg = ReaderConfig::new(&topic, 0)
        .with_start(StartOffset::At(100))
        .with_reset(OffsetReset::Fail)
        .with_max_wait(Duration::from_millis(100));
    let mut r = Reader::new(&[&addr], cfg).await.unwrap();
    let e1 = within(Duration::from_secs(10), "first read", r.read_message()).await.unwrap_err();
    assert_eq!(e1.error_code(), Some(ErrorCode::OffsetOutOfRange), "{e1}");
    let text = e1.to_string();
    println!("{text}");
    assert!(text.contains(&format!("{topic}/0")), "the error names topic and partition: {text}");
    assert!(text.contains(&addr), "the error names the broker: {text}");
    for i in 0..5 {
        let e = within(Duration::from_secs(2), "a later read", r.read_message()).await.unwrap_err();
        assert_eq!(e.to_string(), text, "read {i}");
        let e = within(Duration::from_secs(2), "a later fetch", r.fetch_message()).await.unwrap_err();
        assert_eq!(e.to_string(), text, "fetch {i}");
    }
    let resets = r.stats().resets;
    // A seek clears the failure; reading goes on from there.
    r.set_offset(1).unwrap();
    let m = within(Duration::from_secs(10), "read after the seek", r.read_message()).await.unwrap();
    assert_eq!(m.offset, 1);
    assert_eq!(r.read_message().await.unwrap().offset, 2);
    assert_eq!(resets, 1, "the failed partition was not fetched again while failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_without_brokers_returns_no_broker_reachable_then_reads_again() {
    common::init_tracing();
    let cluster = Cluster::start(ClusterOptions::default());
    let addr = cluster.addr();
    let topic = topic_with(&addr, 1, 2).await;
    let cc = ClusterConfig { retry_timeout: Duration::from_secs(3), ..Default::default() };
    let cfg = ReaderConfig::new(&topic, 0).with_cluster(cc).with_max_wait(Duration::from_millis(200));
    let mut r = Reader::new(&[&addr], cfg.clone()).await.unwrap();
    assert_eq!(r.read_message().await.unwrap().offset, 0);
    assert_eq!(r.read_message().await.unwrap().offset, 1);
    // A group member too, which with nothing left to fetch only heartbeats.
    let mut gcfg = ReaderConfig::group(unique_topic("g-rerr"), [&topic])
        .with_session_timeout(Duration::from_secs(10))
        .with_heartbeat_interval(Duration::from_millis(300))
        .with_rebalance_timeout(Duration::from_secs(5))
        .with_max_wait(Duration::from_millis(200));
    gcfg.cluster = cfg.cluster.clone();
    let mut g = Reader::new(&[&addr], gcfg).await.unwrap();
    assert_eq!(within(Duration::from_secs(30), "group read", g.read_message()).await.unwrap().offset, 0);
    let m1 = g.read_message().await.unwrap();
    assert_eq!(m1.offset, 1);
    g.commit_messages(&[m1]).await.unwrap();

    // Taken before the kill: the broker is gone before `kill` returns.
    let killed = Instant::now();
    tokio::task::block_in_place(|| cluster.kill(1));
    let limit = Duration::from_secs(20);
    let ((e, after), ge) = tokio::join!(
        async {
            let e = within(limit, "read with the broker gone", r.read_message()).await;
            (e, killed.elapsed())
        },
        within(limit, "group read with the broker gone", g.read_message())
    );
    let (e, ge) = (e.unwrap_err(), ge.unwrap_err());
    println!("NoBrokerReachable after {after:?}: {e}; group member: {ge}");
    for e in [&e, &ge] {
        assert!(matches!(e, Error::NoBrokerReachable { .. }), "{e}");
        assert!(e.is_retriable());
        assert!(e.to_string().contains(&addr), "the error names the broker: {e}");
    }
    // The retry timeout counts from the last answer: the last fetch, at most max_wait (200
    // ms) before the kill.
    assert!(after >= Duration::from_millis(2700), "not before the retry timeout: {after:?}");
    // The next error comes a retry timeout after the last one, not at once (no busy loop);
    // reads with short timeouts of their own meanwhile get nothing.
    let again = killed + after;
    let short = tokio::time::timeout(Duration::from_millis(500), r.read_message()).await;
    assert!(short.is_err(), "a read right after NoBrokerReachable waits: {short:?}");
    let e = within(limit, "second read", r.fetch_message()).await.unwrap_err();
    assert!(matches!(e, Error::NoBrokerReachable { .. }), "{e}");
    assert!(again.elapsed() >= Duration::from_millis(2900), "{:?}", again.elapsed());

    tokio::task::block_in_place(|| cluster.restart(1));
    let restarted = Instant::now();
    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic)).await.unwrap();
    w.write_messages(vec![Message::new(None::<Bytes>, Some(Bytes::from("after")))]).await.unwrap();
    let (m, unreachable) = read_again(&mut r, restarted, Duration::from_secs(60), "partition reader").await;
    println!("read again {:?} after the restart ({unreachable} NoBrokerReachable meanwhile)", restarted.elapsed());
    assert_eq!((m.offset, m.value.as_deref()), (2, Some(&b"after"[..])));
    let (m, unreachable) = read_again(&mut g, restarted, Duration::from_secs(90), "group member").await;
    println!("group member read again {:?} after the restart ({unreachable} NoBrokerReachable)", restarted.elapsed());
    assert_eq!(m.offset, 2);
    r.close().await.unwrap();
    g.close().await.unwrap();
}
