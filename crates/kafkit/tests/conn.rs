//! `Dialer` and `Conn` against a real broker (Apache Kafka), and against peers that misbehave on
//! purpose (garbage, silence) to show they close the connection, never the process.

mod common;

use bytes::Bytes;
use common::{free_port, unique_topic};
use kafkit::{Dialer, Error};
use kafkit_protocol::messages::{
    create_topics_request, fetch_request, metadata_request, ApiVersionsRequest, CreateTopicsRequest, FetchRequest,
    MetadataRequest, ProduceRequest,
};
use kafkit_protocol::record::{DecodeOptions, Record, RecordSet};
use kafkit_protocol::{ApiKey, ApiVersion, Message as _, VersionRange};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn create_topic(conn: &kafkit::Conn, name: &str, partitions: i32) {
    create_topic_with(conn, name, partitions, &[]).await
}

async fn create_topic_with(conn: &kafkit::Conn, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            create_topics_request::CreatableTopicConfig::default().with_name((*k).into()).with_value(Some((*v).into()))
        })
        .collect();
    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name.into())
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(configs),
    ]);
    let resp = conn.request(&req).await.unwrap();
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
    common::wait_ready(conn.addr(), name, partitions).await;
}

fn metadata_for(topic: &str) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(topic.into()))]))
}

#[tokio::test]
async fn dial_negotiates_versions_with_a_real_broker() {
    let broker = common::kafka();
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    // What Apache Kafka serves (4.x still lists Produce 0-2, which it refuses, for librdkafka's
    // sake: KAFKA-18659; it removed Fetch 0-3, KIP-896), and the highest version both sides
    // speak.
    let (produce, fetch) = if broker.version().at_least(4, 0) {
        (VersionRange::new(0, 13), VersionRange::new(4, 18))
    } else {
        (VersionRange::new(0, 11), VersionRange::new(0, 17))
    };
    assert_eq!(conn.broker_versions(ApiKey::Produce), Some(produce));
    assert_eq!(conn.broker_versions(ApiKey::Fetch), Some(fetch));
    let both = |broker: VersionRange, ours: VersionRange| ApiVersion(broker.max.min(ours.max));
    assert_eq!(conn.version_for::<FetchRequest>().unwrap(), both(fetch, FetchRequest::VERSIONS));
    assert_eq!(conn.version_for::<ProduceRequest>().unwrap(), both(produce, ProduceRequest::VERSIONS));
    // An API a broker listener does not serve is not listed (the KRaft quorum's Vote is only
    // for controllers), and one the broker does not serve is refused before anything is sent.
    assert_eq!(conn.broker_versions(ApiKey::Vote), None);
    // ApiVersions itself works at every version both speak (from v3 it names the client:
    // Kafka refuses empty or malformed names with INVALID_REQUEST, KIP-511).
    let named = ApiVersionsRequest::default()
        .with_client_software_name("kafkit".into())
        .with_client_software_version("0.1.0".into());
    let served = conn.broker_versions(ApiKey::ApiVersions).expect("ApiVersions is served");
    for v in 0..=served.max.min(ApiVersionsRequest::VERSIONS.max) {
        let req = if v >= 3 { named.clone() } else { ApiVersionsRequest::default() };
        let r = conn.request_version(&req, ApiVersion(v)).await.unwrap();
        assert_eq!(r.error_code, 0, "v{v}");
        assert!(r.api_keys.len() > 20, "v{v}");
    }
}

#[tokio::test]
async fn pipelined_requests_each_get_their_own_response() {
    let broker = common::kafka();
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    let topics: Vec<String> = (0..6).map(|i| unique_topic(&format!("pipe{i}"))).collect();
    for (i, t) in topics.iter().enumerate() {
        create_topic(&conn, t, i as i32 + 1).await;
    }
    let mut set = tokio::task::JoinSet::new();
    for i in 0..60 {
        let conn = conn.clone();
        let topic = topics[i % topics.len()].clone();
        let partitions = i % topics.len() + 1;
        set.spawn(async move {
            let r = conn.request(&metadata_for(&topic)).await.unwrap();
            assert_eq!(r.topics.len(), 1);
            assert_eq!(r.topics[0].name.as_deref(), Some(topic.as_str()));
            assert_eq!(r.topics[0].partitions.len(), partitions);
        });
    }
    let mut done = 0;
    while let Some(r) = set.join_next().await {
        r.unwrap();
        done += 1;
    }
    assert_eq!(done, 60);
}

