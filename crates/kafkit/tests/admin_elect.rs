//! Preferred leader election on a dedicated 3-node Apache Kafka cluster: leadership moves
//! away when the preferred replica's node stops, ElectLeaders cannot bring it back while that
//! node is down, and brings it back once the node has caught up.

mod common;

use common::{Cluster, ClusterOptions};
use kafkit::admin::{Client, ElectionType};
use kafkit::protocol::ErrorCode;
use kafkit::{ClusterConfig, TopicConfig, TopicPartition};
use std::time::{Duration, Instant};

/// Leader and in-sync replicas of `tp`, from fresh metadata; `None` while the node asked does
/// not know the partition yet (each node learns a new topic from the metadata log on its own).
async fn leadership(admin: &Client, tp: &TopicPartition) -> Option<(i32, Vec<i32>)> {
    let meta = admin.cluster().refresh_metadata(Some(&[&tp.topic])).await.unwrap();
    let p = meta.partition(&tp.topic, tp.partition)?;
    let mut isr = p.isr.clone();
    isr.sort();
    Some((p.leader, isr))
}

/// Waits up to 60 s for `tp`'s leadership to satisfy `ok`.
async fn until(admin: &Client, tp: &TopicPartition, what: &str, ok: impl Fn(i32, &[i32]) -> bool) -> (i32, Vec<i32>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = leadership(admin, tp).await;
        if let Some((leader, isr)) = &now {
            if ok(*leader, isr) {
                return (*leader, isr.clone());
            }
        }
        assert!(Instant::now() < deadline, "{what}: (leader, isr) {now:?} after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn preferred_leaders_are_elected_back_after_a_node_returns() {
    common::init_tracing();
    // No automatic rebalancing of leaders: only the test's election moves them back.
    let t0 = Instant::now();
    let cluster = Cluster::start(ClusterOptions::default().nodes(3).set("auto.leader.rebalance.enable", "false"));
    let seeds: Vec<String> = cluster.addrs_on(common::Listener::Plaintext);
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let admin = Client::new(&seeds, ClusterConfig::default()).await.unwrap();
    let d = admin.describe_cluster().await.unwrap();
    assert_eq!(d.brokers.iter().map(|b| b.id).collect::<Vec<_>>(), [1, 2, 3]);

    let topic = common::unique_topic("elect");
    // Partition 0 prefers node 1, partition 1 node 2.
    let config =
        TopicConfig::new(&topic, 2).with_replica_assignment(0, vec![1, 2, 3]).with_replica_assignment(1, vec![2, 3, 1]);
    let created = admin.create_topics(&[config], false).await.unwrap();
    assert!(created[&topic].is_ok(), "{created:?}");
    let (p0, p1) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1));
    until(&admin, &p0, "partition 0 led by node 1", |l, isr| l == 1 && isr == [1, 2, 3]).await;
    until(&admin, &p1, "partition 1 led by node 2", |l, isr| l == 2 && isr == [1, 2, 3]).await;
    let parts = [p0.clone(), p1.clone()];
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&parts)).await.unwrap();
    assert!(
        parts.iter().all(|tp| r[tp].as_ref().unwrap_err().error_code() == Some(ErrorCode::ElectionNotNeeded)),
        "{r:?}"
    );

    // Node 1 stops (a controlled shutdown): partition 0 moves to another replica.
    eprintln!("3 nodes up, topic led as assigned: {:?}", t0.elapsed());
    let t = Instant::now();
    cluster.stop(1);
    eprintln!("node 1 stopped in {:?}", t.elapsed());
    let (moved_to, _) = until(&admin, &p0, "partition 0 leaves node 1", |l, isr| l > 1 && !isr.contains(&1)).await;
    assert!([2, 3].contains(&moved_to));
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&parts)).await.unwrap();
    let e = r[&p0].as_ref().unwrap_err();
    assert_eq!(e.error_code(), Some(ErrorCode::PreferredLeaderNotAvailable), "{e}");
    assert_eq!(r[&p1].as_ref().unwrap_err().error_code(), Some(ErrorCode::ElectionNotNeeded));

    // Back, and in sync again: the preferred election hands partition 0 back to node 1.
    let t = Instant::now();
    cluster.restart(1);
    until(&admin, &p0, "node 1 back in sync", |l, isr| l == moved_to && isr == [1, 2, 3]).await;
    eprintln!("node 1 restarted and in sync in {:?}", t.elapsed());
    let started = Instant::now();
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&parts)).await.unwrap();
    assert!(r[&p0].is_ok(), "{r:?}");
    assert_eq!(r[&p1].as_ref().unwrap_err().error_code(), Some(ErrorCode::ElectionNotNeeded));
    let (leader, _) = until(&admin, &p0, "node 1 leads again", |l, _| l == 1).await;
    eprintln!("preferred election answered and seen in metadata after {:?}", started.elapsed());
    assert_eq!(leader, 1);
    // Nothing left to do: asked for every partition, Kafka reports none.
    assert!(admin.elect_leaders(ElectionType::Preferred, None).await.unwrap().is_empty());
}
