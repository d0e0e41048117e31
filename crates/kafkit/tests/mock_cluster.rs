//! The cluster client against librdkafka's mock cluster: three brokers, partition leaders
//! moved under the client, errors injected into requests, a broker taken down.

use bytes::{Bytes, BytesMut};
use kafkit::cluster::{Cluster, ClusterConfig, Workload};
use kafkit::Error;
use kafkit_protocol::messages::{produce_request, ProduceRequest};
use kafkit_protocol::record::{Record, RecordBatch};
use kafkit_protocol::ErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::sync::atomic::{AtomicU32, Ordering};

fn produce(topic: &str, partition: i32) -> ProduceRequest {
    let mut b = RecordBatch::new(1_700_000_000_000);
    b.records.push(Record::new(Some(Bytes::from_static(b"k")), Some(Bytes::from_static(b"v"))));
    let mut buf = BytesMut::new();
    b.encode(&mut buf).unwrap();
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(topic.into()).with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_index(partition).with_records(Some(buf.freeze())),
        ]),
    ])
}

/// Produces one record through the cluster's routing and retries; returns the offset and
/// how many tries it took.
async fn produce_with_retry(c: &Cluster, topic: &str, partition: i32) -> (Result<i64, Error>, u32) {
    let tries = AtomicU32::new(0);
    let r = c
        .retry(|| async {
            tries.fetch_add(1, Ordering::Relaxed);
            let (conn, _) = c.leader(topic, partition, Workload::Produce).await?;
            let resp = conn.request(&produce(topic, partition)).await?;
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
