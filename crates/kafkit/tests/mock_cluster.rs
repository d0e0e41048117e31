//! The cluster client against librdkafka's mock cluster: three brokers, partition leaders
//! moved under the client, errors injected into requests, a broker taken down.

mod common;

use bytes::Bytes;
use kafkit::cluster::{Cluster, ClusterConfig, Workload};
use kafkit::Error;
use kafkit_protocol::record::Record;
use kafkit_protocol::ErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::sync::atomic::{AtomicU32, Ordering};

/// Produces one record through the cluster's routing and retries; returns the offset and
/// how many tries it took.
async fn produce_with_retry(c: &Cluster, topic: &str, partition: i32) -> (Result<i64, Error>, u32) {
    let tries = AtomicU32::new(0);
    let r = c
        .retry(|| async {
            tries.fetch_add(1, Ordering::Relaxed);
            let (conn, _) = c.leader(topic, partition, Workload::Produce).await?;
            let record = Record::new(Some(Bytes::from_static(b"k")), Some(Bytes::from_static(b"v")));
            let resp = conn.request(&common::produce_request(&conn, topic, partition, vec![record]).await).await?;
            let p = &resp.responses[0].partition_responses[0];
            match ErrorCode::from_code(p.error_code) {
                ErrorCode::None => Ok(p.base_offset),
                code => {
                    Err(Error::Broker { code, context: format!("producing to {topic}/{partition}"), message: None })
                }
            }
        })
        .await;
    (r, tries.load(Ordering::Relaxed))
}

fn config() -> ClusterConfig {
    let mut c = ClusterConfig::default();
    c.backoff.min = std::time::Duration::from_millis(20);
    c.retry_timeout = std::time::Duration::from_secs(10);
    c
}

#[tokio::test]
async fn moved_leaders_are_followed_after_one_refresh() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("moves", 3, 3).unwrap();
    for p in 0..3 {
        mock.partition_leader("moves", p, Some(p + 1)).unwrap();
    }
    let bootstrap = mock.bootstrap_servers();
    let seeds: Vec<&str> = bootstrap.split(',').collect();
    let c = Cluster::connect(&seeds, config()).await.unwrap();
    assert_eq!(c.metadata().brokers.len(), 3);
    let t = c.topic("moves").await.unwrap();
    assert_eq!(t.partitions.iter().map(|p| p.leader).collect::<Vec<_>>(), vec![1, 2, 3]);
    for p in 0..3 {
        let (r, tries) = produce_with_retry(&c, "moves", p).await;
        assert_eq!((r.unwrap(), tries), (0, 1));
    }
    // The leader of partition 0 moves from broker 1 to broker 3 behind the client's back:
    // the first try meets NOT_LEADER_OR_FOLLOWER, the metadata is refreshed, the second lands.
    mock.partition_leader("moves", 0, Some(3)).unwrap();
    let (r, tries) = produce_with_retry(&c, "moves", 0).await;
    assert_eq!(r.unwrap(), 1);
    assert_eq!(tries, 2);
    assert_eq!(c.metadata().topics["moves"].partitions[0].leader, 3);
}

#[tokio::test]
async fn injected_retriable_errors_are_retried_and_others_are_not() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("faults", 1, 3).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let c = Cluster::connect(&[bootstrap.split(',').next().unwrap()], config()).await.unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let (r, tries) = produce_with_retry(&c, "faults", 0).await;
    assert_eq!(r.unwrap(), 0);
    assert_eq!(tries, 4);

    mock.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED]);
    let (r, tries) = produce_with_retry(&c, "faults", 0).await;
    let err = r.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::TopicAuthorizationFailed), "{err}");
    assert_eq!(tries, 1);
}

#[tokio::test]
async fn a_leader_that_goes_down_is_replaced_through_a_refresh() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("down", 1, 3).unwrap();
    mock.partition_leader("down", 0, Some(1)).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let seeds: Vec<&str> = bootstrap.split(',').collect();
    let c = Cluster::connect(&seeds, config()).await.unwrap();
    let (r, _) = produce_with_retry(&c, "down", 0).await;
    assert_eq!(r.unwrap(), 0);
    mock.broker_down(1).unwrap();
    mock.partition_leader("down", 0, Some(2)).unwrap();
    let (r, tries) = produce_with_retry(&c, "down", 0).await;
    assert_eq!(r.unwrap(), 1);
    assert!(tries >= 2, "{tries}");
    assert_eq!(c.metadata().topics["down"].partitions[0].leader, 2);
}

/// One batch in flight: the mock checks sequence numbers only for transactional producers
/// (TEST-BROKERS.md), so with more in flight a batch sent after a failed one is appended
/// instead of refused, and no client can keep order on it. Ordering with several batches in
/// flight rests on the broker's sequence checks; see writer_faults.rs (Apache Kafka).
fn writer_config(topic: &str) -> kafkit::WriterConfig {
    kafkit::WriterConfig::default()
        .with_topic(topic)
        .with_max_in_flight(1)
        .with_batch_size(10)
        .with_linger(std::time::Duration::from_millis(1))
        .with_cluster(config())
}

