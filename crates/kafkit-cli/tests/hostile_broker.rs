//! A hostile broker never takes the process down (issue 14): a wire-level server in this
//! file, the one thing here that is not a real broker (no Kafka broker can be made to send
//! this), answers ApiVersions, Metadata, InitProducerId and Produce over real TCP with
//! kafkit-protocol's encoders. Its Metadata names topic `hostile` with one partition whose id
//! is 2,147,483,000 (which once made `kafkit produce` abort on a giant allocation) and topic
//! `good` with partitions 0 and 1. The Writer refuses `hostile` with `Error::Malformed` and
//! goes on writing `good`; `kafkit produce hostile` exits 1 with one line naming the topic.

mod run;

use bytes::{Bytes, BytesMut};
use kafkit::protocol::frame::encode_response;
use kafkit::protocol::messages::*;
use kafkit::protocol::{ApiKey, ApiVersion};
use kafkit::{Error, Message, Writer, WriterConfig};
use kafkit_testbed::wire::next_request;
use run::{kafkit, one_line_error};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const HUGE: i32 = 2_147_483_000;

/// Starts the hostile broker on a loopback port; returns its address.
async fn hostile_broker() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let addr2 = addr.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            tokio::spawn(serve(sock, addr2.clone()));
        }
    });
    addr
}

fn partition(id: i32) -> metadata_response::MetadataResponsePartition {
    metadata_response::MetadataResponsePartition::default()
        .with_partition_index(id)
        .with_leader_id(1)
        .with_replica_nodes(vec![1])
        .with_isr_nodes(vec![1])
}

fn topic(name: &str, ids: &[i32]) -> metadata_response::MetadataResponseTopic {
    metadata_response::MetadataResponseTopic::default()
        .with_name(Some(name.to_string()))
        .with_partitions(ids.iter().map(|&id| partition(id)).collect())
}

async fn serve(mut sock: tokio::net::TcpStream, addr: String) {
    let mut buf = BytesMut::new();
    loop {
        let Some((header, req)) = next_request(&mut sock, &mut buf).await else { return };
        let version = ApiVersion(header.request_api_version);
        let resp = match req {
            RequestKind::ApiVersions(_) => {
                let key = |k: ApiKey, max: i16| {
                    api_versions_response::ApiVersion::default()
                        .with_api_key(k.key())
                        .with_min_version(0)
                        .with_max_version(max)
                };
                ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(vec![
                    key(ApiKey::ApiVersions, 3),
                    key(ApiKey::Metadata, 12),
                    key(ApiKey::InitProducerId, 4),
                    key(ApiKey::Produce, 9),
                ]))
            }
            RequestKind::Metadata(_) => {
                let (host, port) = addr.rsplit_once(':').unwrap();
                ResponseKind::Metadata(
                    MetadataResponse::default()
                        .with_controller_id(1)
                        .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
                            .with_node_id(1)
                            .with_host(host.to_string())
                            .with_port(port.parse().unwrap())])
                        .with_topics(vec![topic("hostile", &[HUGE]), topic("good", &[0, 1])]),
                )
            }
            RequestKind::InitProducerId(_) => ResponseKind::InitProducerId(
                InitProducerIdResponse::default().with_producer_id(1).with_producer_epoch(0),
            ),
            RequestKind::Produce(p) => ResponseKind::Produce(
                ProduceResponse::default().with_responses(
                    p.topic_data
                        .iter()
                        .map(|t| {
                            produce_response::TopicProduceResponse::default()
                                .with_name(t.name.clone())
                                .with_partition_responses(
                                    t.partition_data
                                        .iter()
                                        .map(|d| {
                                            produce_response::PartitionProduceResponse::default().with_index(d.index)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            ),
            _ => return,
        };
        let mut out = BytesMut::new();
        encode_response(&mut out, header.correlation_id, &resp, version).unwrap();
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn the_writer_refuses_a_topic_with_a_huge_partition_id_and_keeps_writing_the_others() {
    let addr = hostile_broker().await;
    let writer = Writer::new(&[&addr], WriterConfig::default()).await.expect("writer");
    let msg = |t: &str| Message::new(None::<Bytes>, Some(Bytes::from_static(b"v"))).with_topic(t);
    let e = writer.write(msg("hostile")).await.expect_err("a partition id of 2,147,483,000 is malformed");
    let Error::Malformed { broker, what } = &e else { panic!("not Malformed: {e:?}") };
    assert_eq!(broker, &addr);
    assert!(what.contains("hostile") && what.contains(&HUGE.to_string()), "{what}");
    // The same topic again: the same error, not a panic or a hang.
    let again = writer.write(msg("hostile")).await.expect_err("still malformed");
    assert!(matches!(again, Error::Malformed { .. }), "{again:?}");
    // The topic next to it is written as usual.
    let delivered = tokio::time::timeout(Duration::from_secs(30), writer.write(msg("good")).await.expect("queued"))
        .await
        .expect("delivered in time")
        .expect("delivered");
    assert_eq!((delivered.topic.as_str(), delivered.offset), ("good", 0));
    assert!([0, 1].contains(&delivered.partition));
    writer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkit_produce_to_that_topic_exits_with_one_line_naming_it() {
    let addr = hostile_broker().await;
    let out = tokio::task::spawn_blocking(move || kafkit(&addr, &["produce", "hostile"], b"x\n")).await.unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("hostile") && err.contains("malformed"), "{err}");
}