#[tokio::test]
async fn a_dropped_request_is_still_written_whole_and_the_connection_stays_usable() {
    let broker = common::kafka();
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    let topic = unique_topic("cancel");
    // One 8 MiB batch: past Kafka's default max.message.bytes (1 MiB) unless the topic allows it.
    create_topic_with(&conn, &topic, 1, &[("max.message.bytes", "16777216")]).await;
    // An 8 MiB produce whose future is dropped right after its first poll (it is queued by
    // then): the writer task still writes every byte of it.
    let value = Bytes::from(vec![b'x'; 64 * 1024]);
    let req = common::produce_request(&conn, &topic, 0, vec![Record::new(None, Some(value)); 128]).await;
    let dropped = tokio::time::timeout(Duration::ZERO, conn.request(&req)).await;
    assert!(dropped.is_err(), "the request cannot have completed within zero time");
    // The next request on the same connection gets its own, well-formed response.
    let meta = conn.request(&metadata_for(&topic)).await.unwrap();
    assert_eq!(meta.topics[0].partitions.len(), 1);
    // And the dropped produce landed: all 128 records of 64 KiB are in the log.
    let fetch = FetchRequest::default().with_max_wait_ms(100).with_max_bytes(32 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic_id(meta.topics[0].topic_id).with_partitions(vec![
            fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(16 << 20),
        ]),
    ]);
    let resp = conn.request(&fetch).await.unwrap();
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 0);
    assert_eq!(part.high_watermark, 128);
    let records: usize =
        RecordSet::new(part.records.clone().unwrap(), DecodeOptions::default()).map(|b| b.unwrap().records.len()).sum();
    assert_eq!(records, 128);
}

#[tokio::test]
async fn dialing_a_closed_port_is_a_retriable_connect_error() {
    let port = free_port();
    let err = Dialer::new().dial(&format!("127.0.0.1:{port}")).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.is_retriable());
    assert!(!err.is_timeout());
}

#[tokio::test]
async fn requests_fail_promptly_once_the_broker_is_gone() {
    // A cluster of its own: this test kills its node.
    let broker = common::Cluster::start(common::ClusterOptions::default());
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    broker.kill(1);
    let started = std::time::Instant::now();
    let err = conn.request(&MetadataRequest::default().with_topics(None)).await.unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed { .. }), "{err}");
    assert!(err.is_retriable());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(conn.is_closed());
    // Later requests fail at once.
    let err = conn.request(&MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed { .. }), "{err}");
}

/// A peer that reads a request and answers with `reply`, then stays open.
async fn hostile_peer(reply: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(&reply).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    addr
}

