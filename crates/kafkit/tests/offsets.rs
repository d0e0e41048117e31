//! Offsets on Apache Kafka (the shared single node): looking records up by their
//! timestamps (`Reader::set_offset_at`, the admin `list_offsets`), lag against the high
//! watermark, and `delete_records` moving the log start offset under readers, whose
//! `OffsetReset` decides where they continue.

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::admin::{Client, ListedOffset, OffsetSpec};
use kafkit::protocol::ErrorCode;
use kafkit::{
    ClusterConfig, CommitMode, Dialer, IsolationLevel, Message, OffsetReset, Reader, ReaderConfig, StartOffset,
    TopicConfig, TopicPartition,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// 2023-11-14T22:13:20Z: far from now, so no record written by the clock can match.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000)
}

fn secs(s: f64) -> Duration {
    Duration::from_millis((s * 1000.0) as u64)
}

/// Writes one record per timestamp (seconds after `t0`) to `topic`/`partition`, `per_batch`
/// records per Produce; values are `v<offset-in-this-call>`.
async fn write_at(addr: &str, topic: &str, partition: i32, times: &[f64], per_batch: usize) {
    let pc = Dialer::new().dial_leader(addr, topic, partition).await.unwrap();
    let msgs: Vec<Message> = times
        .iter()
        .enumerate()
        .map(|(i, s)| Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}")))).with_time(t0() + secs(*s)))
        .collect();
    for chunk in msgs.chunks(per_batch) {
        pc.write_messages(chunk).await.unwrap();
    }
}

async fn admin(addr: &str) -> Client {
    Client::new(&[addr], ClusterConfig::default()).await.unwrap()
}

/// The next message, or `None` when none comes within `ms`.
async fn next_within(r: &mut Reader, ms: u64) -> Option<Message> {
    match tokio::time::timeout(Duration::from_millis(ms), r.read_message()).await {
        Ok(m) => Some(m.unwrap()),
        Err(_) => None,
    }
}

fn reader_config(topic: &str, partition: i32) -> ReaderConfig {
    ReaderConfig::new(topic, partition).with_max_wait(Duration::from_millis(100))
}

#[tokio::test]
async fn set_offset_at_finds_records_by_their_timestamps() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = unique_topic("off-time");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 2)]).await;
    // Partition 0: ten records a second apart, in batches of three (lookups land inside
    // batches too). Partition 1: five records two seconds apart.
    write_at(&addr, &topic, 0, &(0..10).map(f64::from).collect::<Vec<_>>(), 3).await;
    write_at(&addr, &topic, 1, &[0.0, 2.0, 4.0, 6.0, 8.0], 5).await;

    let mut r = Reader::new(&[&addr], reader_config(&topic, 0)).await.unwrap();
    r.set_offset_at(t0() + secs(4.5)).await.unwrap();
    assert_eq!(r.offset(), 5);
    let m = r.read_message().await.unwrap();
    assert_eq!((m.offset, m.time), (5, Some(t0() + secs(5.0))));
    r.set_offset_at(t0() + secs(3.0)).await.unwrap();
    assert_eq!(r.read_message().await.unwrap().offset, 3, "a record exactly at the time is found");
    r.set_offset_at(t0() - Duration::from_secs(86_400)).await.unwrap();
    assert_eq!(r.read_message().await.unwrap().offset, 0, "a time before every record: the first");

    // Past the last record Kafka answers -1: the reader goes to the end of the log and
    // reads only what is written from then on.
    r.set_offset_at(t0() + secs(9.001)).await.unwrap();
    assert_eq!(r.offset(), 10);
    assert!(next_within(&mut r, 700).await.is_none(), "nothing is read past the end");
    write_at(&addr, &topic, 0, &[1.0], 1).await; // an old timestamp, but a new offset
    let m = next_within(&mut r, 10_000).await.expect("the record written after the lookup");
    assert_eq!((m.offset, m.value.as_deref()), (10, Some(&b"v0"[..])));

    // Several partitions move each on its own (Java offsetsForTimes, then seek).
    let parts = [TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1)];
    let mut all = Reader::new(&[&addr], ReaderConfig::assign(parts.clone()).with_max_wait(Duration::from_millis(100)))
        .await
        .unwrap();
    all.set_offset_at(t0() + secs(5.0)).await.unwrap();
    let pos: Vec<i64> = all.partitions().values().map(|p| p.position).collect();
    assert_eq!(pos, [5, 3], "p0: the record at 5 s; p1: the one at 6 s");
    let mut got = BTreeMap::<i32, Vec<i64>>::new();
    while let Some(m) = next_within(&mut all, 1000).await {
        got.entry(m.partition).or_default().push(m.offset);
    }
    assert_eq!(got, BTreeMap::from([(0, vec![5, 6, 7, 8, 9, 10]), (1, vec![3, 4])]));
    all.set_offset_at(t0() + secs(8.5)).await.unwrap();
    let pos: Vec<i64> = all.partitions().values().map(|p| p.position).collect();
    assert_eq!(pos, [9, 5], "p0: the record at 9 s; p1: past its last record, its end");
}

