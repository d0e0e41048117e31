//! A hostile or buggy broker never takes the process down (issue 14): arbitrary Metadata,
//! Produce and Fetch responses fed to the code that turns them into the Writer's and the
//! Reader's state, which must give an error or a correct result, never a panic, an abort or
//! an allocation the response's size does not justify.

use crate::cluster::Metadata;
use crate::error::Error;
use crate::fetch::{messages_from, select, Spot};
use crate::message::Message;
use crate::net::IsolationLevel;
use crate::producer::accumulator::{Acc, Append, TopicQueues};
use crate::producer::produce::batch_result;
use crate::{Balancer, Hash, LeastBytes, RoundRobin, WriterConfig};
use bytes::{Bytes, BytesMut};
use kafkit_protocol::messages::{
    fetch_response, metadata_response, produce_response, MetadataResponse, ProduceResponse,
};
use kafkit_protocol::record::{Record, RecordBatch};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;

const HUGE: i32 = 2_147_483_000;
const ADDR: &str = "hostile:9092";

fn metadata(topics: &[(&str, Vec<i32>)]) -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
            .with_node_id(1)
            .with_host("hostile".into())
            .with_port(9092)])
        .with_topics(
            topics
                .iter()
                .map(|(name, ids)| {
                    metadata_response::MetadataResponseTopic::default()
                        .with_name(Some(name.to_string()))
                        .with_partitions(
                            ids.iter()
                                .map(|&id| {
                                    metadata_response::MetadataResponsePartition::default()
                                        .with_partition_index(id)
                                        .with_leader_id(1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// The topic's state after the merge: its partition ids, or the Malformed error's text.
fn merged(m: &Metadata, topic: &str) -> Result<Vec<i32>, String> {
    match (m.topics.get(topic), m.malformed(topic)) {
        (Some(t), None) => Ok(t.partitions.iter().map(|p| p.id).collect()),
        (None, Some(Error::Malformed { broker, what })) => {
            assert_eq!(broker, ADDR);
            assert!(what.contains(topic), "{what}");
            Err(what)
        }
        other => panic!("{topic} is both or neither: {other:?}"),
    }
}

#[test]
fn huge_negative_duplicated_and_sparse_partition_ids_fail_their_topic_only() {
    let sparse: Vec<i32> = (0..100_000).map(|i| i * 20_000).collect();
    for (what, ids) in [
        ("huge", vec![HUGE]),
        ("huge after good ones", vec![0, 1, HUGE]),
        ("negative", vec![-1]),
        ("negative and good", vec![0, -1, 1]),
        ("duplicated", vec![0, 0]),
        ("duplicated last", vec![0, 1, 2, 2]),
        ("sparse", vec![0, 1, 3]),
        ("100,000 sparse", sparse.clone()),
        ("i32::MIN and MAX", vec![i32::MIN, i32::MAX]),
    ] {
        let resp = metadata(&[("bad", ids), ("good", vec![2, 0, 1])]);
        let m = Metadata::default().merge(ADDR, &resp, true);
        let e = merged(&m, "bad").expect_err(what);
        assert!(e.contains("partition id"), "{what}: {e}");
        assert_eq!(merged(&m, "good"), Ok(vec![0, 1, 2]), "{what}");
    }
    // 100,000 partitions numbered densely are sound.
    let m = Metadata::default().merge(ADDR, &metadata(&[("many", (0..100_000).rev().collect())]), true);
    assert_eq!(merged(&m, "many").map(|ids| ids.len()), Ok(100_000));
}

#[test]
fn a_topic_malformed_in_one_response_and_sound_in_the_next_follows_the_last() {
    let bad = Metadata::default().merge(ADDR, &metadata(&[("t", vec![0]), ("u", vec![0])]), true);
    let bad = bad.merge(ADDR, &metadata(&[("t", vec![HUGE])]), false);
    assert!(merged(&bad, "t").is_err());
    assert_eq!(merged(&bad, "u"), Ok(vec![0]), "a partial refresh keeps the other topics");
    let good = bad.merge(ADDR, &metadata(&[("t", vec![1, 0])]), false);
    assert_eq!(merged(&good, "t"), Ok(vec![0, 1]));
    // A full refresh that no longer names the topic forgets it either way.
    let gone = bad.merge(ADDR, &metadata(&[("u", vec![0])]), true);
    assert!(!gone.topics.contains_key("t") && gone.malformed("t").is_none());
}

fn config() -> WriterConfig {
    WriterConfig::default()
}

/// Appends `n` messages to a topic of partition ids `ids`, as `Writer::write` does.
fn append_all(balancer: Arc<dyn Balancer>, ids: &[i32], n: usize) {
    let cfg = WriterConfig { balancer, ..config() };
    let mut acc = Acc::default();
    let mut t = TopicQueues::new("t");
    t.set_partitions(ids.to_vec(), 1);
    assert!(t.parts.len() <= ids.len(), "queues for the ids given, no more");
    acc.topics.insert("t".into(), t);
    for i in 0..n {
        let msg = Message::new(Some(Bytes::from(i.to_string())), Some(Bytes::from_static(b"v")));
        match acc.append(&cfg, "t", 1, msg, 0) {
            Append::Done(f, _) => drop(f),
            Append::Refused(e) => panic!("refused: {e}"),
            Append::Unknown(_) => panic!("unknown"),
        }
    }
    let t = &acc.topics["t"];
    let queued: usize = t.parts.iter().map(|q| q.batches.iter().map(|b| b.count).sum::<usize>()).sum();
    assert_eq!(queued, n);
    for (id, q) in t.ids.iter().zip(&t.parts) {
        for b in &q.batches {
            assert_eq!(b.outcome.0.partition, *id, "a queue's batches are for its own partition");
        }
    }
}

#[test]
fn the_writers_queues_take_any_partition_ids_without_a_giant_allocation() {
    let balancers: Vec<Arc<dyn Balancer>> =
        vec![Arc::new(RoundRobin::new()), Arc::new(LeastBytes::new()), Arc::new(Hash::new())];
    for b in balancers {
        for ids in [vec![HUGE], vec![-1], vec![i32::MIN, 0, i32::MAX], vec![-7, 3, HUGE]] {
            append_all(b.clone(), &ids, 20);
        }
    }
    // Ids a later metadata drops keep their queues; new ones join in order.
    let mut t = TopicQueues::new("t");
    t.set_partitions(vec![HUGE, 0], 1);
    t.set_partitions(vec![5], 2);
    assert_eq!((t.ids.clone(), t.partitions.clone(), t.parts.len()), (vec![0, 5, HUGE], vec![5], 3));
    assert_eq!(
        (t.index(0), t.index(5), t.index(HUGE), t.index(1), t.index(-1)),
        (Some(0), Some(1), Some(2), None, None)
    );
}

#[test]
fn least_bytes_over_huge_ids_keeps_counts_by_position() {
    let lb = LeastBytes::new();
    let big = Message::new(None::<Bytes>, Some(Bytes::from(vec![0u8; 100])));
    let small = Message::new(None::<Bytes>, Some(Bytes::from(vec![0u8; 10])));
    let parts = [-5, 7, HUGE];
    assert_eq!(lb.balance(&big, &parts), -5);
    assert_eq!(lb.balance(&small, &parts), 7);
    assert_eq!(lb.balance(&small, &parts), HUGE);
    assert_eq!(lb.balance(&small, &parts), 7);
    // A changed list keeps the counts of the partitions still in it.
    assert_eq!(lb.balance(&small, &[7, HUGE, i32::MAX]), i32::MAX);
    assert_eq!(lb.balance(&small, &[7, HUGE, i32::MAX]), HUGE);
}

fn produce_response(parts: &[(&str, i32, i16, i64)]) -> ProduceResponse {
    ProduceResponse::default().with_responses(
        parts
            .iter()
            .map(|&(t, p, code, base)| {
                produce_response::TopicProduceResponse::default().with_name(t.to_string()).with_partition_responses(
                    vec![produce_response::PartitionProduceResponse::default()
                        .with_index(p)
                        .with_error_code(code)
                        .with_base_offset(base)],
                )
            })
            .collect(),
    )
}

#[test]
fn produce_results_for_partitions_never_sent_or_offsets_that_overflow_are_errors() {
    let addr = || ADDR.to_string();
    // Only a partition the request never named: the one sent is missing.
    let resp = produce_response(&[("t", 7, 0, 0)]);
    assert!(batch_result(&resp, "t", 0, 1, addr).is_err());
    let resp = produce_response(&[("t", 0, 0, i64::MAX)]);
    assert_eq!(batch_result(&resp, "t", 0, 1, addr).unwrap(), i64::MAX);
    let e = batch_result(&resp, "t", 0, 2, addr).unwrap_err();
    assert!(matches!(&e, Error::Malformed { what, .. } if what.contains("t/0")), "{e:?}");
    let resp = produce_response(&[("t", 0, 0, -5)]);
    assert!(matches!(batch_result(&resp, "t", 0, 1, addr), Err(Error::Malformed { .. })));
    let resp = produce_response(&[("t", 0, 0, -1)]);
    assert_eq!(batch_result(&resp, "t", 0, 3, addr).unwrap(), -1);
}

fn batch(base: i64, last_delta: i32, deltas: &[i32]) -> RecordBatch {
    let mut b = RecordBatch { base_offset: base, last_offset_delta: last_delta, ..RecordBatch::default() };
    b.records =
        deltas.iter().map(|&d| Record::new(None, Some(Bytes::from_static(b"v"))).with_offset_delta(d)).collect();
    b
}

#[test]
fn fetched_offsets_that_go_backwards_or_overflow_are_errors() {
    let sel = |bs: Vec<RecordBatch>| select(bs, VecDeque::new(), 0, "t", 0, 100);
    // Sound: two batches, offsets 0-2 and 3-4.
    let ok = sel(vec![batch(0, 2, &[0, 1, 2]), batch(3, 1, &[0, 1])]).unwrap();
    assert_eq!(ok.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(ok.next, 5);
    for (what, bs) in [
        ("a batch before the last", vec![batch(5, 1, &[0, 1]), batch(3, 1, &[0, 1])]),
        ("a record before the last", vec![batch(5, 2, &[0, 2, 1])]),
        ("a repeated record", vec![batch(5, 1, &[0, 0])]),
        ("a base offset near i64::MAX", vec![batch(i64::MAX - 1, 5, &[0])]),
        ("a record offset past i64::MAX", vec![batch(i64::MAX - 1, 0, &[0, i32::MAX])]),
        ("a negative base offset", vec![batch(-10, 0, &[0])]),
        ("a negative record offset", vec![batch(10, 0, &[-20])]),
        ("a record past its batch's last offset", vec![batch(0, 0, &[36])]),
    ] {
        assert!(sel(bs).is_err(), "{what}");
    }
    // The same from the bytes of a fetch response: a base offset patched to overflow.
    let mut buf = BytesMut::new();
    batch(0, 1, &[0, 1]).encode(&mut buf).unwrap();
    buf[..8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
    let p = fetch_response::PartitionData::default().with_high_watermark(10).with_records(Some(buf.freeze()));
    let e = messages_from(ADDR, &spot(), &p, 0).map(|s| s.messages.len()).unwrap_err();
    assert!(matches!(&e, Error::Malformed { what, .. } if what.contains("t/0")), "{e:?}");
}

fn spot() -> Spot<'static> {
    Spot {
        topic: "t",
        topic_id: kafkit_protocol::Uuid::ZERO,
        partition: 0,
        leader_epoch: -1,
        isolation: IsolationLevel::ReadUncommitted,
    }
}

fn ids() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        proptest::collection::vec(any::<i32>(), 0..40),
        (0..200i32).prop_map(|n| (0..n).rev().collect()),
        proptest::collection::vec(-3..40i32, 0..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any partition ids: the topic is taken with ids 0 to n-1 or refused, the other stays.
    #[test]
    fn metadata_with_any_partition_ids_is_taken_or_refused_per_topic(a in ids(), b in ids()) {
        let m = Metadata::default().merge(ADDR, &metadata(&[("a", a.clone()), ("good", vec![0]), ("b", b)]), true);
        for t in ["a", "b"] {
            if let Ok(ids) = merged(&m, t) {
                prop_assert_eq!(ids, (0..m.topics[t].partitions.len() as i32).collect::<Vec<_>>());
            }
        }
        prop_assert_eq!(merged(&m, "good"), Ok(vec![0]));
        // The Writer's queues take whatever the metadata gave, sound or not.
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if !sorted.is_empty() {
            append_all(Arc::new(LeastBytes::new()), &a, 5);
            append_all(Arc::new(RoundRobin::new()), &a, 5);
        }
    }

    /// Any Produce result: an error, or a base offset the batch's offsets fit after.
    #[test]
    fn any_produce_result_is_an_error_or_a_sound_base_offset(
        p in -2..3i32, code in prop_oneof![Just(0i16), Just(46i16), any::<i16>()], base in any::<i64>(),
        count in 1..10_000usize,
    ) {
        let resp = produce_response(&[("t", p, code, base)]);
        if let Ok(b) = batch_result(&resp, "t", 0, count, || ADDR.to_string()) {
            prop_assert!(p == 0);
            prop_assert!(b == -1 || (b >= 0 && b.checked_add(count as i64 - 1).is_some()));
        }
    }

    /// Any batches: an error, or messages in strictly rising offsets from `from` on, all
    /// below `next`.
    #[test]
    fn any_fetched_batches_give_an_error_or_rising_offsets(
        bs in proptest::collection::vec(
            (prop_oneof![0..1000i64, any::<i64>()], prop_oneof![0..10i32, any::<i32>()],
             proptest::collection::vec(prop_oneof![0..10i32, any::<i32>()], 0..8)),
            0..6),
        from in 0..50i64,
    ) {
        let batches = bs.iter().map(|(b, l, d)| batch(*b, *l, d)).collect();
        if let Ok(s) = select(batches, VecDeque::new(), from, "t", 0, 100) {
            let offsets: Vec<i64> = s.messages.iter().map(|m| m.offset).collect();
            prop_assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{:?}", offsets);
            prop_assert!(offsets.iter().all(|&o| o >= from && o < s.next), "{:?} next {}", offsets, s.next);
        }
    }

    /// Any bytes as a fetched partition's records, and any ends: an error or messages.
    #[test]
    fn any_fetched_bytes_give_an_error_or_messages(
        records in proptest::collection::vec(any::<u8>(), 0..300), hw in any::<i64>(), lso in any::<i64>(),
    ) {
        let p = fetch_response::PartitionData::default()
            .with_high_watermark(hw)
            .with_last_stable_offset(lso)
            .with_records(Some(Bytes::from(records)));
        let _ = messages_from(ADDR, &spot(), &p, 0);
        let tp = "t/0";
        let ends = crate::consumer::engine::tasks::Ends::of(&p, IsolationLevel::ReadCommitted, ADDR, &tp);
        prop_assert_eq!(ends.is_ok(), hw >= -1 && lso >= -1);
    }
}
