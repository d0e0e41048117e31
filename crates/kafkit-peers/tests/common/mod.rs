//! What the harness's tests share: topics of 6 partitions on a broker, and reading them back
//! with kafkit.

#![allow(dead_code)] // Each test file uses its own part.

use std::time::Duration;

/// A record as read back: (partition, key, value).
pub type Record = (i32, Option<Vec<u8>>, Vec<u8>);

/// A new topic of 6 partitions (its name starts with `prefix`) on `brokers`.
pub fn create_topic(rt: &tokio::runtime::Runtime, brokers: &str, prefix: &str) -> String {
    let topic = kafkit_testbed::unique(prefix);
    rt.block_on(async {
        let c = kafkit::Cluster::connect(&[brokers], Default::default()).await.expect("connect");
        let admin = c.controller(kafkit::Workload::Admin).await.expect("controller");
        admin.create_topics(&[kafkit::TopicConfig::new(&topic, 6)]).await.expect("create topic");
    });
    topic
}

/// The `n` records of `topic` (6 partitions), read with kafkit from the start, sorted; with
/// `exactly`, also that no further record comes within 500 ms.
pub fn read_back(rt: &tokio::runtime::Runtime, brokers: &str, topic: &str, n: usize, exactly: bool) -> Vec<Record> {
    let mut got = rt.block_on(async {
        let cluster = kafkit::Cluster::connect(&[brokers], Default::default()).await.expect("connect");
        let parts = (0..6).map(|p| kafkit::TopicPartition::new(topic.to_string(), p));
        let config = kafkit::ReaderConfig::assign(parts).with_max_wait(Duration::from_millis(100));
        let mut r = kafkit::Reader::with_cluster(cluster, config).await.expect("reader");
        let mut got = Vec::new();
        while got.len() < n {
            let m = tokio::time::timeout(Duration::from_secs(30), r.read_message())
                .await
                .unwrap_or_else(|_| panic!("{topic}: only {} records read", got.len()))
                .expect("read");
            got.push((m.partition, m.key.map(|k| k.to_vec()), m.value.map(|v| v.to_vec()).unwrap_or_default()));
        }
        if exactly {
            let more = tokio::time::timeout(Duration::from_millis(500), r.read_message()).await;
            assert!(more.is_err(), "more than {n} records on {topic}");
        }
        r.abort();
        got
    });
    got.sort();
    got
}
