//! What the integration tests share: the Apache Kafka clusters of `kafkit-testbed`
//! (`scripts/kafka.sh`), unique names, and a raw Produce request for `Conn`-level tests.
#![allow(dead_code, unused_imports)]

pub use kafkit_testbed::{
    free_port, unique as unique_topic, users, Cluster, ClusterOptions, Listener, Proxy, ProxyMode,
};

/// The run's shared Apache Kafka node (unique topic and group names keep tests apart).
pub fn kafka() -> &'static Cluster {
    init_tracing();
    Cluster::shared()
}

/// `RUST_LOG=kafkit=debug cargo test ... -- --nocapture` shows the client's logs.
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// Creates topics and waits until every partition's leader serves it. Kafka's CreateTopics
/// answers once the controller has the topic; its partition leaders take a moment more, and
/// answer NOT_LEADER_OR_FOLLOWER meanwhile (the Java test kit waits for metadata the same
/// way). Tests that count requests or connections start from a topic that is ready.
pub async fn create_topics(addr: &str, topics: &[kafkit::TopicConfig]) {
    let conn = kafkit::Dialer::new().dial(addr).await.expect("dial to create topics");
    conn.create_topics(topics).await.expect("create topics");
    for t in topics {
        wait_ready(addr, &t.topic, t.num_partitions).await;
    }
}

/// Waits (up to 30 s) until the leader of every partition of `topic` answers ListOffsets.
pub async fn wait_ready(addr: &str, topic: &str, partitions: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for p in 0..partitions {
        loop {
            let r = match kafkit::Dialer::new().dial_leader(addr, topic, p).await {
                Ok(pc) => pc.read_offsets().await.map(|_| ()),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => break,
                Err(e) if e.is_retriable() && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => panic!("{topic}/{p} is not served: {e}"),
            }
        }
    }
}

/// An acks=all ProduceRequest carrying `records` as one batch to `topic`/`partition`, for
/// `conn`: by topic id from Produce v13 (KIP-516; the id from a Metadata request), by name
/// before.
pub async fn produce_request(
    conn: &kafkit::Conn,
    topic: &str,
    partition: i32,
    records: Vec<kafkit::protocol::record::Record>,
) -> kafkit::protocol::messages::ProduceRequest {
    use kafkit::protocol::messages::{produce_request, ProduceRequest};
    let mut batch = kafkit::protocol::record::RecordBatch::new(1_700_000_000_000);
    batch.records = records.into_iter().enumerate().map(|(i, r)| r.with_offset_delta(i as i32)).collect();
    let mut buf = bytes::BytesMut::new();
    batch.encode(&mut buf).expect("encode a test batch");
    let data = produce_request::TopicProduceData::default().with_partition_data(vec![
        produce_request::PartitionProduceData::default().with_index(partition).with_records(Some(buf.freeze())),
    ]);
    let by_id = conn.version_for::<ProduceRequest>().map(|v| v.0 >= 13).unwrap_or(false);
    let data = if by_id {
        let meta = conn.metadata(Some(&[topic])).await.expect("the topic's metadata");
        data.with_topic_id(meta.topics[0].topic_id)
    } else {
        data.with_name(topic.into())
    };
    ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![data])
}
