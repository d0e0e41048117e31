//! Consumer groups against librdkafka's mock cluster: three brokers, the group coordinator
//! moved under the members, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS and
//! REBALANCE_IN_PROGRESS injected into the group requests.
//!
//! The mock's group coordinator waits 3 s before the first rebalance of a new group and
//! about the session timeout minus 1 s for members in later ones; it rebalances on every
//! JoinGroup (no KIP-345 shortcut for static members).

mod common;
mod members;

use kafkit::cluster::ClusterConfig;
use kafkit::{CooperativeStickyAssignor, ReaderConfig, RebalanceKind, TopicPartition, Writer, WriterConfig};
use members::*;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The mock advertises JoinGroup v6 and SyncGroup v4 but reads their (flexible) arrays as
/// the versions before did, closing the connection or crashing; and LeaveGroup v3-4 but
/// reads only v0-2's single member id. Use the versions it reads.
fn cluster_config() -> ClusterConfig {
    use kafkit::protocol::ApiKey;
    let mut c = ClusterConfig::default();
    c.dialer = kafkit::Dialer::new()
        .with_max_version(ApiKey::JoinGroup, 5)
        .with_max_version(ApiKey::SyncGroup, 3)
        .with_max_version(ApiKey::LeaveGroup, 2);
    c.backoff.min = Duration::from_millis(20);
    c.retry_timeout = Duration::from_secs(20);
    c
}

fn config(group: &str, topic: &str) -> ReaderConfig {
    member_config(group, topic).with_cluster(cluster_config())
}

/// The client that owns a mock cluster of 3 brokers whose groups rebalance without the
/// default 3 s initial delay (which is longer than these tests' session timeout: the mock
/// would time the members out before answering their first JoinGroup).
fn mock_client() -> BaseProducer {
    let p: BaseProducer = ClientConfig::new().set("test.mock.num.brokers", "3").create().unwrap();
    // SAFETY: the handle belongs to `p`, which is alive; the call only sets a number.
    #[allow(unsafe_code)]
    unsafe {
        let mcluster = rdkafka_sys::rd_kafka_handle_mock_cluster(p.client().native_ptr());
        assert!(!mcluster.is_null());
        rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(mcluster, 0);
    }
    p
}

/// A 12-partition topic led by all three brokers; the bootstrap list.
fn cluster<'a>(client: &'a BaseProducer, topic: &str) -> (MockCluster<'a, DefaultProducerContext>, String) {
    let mock = client.client().mock_cluster().unwrap();
    mock.create_topic(topic, 12, 3).unwrap();
    for p in 0..12 {
        mock.partition_leader(topic, p, Some(p % 3 + 1)).unwrap();
    }
    let seeds = mock.bootstrap_servers();
    (mock, seeds)
}

async fn writer(seeds: &str, topic: &str) -> Writer {
    let seeds: Vec<&str> = seeds.split(',').collect();
    // The mock checks no sequences for non-transactional producers: one batch in flight.
    let config = WriterConfig::default().with_topic(topic).with_max_in_flight(1).with_cluster(cluster_config());
    Writer::new(&seeds, config).await.unwrap()
}

async fn three(seeds: &str, group: &str, topic: &str, seen: &Arc<Seen>, coop: bool) -> Vec<Member> {
    let seed = seeds.split(',').next().unwrap();
    let config = |_| {
        let c = config(group, topic);
        if coop {
            c.with_assignor(CooperativeStickyAssignor)
        } else {
            c
        }
    };
    start_members(seed, 3, config, seen).await
}

/// Closes the members. Each close leaves the group, so the next member's final commit may
/// meet the mock's rebalance (the mock refuses commits while rebalancing; Kafka accepts them
/// from the current generation): then close says so, and nothing else may go wrong.
async fn close_all(members: impl IntoIterator<Item = Member>) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    for m in members {
        if let Err(e) = m.stop(Stop::Close).await {
            assert_eq!(e.error_code(), Some(kafkit::protocol::ErrorCode::RebalanceInProgress), "{e}");
        }
    }
}

