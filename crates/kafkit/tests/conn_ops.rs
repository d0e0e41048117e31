//! kafka-go's `Conn` operations against Apache Kafka (the shared single node): topics,
//! partitions, brokers, the controller, and a partition leader's writes, reads, seeks and
//! offsets, with every codec.

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::{Acks, Compression, Dialer, Error, Message, TopicConfig};
use kafkit_protocol::ErrorCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn topics_partitions_brokers_and_controller() {
    let broker = common::kafka();
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    let (a, b) = (unique_topic("ops-a"), unique_topic("ops-b"));
    common::create_topics(
        &broker.addr(),
        &[
            TopicConfig::new(&a, 3).with_replication_factor(1),
            TopicConfig::new(&b, 2).with_replication_factor(1).with_config("cleanup.policy", "compact"),
        ],
    )
    .await;

    let parts = conn.read_partitions(&[&a, &b]).await.unwrap();
    let ids: Vec<(String, i32)> = parts.iter().map(|p| (p.topic.clone(), p.id)).collect();
    let mut want = vec![(a.clone(), 0), (a.clone(), 1), (a.clone(), 2), (b.clone(), 0), (b.clone(), 1)];
    want.sort();
    assert_eq!(ids, want);
    // The single node is node 1 (scripts/kafka.sh numbers nodes from 1): every partition's
    // leader, sole replica and sole in-sync replica, at leader epoch 0 for a new topic.
    for p in &parts {
        assert_eq!(p.leader.as_ref().map(|l| (l.id, l.addr())), Some((1, broker.addr())), "{p:?}");
        assert_eq!((&p.replicas[..], &p.isr[..], p.offline_replicas.is_empty()), (&[1][..], &[1][..], true));
        assert_eq!(p.leader_epoch, 0, "{p:?}");
    }

    let brokers = conn.brokers().await.unwrap();
    assert_eq!(brokers.iter().map(|b| (b.id, b.addr())).collect::<Vec<_>>(), [(1, broker.addr())]);
    // KRaft: Metadata names a live broker as "the controller" (clients cannot reach the
    // quorum; brokers forward controller requests). Here that is node 1, which is both.
    let controller = conn.controller().await.unwrap();
    assert_eq!((controller.id, controller.addr()), (1, broker.addr()));

    let err = conn.create_topics(&[TopicConfig::new(&a, 1)]).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::TopicAlreadyExists), "{err}");
    assert!(err.to_string().contains("already exists"), "Kafka's message is kept: {err}");
    assert!(!err.is_retriable());

    conn.delete_topics(&[&a]).await.unwrap();
    // Deletion reaches the broker's metadata a moment after DeleteTopics answers.
    let err =
        eventually(10, "the deleted topic leaves the metadata", || async { conn.read_partitions(&[&a]).await.err() })
            .await;
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition), "{err}");
    assert_eq!(conn.read_partitions(&[&b]).await.unwrap().len(), 2);
    let err = conn.delete_topics(&[&a]).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition), "{err}");
}

fn sample(n: usize, t0: SystemTime) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let key = (i % 4 != 0).then(|| Bytes::from(format!("key-{i}")));
            let value = (i != 3).then(|| Bytes::from(format!("value-{i}-").repeat(i + 1)));
            let mut m = Message::new(key, value).with_time(t0 + Duration::from_millis(1000 * i as u64));
            if i % 2 == 0 {
                m = m.with_header("n", Some(Bytes::from(i.to_string()))).with_header("null", None::<Bytes>);
            }
            m
        })
        .collect()
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis()
}

#[tokio::test]
async fn written_messages_read_back_intact_with_every_codec() {
    let broker = common::kafka();
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let topic = unique_topic(&format!("rw-{codec}"));
        common::create_topics(&broker.addr(), &[TopicConfig::new(&topic, 1).with_replication_factor(1)]).await;
        let mut pc = Dialer::new().dial_leader(&broker.addr(), &topic, 0).await.unwrap();
        pc.set_compression(codec);
        let t0 = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let msgs = sample(10, t0);
        let res = pc.write_messages(&msgs[..6]).await.unwrap();
        assert_eq!(res.base_offset, 0);
        assert_eq!(res.log_append_time, None, "CreateTime topic");
        let res = pc.write_messages(&msgs[6..]).await.unwrap();
        assert_eq!(res.base_offset, 6);

        let mut got = Vec::new();
        while got.len() < msgs.len() {
            let batch = pc.read_batch(1, 1 << 20).await.unwrap();
            assert_eq!(
                (batch.high_watermark, batch.last_stable_offset, batch.log_start_offset),
                (10, 10, 0),
                "{codec}"
            );
            got.extend(batch.messages);
        }
        assert_eq!(pc.offset(), 10);
        for (i, (g, w)) in got.iter().zip(&msgs).enumerate() {
            assert_eq!(g.offset, i as i64, "{codec}");
            assert_eq!((&g.key, &g.value, &g.headers), (&w.key, &w.value, &w.headers), "{codec} #{i}");
            assert_eq!(millis(g.time.unwrap()), millis(w.time.unwrap()), "{codec} #{i}");
            assert_eq!((&*g.topic, g.partition, g.high_watermark), (topic.as_str(), 0, 10));
        }
    }
}