#[tokio::test]
async fn timestamp_lookups_follow_offset_order_and_max_timestamp() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = unique_topic("off-ooo");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    // Out of order, as CreateTime allows: 10 s, 5 s, 20 s, 15 s.
    write_at(&addr, &topic, 0, &[10.0, 5.0, 20.0, 15.0], 1).await;
    let admin = admin(&addr).await;
    let tp = TopicPartition::new(&topic, 0);
    let at = |s: f64| (tp.clone(), OffsetSpec::Time(t0() + secs(s)));
    for (spec, want) in [
        // Kafka: the FIRST offset (in offset order) whose timestamp is at or after the time.
        (at(12.0), (2, Some(t0() + secs(20.0)))),
        (at(6.0), (0, Some(t0() + secs(10.0)))),
        (at(1.0), (0, Some(t0() + secs(10.0)))),
        (at(16.0), (2, Some(t0() + secs(20.0)))),
        (at(20.5), (-1, None)),
        // The record with the largest timestamp (KIP-734, ListOffsets v7+).
        ((tp.clone(), OffsetSpec::MaxTimestamp), (2, Some(t0() + secs(20.0)))),
        ((tp.clone(), OffsetSpec::Earliest), (0, None)),
        ((tp.clone(), OffsetSpec::Latest), (4, None)),
    ] {
        let got = admin.list_offsets(std::slice::from_ref(&spec), IsolationLevel::ReadUncommitted).await.unwrap();
        let ListedOffset { offset, timestamp, leader_epoch } = *got[&tp].as_ref().unwrap();
        assert_eq!((offset, timestamp), want, "{spec:?}");
        // The leader epoch of the record found: 0 on a new topic, -1 when none was.
        assert_eq!(leader_epoch, if offset < 0 { -1 } else { 0 }, "{spec:?}");
    }
    // A reader follows the same rule.
    let mut r = Reader::new(&[&addr], reader_config(&topic, 0)).await.unwrap();
    r.set_offset_at(t0() + secs(12.0)).await.unwrap();
    assert_eq!(r.read_message().await.unwrap().offset, 2);
    // A partition the topic lacks is an error of that item only.
    let missing = TopicPartition::new(&topic, 5);
    let got = admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Latest), (missing.clone(), OffsetSpec::Latest)], Default::default())
        .await
        .unwrap();
    assert_eq!(got[&tp].as_ref().unwrap().offset, 4);
    assert_eq!(got[&missing].as_ref().unwrap_err().error_code(), Some(ErrorCode::UnknownTopicOrPartition));
}

#[tokio::test]
async fn read_lag_and_lag_follow_the_high_watermark() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = unique_topic("off-lag");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    write_at(&addr, &topic, 0, &[0.0; 10], 4).await;
    let mut r = Reader::new(&[&addr], reader_config(&topic, 0)).await.unwrap();
    assert_eq!(r.read_lag().await.unwrap(), 10, "nothing read yet: the whole log");
    for want in 0..4 {
        assert_eq!(r.read_message().await.unwrap().offset, want);
    }
    assert_eq!((r.offset(), r.read_lag().await.unwrap()), (4, 6));
    // lag() uses the high watermark of the last fetch: the broker's, 10.
    assert_eq!(r.lag(), 6);
    assert_eq!(r.partitions()[&TopicPartition::new(&topic, 0)].high_watermark, 10);
    write_at(&addr, &topic, 0, &[0.0; 5], 5).await;
    assert_eq!(r.read_lag().await.unwrap(), 11, "read_lag asks the leader: 15 - 4");
    let admin = admin(&addr).await;
    let tp = TopicPartition::new(&topic, 0);
    let end = admin.list_offsets(&[(tp.clone(), OffsetSpec::Latest)], Default::default()).await.unwrap();
    assert_eq!(end[&tp].as_ref().unwrap().offset, 15);
    while r.offset() < 15 {
        r.read_message().await.unwrap();
    }
    assert_eq!((r.read_lag().await.unwrap(), r.lag()), (0, 0));
    // read_lag needs one partition.
    let g = Reader::new(&[&addr], ReaderConfig::group(unique_topic("off-lag-g"), std::slice::from_ref(&topic)))
        .await
        .unwrap();
    assert!(matches!(g.read_lag().await, Err(kafkit::Error::InvalidArgument(_))));
    g.abort();
}

