//! The cluster client against a real broker (Apache Kafka): bootstrap, metadata, routing,
//! per-workload connections, coordinators, and retries that refresh metadata.

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::cluster::{Cluster, ClusterConfig, CoordinatorType, Workload};
use kafkit::{Error, TopicConfig};
use kafkit_protocol::messages::{fetch_request, FetchRequest};
use kafkit_protocol::record::Record;
use kafkit_protocol::ErrorCode;
use std::time::Duration;

async fn cluster(addr: &str) -> Cluster {
    Cluster::connect(&[addr], ClusterConfig::default()).await.unwrap()
}

#[tokio::test]
async fn bootstrap_metadata_and_leader_routing() {
    let broker = common::kafka();
    // An unreachable seed first: the next one is used.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let c = Cluster::connect(&[&dead, &broker.addr()], ClusterConfig::default()).await.unwrap();
    let m = c.metadata();
    // The shared node: node id 1, a combined broker and controller. (Kafka's Metadata names
    // a random live broker as the "controller" of a KRaft cluster: here, the one node.)
    assert_eq!(m.brokers.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(m.controller_id, 1);

    let topic = unique_topic("cluster");
    c.controller(Workload::Admin).await.unwrap().create_topics(&[TopicConfig::new(&topic, 4)]).await.unwrap();
    // The broker learns of the new topic a moment after CreateTopics answers: retry until then.
    let t = c.retry(|| c.topic(&topic)).await.unwrap();
    assert_eq!(t.partitions.iter().map(|p| p.id).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert!(!t.id.is_zero(), "Metadata v10+ carries topic ids");
    for p in 0..4 {
        let (conn, meta) = c.leader(&topic, p, Workload::Produce).await.unwrap();
        assert_eq!(meta.leader, 1);
        assert_eq!(conn.addr(), broker.addr());
    }
    let err = c.leader(&topic, 9, Workload::Produce).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition), "{err}");
    let err = c.topic(&unique_topic("absent")).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition), "{err}");

    // On a new broker the first FindCoordinator creates __consumer_offsets and answers
    // COORDINATOR_NOT_AVAILABLE meanwhile: retriable, as documented.
    let group = unique_topic("group");
    let coord = c.retry(|| c.coordinator(&group, CoordinatorType::Group, Workload::Group)).await.unwrap();
    assert_eq!(coord.addr(), broker.addr());

    assert!(matches!(Cluster::connect(&[], ClusterConfig::default()).await, Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn a_long_poll_fetch_does_not_hold_up_a_produce_to_the_same_broker() {
    let broker = common::kafka();
    let c = cluster(&broker.addr()).await;
    let (empty, busy) = (unique_topic("idle"), unique_topic("busy"));
    common::create_topics(&broker.addr(), &[TopicConfig::new(&empty, 1), TopicConfig::new(&busy, 1)]).await;

    // A fetch on an empty partition that waits up to 3 s for one byte.
    let (fetch_conn, _) = c.leader(&empty, 0, Workload::Fetch).await.unwrap();
    let id = c.topic(&empty).await.unwrap().id;
    let v = fetch_conn.version_for::<FetchRequest>().unwrap();
    let ft = fetch_request::FetchTopic::default()
        .with_partitions(vec![fetch_request::FetchPartition::default().with_partition(0)]);
    let ft = if v.0 >= 13 { ft.with_topic_id(id) } else { ft.with_topic(empty.clone()) };
    let fetch = FetchRequest::default().with_max_wait_ms(3000).with_min_bytes(1).with_topics(vec![ft]);
    let long_poll = fetch_conn.request_version(&fetch, v);
    tokio::pin!(long_poll);

    let produce = async {
        // Let the fetch be sent first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (conn, _) = c.leader(&busy, 0, Workload::Produce).await.unwrap();
        conn.request(
            &common::produce_request(&conn, &busy, 0, vec![Record::new(None, Some(Bytes::from_static(b"x")))]).await,
        )
        .await
        .unwrap()
    };
    tokio::select! {
        biased;
        r = &mut long_poll => panic!("the long poll finished first: {r:?}"),
        resp = produce => assert_eq!(resp.responses[0].partition_responses[0].error_code, 0),
    }
    // The fetch is still waiting and completes on its own.
    let resp = long_poll.await.unwrap();
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
}

#[tokio::test]
async fn retry_refreshes_metadata_until_a_topic_appears() {
    let broker = common::kafka();
    let c = cluster(&broker.addr()).await;
    let topic = unique_topic("later");
    let creator = {
        let c = c.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            c.controller(Workload::Admin).await.unwrap().create_topics(&[TopicConfig::new(&topic, 2)]).await.unwrap();
        })
    };
    let mut tries = 0;
    let partitions = c
        .retry(|| {
            tries += 1;
            let c = c.clone();
            let topic = topic.clone();
            async move { c.topic(&topic).await.map(|t| t.partitions.len()) }
        })
        .await
        .unwrap();
    creator.await.unwrap();
    assert_eq!(partitions, 2);
    assert!(tries >= 2, "{tries}");

    // Errors that are not retriable come back at once.
    let mut tries = 0;
    let err = c
        .retry(|| {
            tries += 1;
            async { Err::<(), _>(Error::InvalidArgument("no".into())) }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
    assert_eq!(tries, 1);
}

#[tokio::test]
async fn connections_come_back_after_the_broker_restarts() {
    // A cluster of its own: this test kills its node and starts it again (same port, same
    // data).
    let broker = common::Cluster::start(common::ClusterOptions::default());
    let c = cluster(&broker.addr()).await;
    let before = c.any_broker(Workload::Admin).await.unwrap();
    broker.kill(1);
    // Wait until the old connection notices.
    for _ in 0..50 {
        if before.is_closed() {
            break;
        }
        let _ = before.metadata(Some(&[])).await;
    }
    assert!(before.is_closed());
    broker.restart(1);
    let brokers = c
        .retry(|| {
            let c = c.clone();
            async move { c.any_broker(Workload::Admin).await?.brokers().await }
        })
        .await
        .unwrap();
    assert_eq!(brokers[0].id, 1);
    assert!(!c.any_broker(Workload::Admin).await.unwrap().is_closed());
}