#[tokio::test]
async fn garbage_from_a_peer_closes_the_connection_not_the_process() {
    // A frame size far above the limit.
    let addr = hostile_peer(vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await;
    let err = Dialer::new().dial(&addr).await.unwrap_err();
    assert!(matches!(&err, Error::ConnectionClosed { reason, .. } if reason.contains("frame")), "{err}");

    // A well-sized frame with the right correlation id and a body that is nonsense.
    let mut frame = vec![0, 0, 0, 12, 0, 0, 0, 0];
    frame.extend_from_slice(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 9, 9]);
    let addr = hostile_peer(frame).await;
    let err = Dialer::new().dial(&addr).await.unwrap_err();
    assert!(matches!(&err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("ApiVersionsResponse"), "{err}");

    // A response to a request never sent (wrong correlation id).
    let addr = hostile_peer(vec![0, 0, 0, 6, 0, 0, 0, 42, 0, 0]).await;
    let err = Dialer::new().dial(&addr).await.unwrap_err();
    assert!(matches!(&err, Error::ConnectionClosed { reason, .. } if reason.contains("correlation")), "{err}");
}

#[tokio::test]
async fn a_silent_peer_times_out_the_request() {
    let addr = hostile_peer(Vec::new()).await;
    let err = Dialer::new().with_request_timeout(Duration::from_millis(300)).dial(&addr).await.unwrap_err();
    assert!(matches!(err, Error::RequestTimeout { api: ApiKey::ApiVersions, .. }), "{err}");
    assert!(err.is_timeout() && err.is_retriable());
}

#[tokio::test]
async fn the_request_timeout_can_change_on_a_live_connection() {
    let broker = common::kafka();
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    let topic = unique_topic("deadline");
    create_topic(&conn, &topic, 1).await;
    let id = conn.metadata(Some(&[&topic])).await.unwrap().topics[0].topic_id;
    // A fetch that long-polls 2 s on an empty partition outlives a 300 ms timeout...
    let fetch = FetchRequest::default().with_max_wait_ms(2000).with_min_bytes(1).with_topics(vec![
        fetch_request::FetchTopic::default()
            .with_topic_id(id)
            .with_partitions(vec![fetch_request::FetchPartition::default().with_partition(0)]),
    ]);
    conn.set_request_timeout(Duration::from_millis(300));
    assert_eq!(conn.request_timeout(), Duration::from_millis(300));
    let err = conn.request(&fetch).await.unwrap_err();
    assert!(matches!(err, Error::RequestTimeout { api: ApiKey::Fetch, .. }), "{err}");
    // ...which closes the connection, as the Java client does...
    assert!(conn.is_closed());
    let err = conn.request(&fetch).await.unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed { ref reason, .. } if reason.contains("request timeout")), "{err}");
    // ...and completes under a longer one.
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    conn.set_request_timeout(Duration::from_secs(10));
    let resp = conn.request(&fetch).await.unwrap();
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_closes_at_once_fails_every_dial_as_closed() {
    // The close races the ApiVersions request being written: whichever comes first, the
    // request fails as closed, never waits out its timeout on a dead connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let dialer = Dialer::new().with_request_timeout(Duration::from_secs(2));
    for i in 0..2000 {
        let err = dialer.dial(&addr).await.unwrap_err();
        assert!(matches!(err, Error::ConnectionClosed { .. }), "dial {i}: {err}");
    }
}

#[tokio::test]
async fn owned_requests_are_written_in_order_and_one_that_does_not_encode_fails_alone() {
    let broker = common::kafka();
    let conn = Dialer::new().dial(&broker.addr()).await.unwrap();
    let topic = unique_topic("owned");
    create_topic(&conn, &topic, 1).await;
    let version = conn.version_for::<ProduceRequest>().unwrap();
    // Eight one-record Produce requests queued back to back, the writer task encoding each
    // as it takes it; the fourth carries a transactional id, which Produce v2 cannot.
    let mut answers = Vec::new();
    for i in 0..8u8 {
        let value = Bytes::from(vec![b'a' + i; 100]);
        let req = common::produce_request(&conn, &topic, 0, vec![Record::new(None, Some(value))]).await;
        let (req, v) =
            if i == 3 { (req.with_transactional_id(Some("t".into())), ApiVersion(2)) } else { (req, version) };
        answers.push(conn.send_ordered_owned(req, v, 0).await.unwrap());
    }
    let mut offsets = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        match answer.await {
            Ok(resp) => {
                let part = &resp.responses[0].partition_responses[0];
                assert_eq!(part.error_code, 0, "request {i}");
                offsets.push(part.base_offset);
            }
            Err(e) => {
                assert_eq!(i, 3, "only the request that cannot be encoded fails: {e}");
                assert!(matches!(e, Error::Encode { .. }), "{e}");
            }
        }
    }
    // The seven others landed in the order they were queued, on the same connection.
    assert_eq!(offsets, (0..7).collect::<Vec<i64>>());
    assert!(!conn.is_closed());
}