/// Asserts that nothing was processed twice but the tails of partitions given up
/// uncommitted ([`Member::uncommitted`]). The mock completes a sync at the leader's
/// SyncGroup and answers a follower whose SyncGroup comes later REBALANCE_IN_PROGRESS, so
/// that member rejoins at once, and a commit that meets the new rebalance is refused (Kafka
/// accepts commits of the current generation then): what it would have committed is read
/// again by the next owner, as it should be. `also`: values that may be read twice besides.
fn assert_once_but_uncommitted(seen: &Seen, members: &[&Member], also: &BTreeSet<String>) {
    let uncommitted: BTreeSet<i32> = members.iter().flat_map(|m| m.uncommitted()).collect();
    let twice: BTreeSet<String> =
        seen.values().into_iter().filter(|(v, n)| *n > 1 && !also.contains(v)).map(|(v, _)| v).collect();
    let all = seen.0.lock().unwrap();
    let twice: Vec<(usize, i32, i64)> = all.iter().filter(|r| twice.contains(&r.3)).map(|r| (r.0, r.1, r.2)).collect();
    let unexplained: Vec<&(usize, i32, i64)> = twice.iter().filter(|r| !uncommitted.contains(&r.1)).collect();
    assert!(
        unexplained.is_empty(),
        "processed twice, of partitions whose commits were made: (member, partition, offset) {unexplained:?}"
    );
    if !twice.is_empty() {
        eprintln!("partitions {uncommitted:?} given up uncommitted; read again: {}", twice.len());
    }
}

#[tokio::test]
async fn mock_three_members_process_every_record_exactly_once() {
    let client = mock_client();
    let (_mock, seeds) = cluster(&client, "once");
    let seen = Arc::new(Seen::default());
    let members = three(&seeds, "g-once", "once", &seen, false).await;
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    let w = writer(&seeds, "once").await;
    produce(&w, 0, 2000).await;
    wait_until("all 2000 records", Duration::from_secs(30), || seen.distinct() == 2000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_once_but_uncommitted(&seen, &members.iter().collect::<Vec<_>>(), &BTreeSet::new());
    close_all(members).await;
}

#[tokio::test]
async fn mock_coordinator_moves_and_injected_group_errors_skip_nothing() {
    let client = mock_client();
    let (mock, seeds) = cluster(&client, "faults");
    mock.coordinator(MockCoordinator::Group("g-faults".into()), 1).unwrap();
    let seen = Arc::new(Seen::default());
    let members = three(&seeds, "g-faults", "faults", &seen, false).await;
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    let w = writer(&seeds, "faults").await;
    produce(&w, 0, 1000).await;
    wait_until("the first 1000", Duration::from_secs(30), || seen.distinct() == 1000).await;

    // The coordinator moves to broker 3: the members' requests to broker 1 get
    // NOT_COORDINATOR, and they find it again.
    mock.coordinator(MockCoordinator::Group("g-faults".into()), 3).unwrap();
    produce(&w, 1000, 2000).await;
    wait_until("the second 1000", Duration::from_secs(30), || seen.distinct() == 2000).await;

    // Injected errors: heartbeats told NOT_COORDINATOR and REBALANCE_IN_PROGRESS, commits
    // NOT_COORDINATOR, the rejoin COORDINATOR_LOAD_IN_PROGRESS, offset fetches
    // COORDINATOR_LOAD_IN_PROGRESS.
    use RDKafkaRespErr::*;
    mock.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS],
    );
    mock.request_errors(RDKafkaApiKey::OffsetCommit, &[RD_KAFKA_RESP_ERR_NOT_COORDINATOR; 2]);
    mock.request_errors(RDKafkaApiKey::JoinGroup, &[RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 2]);
    mock.request_errors(RDKafkaApiKey::OffsetFetch, &[RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 2]);
    let before = members.iter().map(Member::generation).max().unwrap();
    produce(&w, 2000, 3000).await;
    wait_until("the third 1000", Duration::from_secs(40), || seen.distinct() == 3000).await;
    wait_until("a rebalance after REBALANCE_IN_PROGRESS", Duration::from_secs(20), || {
        members.iter().any(|m| m.generation() > before)
    })
    .await;
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    // Still consuming after all that.
    produce(&w, 3000, 3300).await;
    wait_until("the last 300", Duration::from_secs(30), || seen.distinct() == 3300).await;
    let dups: usize = seen.values().values().map(|n| n - 1).sum();
    eprintln!("duplicates under injected faults: {dups}");
    close_all(members).await;
}

