//! The partition `Reader` against a real broker (Apache Kafka).

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::{Dialer, Message, Reader, ReaderConfig, StartOffset, TopicConfig, TopicPartition, Writer, WriterConfig};
use std::pin::Pin;
use std::time::Duration;

async fn setup(addr: &str, n: usize, batch: usize, value_len: usize) -> String {
    let topic = unique_topic("reader");
    Dialer::new().dial(addr).await.unwrap().create_topics(&[TopicConfig::new(&topic, 1)]).await.unwrap();
    let w = Writer::new(&[addr], WriterConfig::default().with_topic(&topic).with_batch_size(batch)).await.unwrap();
    let msgs = (0..n)
        .map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("{i:0>len$}", len = value_len)))))
        .collect();
    w.write_messages(msgs).await.unwrap();
    topic
}

fn value(m: &Message) -> usize {
    std::str::from_utf8(m.value.as_deref().unwrap()).unwrap().trim_start_matches('0').parse().unwrap_or(0)
}

#[tokio::test]
async fn reads_everything_in_order_then_seeks() {
    let broker = common::kafka();
    let topic = setup(&broker.addr(), 2000, 100, 8).await;
    let mut r = Reader::new(&[&broker.addr()], ReaderConfig::new(&topic, 0)).await.unwrap();
    assert_eq!(r.lag(), -1, "no fetch yet");
    for i in 0..2000 {
        let m = r.read_message().await.unwrap();
        assert_eq!((m.offset, value(&m)), (i as i64, i));
        assert_eq!(m.high_watermark, 2000);
    }
    assert_eq!(r.offset(), 2000);
    assert_eq!(r.lag(), 0);
    let s = r.stats();
    assert_eq!(s.messages, 2000);
    assert!(s.fetches >= 1);

    r.set_offset(1500).unwrap();
    let m = r.read_message().await.unwrap();
    assert_eq!(m.offset, 1500);
    assert_eq!(r.lag(), 499);

    // A Stream too.
    let mut stream = Pin::new(&mut r);
    let next = std::future::poll_fn(|cx| futures_core::Stream::poll_next(stream.as_mut(), cx)).await;
    assert_eq!(next.unwrap().unwrap().offset, 1501);
}

#[tokio::test]
async fn starting_at_the_end_reads_only_new_messages() {
    let broker = common::kafka();
    // Ten messages in batches of three: "latest" is the high watermark (10), not where the
    // last batch starts.
    let topic = setup(&broker.addr(), 10, 3, 1).await;
    let mut r =
        Reader::new(&[&broker.addr()], ReaderConfig::new(&topic, 0).with_start(StartOffset::Last)).await.unwrap();
    assert_eq!(r.offset(), 10);
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&topic)).await.unwrap();
    let msgs = (0..5).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("new-{i}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    for i in 0..5 {
        let m = r.read_message().await.unwrap();
        assert_eq!(m.offset, 10 + i);
        assert_eq!(m.value.as_deref(), Some(format!("new-{i}").as_bytes()));
    }
}

#[tokio::test]
async fn prefetching_stops_at_the_budget_while_the_application_reads_nothing() {
    let broker = common::kafka();
    // 1000 messages of 2 KiB in batches of 10 (20 KiB each).
    let topic = setup(&broker.addr(), 1000, 10, 2048).await;
    // Bound both the fetch's max_bytes and partition_max_bytes (Kafka keeps to both, returning
    // at least one whole batch).
    let config = ReaderConfig::new(&topic, 0)
        .with_prefetch_bytes(64 << 10)
        .with_max_bytes(32 << 10)
        .with_fetch_max_bytes(32 << 10)
        .with_max_wait(Duration::from_millis(50));
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = r.stats();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = r.stats();
    assert_eq!(after.messages, 0);
    assert!(after.buffered_bytes > 0, "{after:?}");
    // Nothing more was fetched while the budget was full.
    assert_eq!(before.fetches, after.fetches, "{before:?} -> {after:?}");
    assert!(after.buffered_bytes <= 64 << 10, "no more than the budget is held: {after:?}");
    // Reading drains the buffer and fetching resumes: everything arrives, in order.
    for i in 0..1000 {
        let m = r.read_message().await.unwrap();
        assert_eq!((m.offset, value(&m)), (i as i64, i));
    }
    assert!(r.stats().fetches > after.fetches);
}