#[tokio::test]
async fn delete_records_moves_the_log_start_and_readers_behind_it_reset() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = unique_topic("off-del");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 2)]).await;
    write_at(&addr, &topic, 0, &[0.0; 10], 2).await;
    let admin = admin(&addr).await;
    let (p0, p1) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1));

    // Before offset 5 (inside the batch of offsets 4-5): the new log start offset is 5.
    let missing = TopicPartition::new(&topic, 9);
    let r =
        admin.delete_records(&BTreeMap::from([(p0.clone(), 5), (p1.clone(), 1), (missing.clone(), 0)])).await.unwrap();
    assert_eq!(*r[&p0].as_ref().unwrap(), 5);
    // Past the high watermark (0 on the empty partition 1): OFFSET_OUT_OF_RANGE.
    assert_eq!(r[&p1].as_ref().unwrap_err().error_code(), Some(ErrorCode::OffsetOutOfRange));
    assert_eq!(r[&missing].as_ref().unwrap_err().error_code(), Some(ErrorCode::UnknownTopicOrPartition));
    let spec = |s| [(p0.clone(), s)];
    let earliest = admin.list_offsets(&spec(OffsetSpec::Earliest), Default::default()).await.unwrap();
    let latest = admin.list_offsets(&spec(OffsetSpec::Latest), Default::default()).await.unwrap();
    assert_eq!((earliest[&p0].as_ref().unwrap().offset, latest[&p0].as_ref().unwrap().offset), (5, 10));

    // A fetch at the log start: the whole batch 4-5 comes back, offset 4 is left out, and
    // the response carries the log start offset. Behind it: OFFSET_OUT_OF_RANGE.
    let mut pc = Dialer::new().dial_leader(&addr, &topic, 0).await.unwrap();
    assert_eq!(pc.read_offsets().await.unwrap(), (5, 10));
    pc.seek(5);
    let b = pc.read_batch(1, 1 << 20).await.unwrap();
    assert_eq!((b.log_start_offset, b.messages[0].offset), (5, 5));
    pc.seek(3);
    let err = pc.read_batch(1, 1 << 20).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::OffsetOutOfRange), "{err}");

    // Readers asked to start behind the log start continue per their OffsetReset.
    let behind = |reset| reader_config(&topic, 0).with_start(StartOffset::At(2)).with_reset(reset);
    let mut earliest = Reader::new(&[&addr], behind(OffsetReset::Earliest)).await.unwrap();
    assert_eq!(earliest.read_message().await.unwrap().offset, 5);
    assert_eq!(earliest.stats().resets, 1);
    let mut latest = Reader::new(&[&addr], behind(OffsetReset::Latest)).await.unwrap();
    let mut fail = Reader::new(&[&addr], behind(OffsetReset::Fail)).await.unwrap();
    let started = Instant::now();
    let err = fail.read_message().await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::OffsetOutOfRange), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "failed at once: {:?}", started.elapsed());
    assert!(next_within(&mut latest, 700).await.is_none(), "Latest: nothing until something is written");
    assert_eq!(latest.offset(), 10);
    write_at(&addr, &topic, 0, &[0.0], 1).await;
    assert_eq!(next_within(&mut latest, 10_000).await.expect("the new record").offset, 10);

    // A reader that has read everything is moved behind a newer log start: it resets.
    while earliest.offset() < 11 {
        earliest.read_message().await.unwrap();
    }
    let r = admin.delete_records(&BTreeMap::from([(p0.clone(), -1)])).await.unwrap();
    assert_eq!(*r[&p0].as_ref().unwrap(), 11, "-1: up to the high watermark");
    earliest.set_offset(7).unwrap();
    assert!(next_within(&mut earliest, 700).await.is_none(), "every record is deleted");
    assert_eq!(earliest.offset(), 11, "reset to the log start, which is the end now");
    assert_eq!(earliest.stats().resets, 2);
}

#[tokio::test]
async fn a_group_whose_committed_offset_was_deleted_resets() {
    let broker = common::kafka();
    let addr = broker.addr();
    let topic = unique_topic("off-gdel");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    write_at(&addr, &topic, 0, &[0.0; 10], 10).await;
    let admin = admin(&addr).await;
    let tp = TopicPartition::new(&topic, 0);
    let group = unique_topic("off-gdel-g");
    let set = admin.alter_offsets(&group, &BTreeMap::from([(tp.clone(), 2)])).await.unwrap();
    assert!(set[&tp].is_ok(), "{set:?}");
    let r = admin.delete_records(&BTreeMap::from([(tp.clone(), 6)])).await.unwrap();
    assert_eq!(*r[&tp].as_ref().unwrap(), 6);
    // The committed offset 2 is behind the log start 6: the member resets (Earliest).
    let config = ReaderConfig::group(&group, std::slice::from_ref(&topic))
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_millis(500))
        .with_max_wait(Duration::from_millis(100))
        .with_commit(CommitMode::OnRead);
    let mut member = Reader::new(&[&addr], config).await.unwrap();
    let first = member.read_message().await.unwrap();
    assert_eq!(first.offset, 6);
    assert_eq!(member.stats().resets, 1);
    assert_eq!(member.read_message().await.unwrap().offset, 7);
    member.close().await.unwrap();
    assert_eq!(
        admin.fetch_offsets(&group, None).await.unwrap(),
        BTreeMap::from([(tp, 8)]),
        "close commits what was read"
    );
}