/// Every message of partition 0, as text, read from the mock through its leader.
async fn read_back(bootstrap: &str, topic: &str, n: usize) -> Vec<String> {
    let mut pc = kafkit::Dialer::new().dial_leader(bootstrap, topic, 0).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..100 {
        let b = pc.read_batch(1, 8 << 20).await.unwrap();
        out.extend(b.messages.iter().map(|m| String::from_utf8(m.value.clone().unwrap().to_vec()).unwrap()));
        if out.len() >= n {
            break;
        }
    }
    out
}

#[tokio::test]
async fn the_writer_retries_faults_and_leader_moves_without_loss_or_reordering() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("wfaults", 1, 3).unwrap();
    mock.partition_leader("wfaults", 0, Some(1)).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let seeds: Vec<&str> = bootstrap.split(',').collect();
    let w = kafkit::Writer::new(&seeds, writer_config("wfaults")).await.unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let mut futures = Vec::new();
    for i in 0..300 {
        if i == 150 {
            mock.partition_leader("wfaults", 0, Some(3)).unwrap();
        }
        let m = kafkit::Message::new(None::<Bytes>, Some(Bytes::from(i.to_string())));
        futures.push(w.write(m).await.unwrap());
    }
    for (i, f) in futures.into_iter().enumerate() {
        let d = f.await.unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(d.offset, i as i64, "message {i}");
    }
    let got = read_back(seeds[0], "wfaults", 300).await;
    let want: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    let s = w.stats();
    assert!(s.retries >= 3, "{s:?}");
    assert_eq!((s.messages, s.errors), (300, 0));
}

#[tokio::test]
async fn unknown_producer_id_bumps_the_epoch_and_resends() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("bump", 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let w = kafkit::Writer::new(&[&bootstrap], writer_config("bump")).await.unwrap();
    let first = w.write_messages(vec![kafkit::Message::new(None::<Bytes>, Some(Bytes::from("a")))]).await.unwrap();
    assert_eq!(first[0].offset, 0);
    mock.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID]);
    let msgs = (0..20).map(|i| kafkit::Message::new(None::<Bytes>, Some(Bytes::from(format!("b{i}"))))).collect();
    let r = w.write_messages(msgs).await.unwrap();
    assert_eq!(r.iter().map(|d| d.offset).collect::<Vec<_>>(), (1..21).collect::<Vec<i64>>());
    let got = read_back(&bootstrap, "bump", 21).await;
    assert_eq!(got.len(), 21);
    assert_eq!(got[1], "b0");
    assert_eq!(w.stats().retries, 1);
}

#[tokio::test]
async fn the_reader_resets_out_of_range_offsets_and_follows_leader_moves() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("rd", 1, 3).unwrap();
    mock.partition_leader("rd", 0, Some(1)).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let seeds: Vec<&str> = bootstrap.split(',').collect();
    let w = kafkit::Writer::new(&seeds, writer_config("rd")).await.unwrap();
    let batch = |from: usize| {
        (from..from + 50).map(|i| kafkit::Message::new(None::<Bytes>, Some(Bytes::from(i.to_string())))).collect()
    };
    w.write_messages(batch(0)).await.unwrap();

    let reader_config = |start| {
        kafkit::ReaderConfig::new("rd", 0)
            .with_start(kafkit::StartOffset::At(start))
            .with_max_wait(std::time::Duration::from_millis(50))
            .with_cluster(config())
    };
    // Past the end: OFFSET_OUT_OF_RANGE, reset to the earliest offset.
    let mut r = kafkit::Reader::new(&seeds, reader_config(1000)).await.unwrap();
    let m = r.read_message().await.unwrap();
    assert_eq!(m.offset, 0);
    assert_eq!(r.stats().resets, 1);
    // With the Fail policy the error reaches the application, which can move on.
    let mut strict =
        kafkit::Reader::new(&seeds, reader_config(1000).with_reset(kafkit::OffsetReset::Fail)).await.unwrap();
    let err = strict.read_message().await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::OffsetOutOfRange), "{err}");
    strict.set_offset(49).unwrap();
    assert_eq!(strict.read_message().await.unwrap().offset, 49);

    // Read half, move the leader, write more: the reader follows and misses nothing.
    for i in 1..25 {
        assert_eq!(r.read_message().await.unwrap().offset, i);
    }
    mock.partition_leader("rd", 0, Some(2)).unwrap();
    w.write_messages(batch(50)).await.unwrap();
    for i in 25..100 {
        let m = r.read_message().await.unwrap();
        assert_eq!(m.offset, i);
        assert_eq!(m.value.as_deref(), Some(i.to_string().as_bytes()));
    }
}