#[tokio::test]
async fn an_assigned_reader_reads_several_partitions_of_several_topics_in_order() {
    let broker = common::kafka();
    let (a, b) = (unique_topic("assigned-a"), unique_topic("assigned-b"));
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    conn.create_topics(&[TopicConfig::new(&a, 4), TopicConfig::new(&b, 1)]).await.unwrap();
    // 300 messages on each partition of `a` (round-robin), 100 on `b`.
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_batch_size(50)).await.unwrap();
    let msgs: Vec<Message> = (0..1200)
        .map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("{i:0>100}")))).with_topic(a.as_str()))
        .chain(
            (0..100)
                .map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("{i:0>100}")))).with_topic(b.as_str())),
        )
        .collect();
    w.write_messages(msgs).await.unwrap();
    let parts: Vec<TopicPartition> =
        (0..4).map(|p| TopicPartition::new(a.clone(), p)).chain([TopicPartition::new(b.clone(), 0)]).collect();
    // Two fetch tasks for the one broker, asking for small fetches.
    let config = ReaderConfig::assign(parts.clone())
        .with_fetch_concurrency(2)
        .with_fetch_max_bytes(4 << 10)
        .with_max_wait(Duration::from_millis(50));
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    assert_eq!(r.assignment(), parts);
    let mut next: std::collections::BTreeMap<TopicPartition, i64> = parts.iter().map(|tp| (tp.clone(), 0)).collect();
    for _ in 0..1300 {
        let m = r.read_message().await.unwrap();
        let tp = TopicPartition::new(m.topic.to_string(), m.partition);
        let want = next.get_mut(&tp).unwrap();
        assert_eq!(m.offset, *want, "{tp}: every offset once, in order");
        *want += 1;
    }
    let want: Vec<i64> = vec![300, 300, 300, 300, 100];
    assert_eq!(next.values().copied().collect::<Vec<_>>(), want);
    let states = r.partitions();
    assert!(states.values().zip(&want).all(|(s, w)| s.position == *w && s.lag == 0), "{states:?}");
    // The fetch tasks fetched (how much one fetch returns is up to the broker).
    assert!(r.stats().fetches >= 2, "{:?}", r.stats());
    // One-partition calls refuse a reader of several; seek moves one partition.
    assert_eq!(r.offset(), -1);
    assert!(r.set_offset(0).is_err());
    r.seek(&parts[4], 98).unwrap();
    let m = r.read_message().await.unwrap();
    assert_eq!((m.topic.as_ref(), m.offset), (b.as_str(), 98));
    assert!(r.seek(&TopicPartition::new(b.clone(), 7), 0).is_err(), "not a partition being read");
    let none = Reader::new(&[&broker.addr()], ReaderConfig::assign(Vec::new())).await;
    assert!(matches!(none, Err(kafkit::Error::InvalidArgument(_))), "{none:?}");
}

/// One fetch task whose responses carry several partitions' records: each partition is
/// handed over by a task of its own, side by side, and every partition's records still come
/// once each and in order, across chunks (lz4 batches of 400 records, 400 KiB decompressed:
/// a chunk each). The first fetch names the three partitions, whose data all fits in it.
#[tokio::test]
async fn partitions_of_one_response_decoded_side_by_side_come_whole_and_in_order() {
    let broker = common::kafka();
    let topic = unique_topic("side-by-side");
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    conn.create_topics(&[TopicConfig::new(&topic, 3)]).await.unwrap();
    let w = Writer::new(
        &[&broker.addr()],
        WriterConfig::default().with_topic(&topic).with_batch_size(400).with_compression(kafkit::Compression::Lz4),
    )
    .await
    .unwrap();
    // 1,200 records of 1 KiB on each partition (round-robin), each value its own number.
    let msgs = (0..3600).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("{i:0>1024}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    let parts: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic.clone(), p)).collect();
    // One fetch task, each fetch for up to 4 MiB over its partitions, 1 MiB each.
    let config = ReaderConfig::assign(parts)
        .with_fetch_concurrency(1)
        .with_max_bytes(1 << 20)
        .with_fetch_max_bytes(4 << 20)
        .with_prefetch_bytes(16 << 20)
        .with_max_wait(Duration::from_millis(50));
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    let (mut next, mut last) = ([0i64; 3], [None::<usize>; 3]);
    for _ in 0..3600 {
        let m = r.read_message().await.unwrap();
        let p = m.partition as usize;
        assert_eq!(m.offset, next[p], "partition {p}: every offset once, in order");
        next[p] += 1;
        let v = value(&m);
        assert!(last[p].is_none_or(|l| v > l), "partition {p}: {v} after {:?}", last[p]);
        last[p] = Some(v);
    }
    assert_eq!(next, [1200; 3]);
}

#[tokio::test]
async fn a_small_fetch_limit_starves_no_partition() {
    let broker = common::kafka();
    let topic = unique_topic("rotation");
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    conn.create_topics(&[TopicConfig::new(&topic, 4)]).await.unwrap();
    // 100 records of 1 KiB on each partition, in batches of 4 (about 4 KiB).
    let w =
        Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&topic).with_batch_size(4)).await.unwrap();
    let msgs = (0..400).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("{i:0>1024}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    // One fetch at a time, each for about two batches of the four partitions' 16.
    let parts: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(topic.clone(), p)).collect();
    let config = ReaderConfig::assign(parts)
        .with_fetch_concurrency(1)
        .with_max_bytes(4 << 10)
        .with_fetch_max_bytes(8 << 10)
        .with_max_wait(Duration::from_millis(50));
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    let mut seen = [0usize; 4];
    for _ in 0..100 {
        let m = r.read_message().await.unwrap();
        seen[m.partition as usize] += 1;
    }
    // Each fetch lists the partitions served longest ago first, so every partition moves
    // along together; were the order fixed, the first 100 records would all be the first
    // partition's.
    assert!(seen.iter().all(|&n| n >= 10), "records per partition among the first 100: {seen:?}");
}