#[tokio::test]
async fn seek_offsets_and_errors() {
    let broker = common::kafka();
    let topic = unique_topic("offsets");
    common::create_topics(&broker.addr(), &[TopicConfig::new(&topic, 1).with_replication_factor(1)]).await;
    let mut pc = Dialer::new().dial_leader(&broker.addr(), &topic, 0).await.unwrap();
    let t0 = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    // Five messages, one second apart, in ONE batch: Kafka's "latest" is the high
    // watermark, and a timestamp lookup finds the record inside the batch.
    pc.write_messages(&sample(5, t0)).await.unwrap();
    assert_eq!(pc.read_offsets().await.unwrap(), (0, 5));
    assert_eq!(pc.read_offset(t0).await.unwrap(), 0);
    assert_eq!(pc.read_offset(t0 - Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(pc.read_offset(t0 + Duration::from_millis(2500)).await.unwrap(), 3);
    assert_eq!(pc.read_offset(t0 + Duration::from_millis(4000)).await.unwrap(), 4);
    // No record at or after the time: Kafka answers offset -1.
    assert_eq!(pc.read_offset(t0 + Duration::from_millis(4001)).await.unwrap(), -1);

    pc.seek(3);
    let batch = pc.read_batch(1, 1 << 20).await.unwrap();
    // The broker returns the whole batch; the messages before the offset asked for are
    // left out.
    assert_eq!(batch.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(pc.offset(), 5);

    // At the high watermark: nothing yet, no error (after the max wait).
    pc.set_max_wait(Duration::from_millis(100));
    let batch = pc.read_batch(1, 1 << 20).await.unwrap();
    assert!(batch.messages.is_empty());
    assert_eq!((batch.high_watermark, pc.offset()), (5, 5));
    // Past it: OFFSET_OUT_OF_RANGE, not retriable, the offset left as it was.
    pc.seek(6);
    let err = pc.read_batch(1, 1 << 20).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::OffsetOutOfRange), "{err}");
    assert!(!err.is_retriable());
    assert_eq!(pc.offset(), 6);

    let err = Dialer::new().dial_leader(&broker.addr(), &unique_topic("missing"), 0).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition), "{err}");
    let err = Dialer::new().dial_leader(&broker.addr(), &topic, 7).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition), "{err}");
    assert!(matches!(err, Error::Broker { .. }));
}

#[tokio::test]
async fn log_append_time_topics_stamp_records_with_the_broker_clock() {
    let broker = common::kafka();
    let topic = unique_topic("ops-lat");
    common::create_topics(
        &broker.addr(),
        &[TopicConfig::new(&topic, 1)
            .with_replication_factor(1)
            .with_config("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let mut pc = Dialer::new().dial_leader(&broker.addr(), &topic, 0).await.unwrap();
    let before = SystemTime::now() - Duration::from_secs(1);
    let res = pc.write_messages(&sample(3, UNIX_EPOCH + Duration::from_secs(1))).await.unwrap();
    let after = SystemTime::now() + Duration::from_secs(1);
    let append = res.log_append_time.expect("Kafka returns the append time of a LogAppendTime topic");
    assert!(before <= append && append <= after, "{append:?}");
    let batch = pc.read_batch(1, 1 << 20).await.unwrap();
    assert_eq!(batch.messages.len(), 3);
    for m in &batch.messages {
        assert_eq!(millis(m.time.unwrap()), millis(append), "the broker's time, not the 1970 one written");
    }
}

#[tokio::test]
async fn acks_none_writes_are_readable() {
    let broker = common::kafka();
    let topic = unique_topic("acks0");
    common::create_topics(&broker.addr(), &[TopicConfig::new(&topic, 1).with_replication_factor(1)]).await;
    let mut pc = Dialer::new().dial_leader(&broker.addr(), &topic, 0).await.unwrap();
    pc.set_required_acks(Acks::None);
    let res = pc.write_messages(&sample(3, SystemTime::now())).await.unwrap();
    assert_eq!(res.base_offset, -1);
    pc.set_max_wait(Duration::from_millis(100));
    // Nothing acknowledged them: read until they are there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < 3 && Instant::now() < deadline {
        got.extend(pc.read_batch(1, 1 << 20).await.unwrap().messages.into_iter().map(|m| m.offset));
    }
    assert_eq!(got, [0, 1, 2]);
}