#[tokio::test]
async fn mock_a_killed_members_partitions_move_and_nothing_is_skipped() {
    let client = mock_client();
    let (_mock, seeds) = cluster(&client, "kill");
    let seen = Arc::new(Seen::default());
    let mut members = three(&seeds, "g-kill", "kill", &seen, false).await;
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    let w = writer(&seeds, "kill").await;
    produce(&w, 0, 1000).await;
    wait_until("the first 1000", Duration::from_secs(30), || seen.distinct() == 1000).await;
    let killed = members.remove(0);
    let gone = killed.assignment();
    killed.stop(Stop::Abort).await.unwrap();
    produce(&w, 1000, 2000).await;
    wait_until("all 2000", Duration::from_secs(40), || seen.distinct() == 2000).await;
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    for tp in &gone {
        assert!(members.iter().any(|m| m.assignment().contains(tp)), "{tp} was not taken over");
    }
    // Duplicates only of what the killed member had received.
    let killed_values: BTreeSet<String> = seen.of(0).into_iter().map(|r| r.2).collect();
    assert_once_but_uncommitted(&seen, &members.iter().collect::<Vec<_>>(), &killed_values);
    close_all(members).await;
}

#[tokio::test]
async fn mock_a_cooperative_join_keeps_the_other_members_partitions() {
    let client = mock_client();
    let (_mock, seeds) = cluster(&client, "coop");
    let seen = Arc::new(Seen::default());
    let seed = seeds.split(',').next().unwrap().to_string();
    let coop = || config("g-coop", "coop").with_assignor(CooperativeStickyAssignor);
    let mut members =
        vec![Member::start(&seed, coop(), 0, seen.clone()).await, Member::start(&seed, coop(), 1, seen.clone()).await];
    wait_balanced(&members.iter().collect::<Vec<_>>(), 12).await;
    let before: Vec<Vec<TopicPartition>> = members.iter().map(Member::assignment).collect();
    // The join under test is the third member's: the events before it (the first two
    // members balancing) are not its doing.
    let marks: Vec<usize> = members.iter().map(|m| m.events.lock().unwrap().len()).collect();
    let w = writer(&seeds, "coop").await;
    produce(&w, 0, 1000).await;
    let c = Member::start(&seed, coop(), 5, seen.clone()).await;
    produce(&w, 1000, 2000).await;
    members.push(c);
    wait_even(&members.iter().collect::<Vec<_>>(), 12).await;
    wait_until("all 2000", Duration::from_secs(30), || seen.distinct() == 2000).await;
    for (i, m) in members.iter().take(2).enumerate() {
        let now: BTreeSet<TopicPartition> = m.assignment().into_iter().collect();
        assert_eq!(now.len(), 4);
        assert!(now.iter().all(|tp| before[i].contains(tp)), "member {i} only keeps its own");
        let events = &m.events.lock().unwrap()[marks[i]..];
        for (kind, parts, _) in events {
            if *kind != RebalanceKind::Assigned {
                assert!(
                    parts.iter().all(|tp| !now.contains(tp)),
                    "member {i}: {kind:?} of a kept partition; before {:?}, now {now:?}, events {:?}",
                    before[i],
                    events.iter().map(|(k, p, _)| (k, p)).collect::<Vec<_>>()
                );
            }
        }
    }
    assert_once_but_uncommitted(&seen, &members.iter().collect::<Vec<_>>(), &BTreeSet::new());
    close_all(members).await;
}