/// A backlog larger than one fetch's chunks (the reader decodes a fetched partition into
/// chunks of about 256 KiB and fetches again before handing them all over): the reader's
/// position after each message is the offset after it, never the end of the fetched data
/// while chunks of it are still to come (a position past them would let a group reader commit
/// records it had not returned yet).
#[tokio::test]
async fn the_position_follows_the_messages_through_a_backlog() {
    let broker = common::kafka();
    let n = 60_000;
    let topic = setup(&broker.addr(), n, 1000, 8).await;
    let tp = TopicPartition::new(&topic, 0);
    let mut r =
        Reader::new(&[&broker.addr()], ReaderConfig::new(&topic, 0).with_start(StartOffset::First)).await.unwrap();
    for i in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(30), r.read_message()).await.expect("in time").unwrap();
        assert_eq!((m.offset, value(&m)), (i as i64, i));
        let position = r.partitions()[&tp].position;
        assert_eq!(position, m.offset + 1, "the position after offset {} of {n}", m.offset);
    }
}

/// Fetch sessions (KIP-227): once caught up, an idle reader of 6 partitions long-polls with
/// incremental fetches that name no partition; a new record on one partition is read once, and
/// the fetch after it names that partition alone (its position moved); the backlog before is
/// read once, in order (its full responses leave partitions empty-handed, so those fetches go
/// without the session, in the reader's own order).
#[tokio::test]
async fn a_steady_reader_fetches_incrementally_in_a_fetch_session() {
    let broker = common::kafka();
    let topic = unique_topic("session");
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    conn.create_topics(&[TopicConfig::new(&topic, 6)]).await.unwrap();
    let w = Writer::new(&[&broker.addr()], WriterConfig::default().with_topic(&topic).with_batch_size(2 << 10))
        .await
        .unwrap();
    let msgs: Vec<Message> =
        (0..3000).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("{i:0>100}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    let parts: Vec<TopicPartition> = (0..6).map(|p| TopicPartition::new(topic.clone(), p)).collect();
    // Small fetches, so the backlog takes many, each moving some partitions only.
    let config = ReaderConfig::assign(parts.clone())
        .with_start(StartOffset::First)
        .with_max_bytes(2 << 10)
        .with_max_wait(Duration::from_millis(100));
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    let mut next = [0i64; 6];
    for _ in 0..3000 {
        let m = r.read_message().await.unwrap();
        assert_eq!(m.offset, next[m.partition as usize], "partition {}: every offset once, in order", m.partition);
        next[m.partition as usize] += 1;
    }
    let busy = r.stats();
    // Idle: wait for five more fetches (each a 100 ms long poll).
    let a = fetched(&r, busy.fetches + 2).await;
    let b = fetched(&r, a.fetches + 5).await;
    assert_eq!(b.incremental_fetches - a.incremental_fetches, b.fetches - a.fetches, "idle fetches are incremental");
    assert_eq!(b.fetch_partitions, a.fetch_partitions, "and name no partition: nothing moved");
    // One new record: read once; the fetch that follows names its partition only.
    // (The fetch that brings it named none; the one after names its partition, moved on.)
    let c = r.stats();
    let d = w.write_messages(vec![Message::new(None::<Bytes>, Some(Bytes::from_static(b"new")))]).await.unwrap();
    let m = r.read_message().await.unwrap();
    assert_eq!((m.partition, m.offset, m.value.as_deref()), (d[0].partition, d[0].offset, Some(&b"new"[..])));
    let e = fetched(&r, r.stats().fetches + 3).await;
    assert_eq!(e.fetch_partitions - c.fetch_partitions, 1, "only partition {} moved: {c:?} {e:?}", m.partition);
    // Nothing more, nothing twice.
    let none = tokio::time::timeout(Duration::from_millis(500), r.read_message()).await;
    assert!(none.is_err(), "no other record: {none:?}");
}

/// The reader's stats once it has made `n` fetches (waits up to 30 s).
async fn fetched(r: &Reader, n: u64) -> kafkit::ReaderStats {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while r.stats().fetches < n {
        assert!(std::time::Instant::now() < deadline, "{:?}", r.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.stats()
}
