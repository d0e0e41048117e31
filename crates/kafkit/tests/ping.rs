//! `ping()` on the cluster client, the Writer, the Reader and the admin Client, against Apache
//! Kafka: a live broker answers within the timeout on a connection of its own; a broker that
//! went silent (a blackholed proxy in front of its advertised listener) and a closed port
//! fail within it.

mod common;

use common::{kafka, unique_topic, Cluster as TestCluster, ClusterOptions, Proxy, ProxyMode};
use kafkit::cluster::{Cluster, ClusterConfig};
use kafkit::{Reader, ReaderConfig, TopicConfig, Writer, WriterConfig};
use std::time::{Duration, Instant};

#[tokio::test]
async fn ping_answers_from_every_client() {
    let k = kafka();
    let addr = k.addr();
    let topic = unique_topic("ping");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;

    let cluster = Cluster::connect(&[&addr], ClusterConfig::default()).await.unwrap();
    let p = cluster.ping(Duration::from_secs(5)).await.unwrap();
    assert_eq!(p.brokers, k.nodes(), "{p:?}");
    assert!(p.cluster_id.is_some() && p.controller_id >= 0, "{p:?}");
    let dials = cluster.dials();
    cluster.ping(Duration::from_secs(5)).await.unwrap();
    assert_eq!(cluster.dials(), dials + 1, "a ping makes a connection of its own");
    eprintln!("ping of {} took {:?}", p.addr, p.elapsed);

    let writer = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic)).await.unwrap();
    assert_eq!(writer.ping(Duration::from_secs(5)).await.unwrap().brokers, k.nodes());
    let reader = Reader::new(&[&addr], ReaderConfig::new(&topic, 0)).await.unwrap();
    assert_eq!(reader.ping(Duration::from_secs(5)).await.unwrap().brokers, k.nodes());
    let admin = kafkit::admin::Client::new(&[&addr], ClusterConfig::default()).await.unwrap();
    assert_eq!(admin.ping(Duration::from_secs(5)).await.unwrap().brokers, k.nodes());
}

// The proxy runs its own runtime, so this test starts and drops it outside of one.
#[test]
fn ping_fails_within_its_timeout_when_the_broker_goes_silent() {
    let k = TestCluster::start(ClusterOptions::default().proxied());
    let (real, advertised) = k.proxied(1);
    let proxy = Proxy::start(&advertised, &real);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cluster = Cluster::connect(&[&advertised], ClusterConfig::default()).await.unwrap();
        cluster.ping(Duration::from_secs(5)).await.unwrap();

        proxy.set_mode(ProxyMode::Blackhole);
        let t = Duration::from_millis(800);
        let started = Instant::now();
        let r = cluster.ping(t).await;
        let took = started.elapsed();
        let err = r.expect_err("a silent broker fails the ping");
        assert!(err.is_timeout(), "{err}");
        assert!(took >= t && took < t + Duration::from_millis(500), "gave up after {took:?}");
        eprintln!("ping of a silent broker failed after {took:?}: {err}");

        proxy.set_mode(ProxyMode::Refuse);
        let started = Instant::now();
        let err = cluster.ping(Duration::from_secs(3)).await.expect_err("a refused connection fails the ping");
        assert!(started.elapsed() < Duration::from_secs(3), "{err}");
        eprintln!("ping of a refused connection failed after {:?}: {err}", started.elapsed());

        proxy.set_mode(ProxyMode::Forward);
        cluster.ping(Duration::from_secs(5)).await.unwrap();
    });
    drop(rt);
}