/// librdkafka's mock answers a failed SyncGroup with a null assignment, which does not
/// decode (the schema's assignment is not nullable), so the round fails as a coordinator
/// error. The members then rejoin under the member ids their JoinGroup gave them: a joining
/// member that came back as a new one would leave its first id in the group until that
/// session timed out, and the leader would give the ghost a share (3 partitions each of 12
/// instead of 4). Seen under load in `mock_a_cooperative_join_keeps_the_other_members_partitions`.
#[tokio::test]
async fn mock_a_failed_sync_group_keeps_the_member_ids() {
    let client = mock_client();
    let (mock, seeds) = cluster(&client, "sync");
    let seen = Arc::new(Seen::default());
    let seed = seeds.split(',').next().unwrap().to_string();
    let cfg = || config("g-sync", "sync");
    let a = Member::start(&seed, cfg(), 0, seen.clone()).await;
    let b = Member::start(&seed, cfg(), 1, seen.clone()).await;
    wait_balanced(&[&a, &b], 12).await;
    let marks = [a.events.lock().unwrap().len(), b.events.lock().unwrap().len(), 0];
    // Each of the three members' next SyncGroup fails.
    use RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
    mock.request_errors(RDKafkaApiKey::SyncGroup, &[RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS; 3]);
    let c = Member::start(&seed, cfg(), 2, seen.clone()).await;
    let all = [&a, &b, &c];
    wait_even(&all, 12).await;
    for (i, m) in all.iter().enumerate() {
        let events = &m.events.lock().unwrap()[marks[i]..];
        for (kind, parts, _) in events {
            assert!(
                *kind != RebalanceKind::Assigned || parts.len() >= 4,
                "member {i} was assigned {} partitions: the group had a fourth member; events {:?}",
                parts.len(),
                events.iter().map(|(k, p, _)| (k, p.len())).collect::<Vec<_>>()
            );
        }
    }
    let w = writer(&seeds, "sync").await;
    produce(&w, 0, 300).await;
    wait_until("all 300", Duration::from_secs(30), || seen.distinct() == 300).await;
    close_all([a, b, c]).await;
}

/// The mock does not match static members by group instance id (it keeps the old member
/// until its session times out and rebalances on every join), so "the same partitions back,
/// no rebalance" is checked against Apache Kafka only (group.rs). Here: a static member's restart while
/// records flow leaves the group balanced and skips nothing.
#[tokio::test]
async fn mock_a_static_member_restarting_skips_nothing() {
    let client = mock_client();
    let (_mock, seeds) = cluster(&client, "static");
    let seen = Arc::new(Seen::default());
    let seed = seeds.split(',').next().unwrap().to_string();
    let stat = |id: &str| {
        config("g-static", "static")
            .with_session_timeout(Duration::from_secs(3))
            .with_assignor(CooperativeStickyAssignor)
            .with_group_instance_id(id)
    };
    let a = Member::start(&seed, stat("a"), 0, seen.clone()).await;
    let b = Member::start(&seed, stat("b"), 1, seen.clone()).await;
    wait_balanced(&[&a, &b], 12).await;
    let w = writer(&seeds, "static").await;
    produce(&w, 0, 500).await;
    wait_until("the first 500", Duration::from_secs(20), || seen.distinct() == 500).await;
    b.stop(Stop::Close).await.unwrap();
    produce(&w, 500, 1000).await;
    let b2 = Member::start(&seed, stat("b"), 2, seen.clone()).await;
    produce(&w, 1000, 1500).await;
    wait_until("all 1500", Duration::from_secs(30), || seen.distinct() == 1500).await;
    wait_until("6 partitions each", Duration::from_secs(20), || {
        a.assignment().len() == 6 && b2.assignment().len() == 6
    })
    .await;
    assert!(!seen.of(2).is_empty(), "the restarted member consumes");
    close_all([a, b2]).await;
}
