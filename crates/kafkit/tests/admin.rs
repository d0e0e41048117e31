//! The admin `Client` against Apache Kafka (the shared single node): topics (also
//! validate-only and refused), partitions (also seen by a running group), configs of topics
//! and brokers with their sources, incremental config changes, the cluster, leader
//! elections, groups and their offsets, and SCRAM credentials.

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::admin::*;
use kafkit::protocol::ErrorCode;
use kafkit::{
    ClusterConfig, Dialer, Error, Message, Reader, ReaderConfig, Sasl, TopicConfig, TopicPartition, Writer,
    WriterConfig,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn admin(addr: &str) -> Client {
    Client::new(&[addr], ClusterConfig::default()).await.unwrap()
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn code<T: std::fmt::Debug>(r: &kafkit::Result<T>) -> Option<ErrorCode> {
    r.as_ref().err().and_then(Error::error_code)
}

async fn configs(admin: &Client, r: &ConfigResource) -> BTreeMap<String, ConfigEntry> {
    let got = admin.describe_configs(std::slice::from_ref(r)).await.unwrap();
    got[r].as_ref().unwrap().iter().map(|e| (e.name.clone(), e.clone())).collect()
}

fn entry(value: Option<&str>, source: ConfigSource) -> (Option<String>, ConfigSource) {
    (value.map(str::to_string), source)
}

fn shown(e: &ConfigEntry) -> (Option<String>, ConfigSource) {
    (e.value.clone(), e.source)
}

/// Where `min.insync.replicas` (set in server.properties) is reported from: a new Kafka 4.4
/// cluster (formatted with eligible leader replicas on, KIP-966, whose controller keeps it
/// cluster-wide) reports the cluster-wide dynamic default, 3.9 the broker's static config.
fn min_isr_source(broker: &common::Cluster) -> ConfigSource {
    if broker.version().at_least(4, 0) {
        ConfigSource::DynamicDefaultBroker
    } else {
        ConfigSource::StaticBroker
    }
}

#[tokio::test]
async fn topics_created_validated_refused_and_deleted() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    let (a, b) = (unique_topic("adm-a"), unique_topic("adm-b"));
    let r = admin
        .create_topics(
            &[TopicConfig::new(&a, 3).with_config("retention.ms", "3600000"), TopicConfig::new(&b, 2)],
            false,
        )
        .await
        .unwrap();
    // CreateTopics v7: the broker says what it made (the default replication factor is 1
    // on one node) and the topic id.
    let created = r[&a].as_ref().unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
    assert_ne!(created.id, kafkit::protocol::Uuid::ZERO);
    // CreateTopics answers once the controller has the topic; the broker's metadata has it
    // a moment later (UNKNOWN_TOPIC_OR_PARTITION until then).
    common::wait_ready(&broker.addr(), &a, 3).await;
    assert_eq!(admin.cluster().topic(&a).await.unwrap().id, created.id);
    assert!(r[&b].is_ok());

    // Validate only: Kafka checks and answers as for a creation, and creates nothing.
    let v = unique_topic("adm-v");
    let r = admin.create_topics(&[TopicConfig::new(&v, 4)], true).await.unwrap();
    assert_eq!(r[&v].as_ref().unwrap().num_partitions, 4);
    let missing = admin.cluster().refresh_metadata(Some(&[&v])).await.unwrap();
    assert_eq!(missing.topics[&v].error, Some(ErrorCode::UnknownTopicOrPartition));
    // What Kafka refuses, each topic on its own, validated or not.
    let bad = |s: &str| unique_topic(&format!("adm-bad-{s}"));
    let (policy, unknown, zero, rf, name) =
        (bad("policy"), bad("key"), bad("zero"), bad("rf"), "adm/slash".to_string());
    for validate_only in [true, false] {
        let r = admin
            .create_topics(
                &[
                    TopicConfig::new(&policy, 1).with_config("cleanup.policy", "bogus"),
                    TopicConfig::new(&unknown, 1).with_config("no.such.config", "1"),
                    TopicConfig::new(&zero, 0),
                    TopicConfig::new(&rf, 1).with_replication_factor(3),
                    TopicConfig::new(&name, 1),
                ],
                validate_only,
            )
            .await
            .unwrap();
        assert_eq!(code(&r[&policy]), Some(ErrorCode::InvalidConfig), "{r:?}");
        assert_eq!(code(&r[&unknown]), Some(ErrorCode::InvalidConfig), "{r:?}");
        assert_eq!(code(&r[&zero]), Some(ErrorCode::InvalidPartitions), "{r:?}");
        assert_eq!(code(&r[&rf]), Some(ErrorCode::InvalidReplicationFactor), "{r:?}");
        assert_eq!(code(&r[&name]), Some(ErrorCode::InvalidTopicException), "{r:?}");
        assert!(r.values().all(|e| !e.as_ref().unwrap_err().is_retriable()));
    }
    let asked = [&policy, &unknown, &zero, &rf];
    let m = admin.cluster().refresh_metadata(Some(&asked.map(String::as_str))).await.unwrap();
    for t in asked {
        assert_eq!(m.topics[t].error, Some(ErrorCode::UnknownTopicOrPartition), "{t} was not created");
    }

    // One topic exists already, the other is created.
    let c = unique_topic("adm-c");
    let r = admin.create_topics(&[TopicConfig::new(&a, 3), TopicConfig::new(&c, 1)], false).await.unwrap();
    assert_eq!(code(&r[&a]), Some(ErrorCode::TopicAlreadyExists));
    assert!(r[&c].is_ok());

    let r = admin.delete_topics(&[&b, "no-such-topic-kafkit"]).await.unwrap();
    assert!(r[&b].is_ok());
    assert_eq!(code(&r["no-such-topic-kafkit"]), Some(ErrorCode::UnknownTopicOrPartition));
}

#[tokio::test]
async fn topic_configs_and_incremental_changes() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    let t = unique_topic("adm-cfg");
    admin.create_topics(&[TopicConfig::new(&t, 1).with_config("retention.ms", "3600000")], false).await.unwrap()[&t]
        .as_ref()
        .unwrap();
    // The broker answers DescribeConfigs from its metadata, which has the topic a moment later.
    common::wait_ready(&broker.addr(), &t, 1).await;
    let topic = ConfigResource::Topic(t.clone());
    // Kafka reports every topic config with its source: set on the topic, the broker's
    // cluster-wide dynamic default (min.insync.replicas, which Kafka 4 keeps there), or its
    // own default.
    let all = configs(&admin, &topic).await;
    assert!(all.len() > 30, "{}", all.len());
    assert_eq!(shown(&all["retention.ms"]), entry(Some("3600000"), ConfigSource::Topic));
    assert_eq!(shown(&all["cleanup.policy"]), entry(Some("delete"), ConfigSource::Default));
    assert_eq!(shown(&all["segment.bytes"]), entry(Some("1073741824"), ConfigSource::Default));
    assert_eq!(shown(&all["min.insync.replicas"]), entry(Some("1"), min_isr_source(&broker)));
    assert!(all.values().all(|e| !e.read_only && !e.sensitive));

    let alter = |ops: Vec<(&str, AlterConfigOp)>, validate_only| {
        let change = vec![(topic.clone(), ops.into_iter().map(|(k, op)| (k.to_string(), op)).collect())];
        let admin = admin.clone();
        async move { admin.incremental_alter_configs(&change, validate_only).await.unwrap() }
    };
    // The controller takes a change before the broker's metadata has it: DescribeConfigs
    // answers from the broker's metadata, so a change shows a moment after it was accepted.
    let settled = |want: Vec<(&'static str, (Option<String>, ConfigSource))>| {
        let (admin, topic) = (admin.clone(), topic.clone());
        async move {
            let what = format!("{want:?}");
            eventually(10, &what, || async {
                let now = configs(&admin, &topic).await;
                want.iter().all(|(k, v)| shown(&now[*k]) == *v).then_some(())
            })
            .await
        }
    };
    // Validate only: checked, not applied.
    let r = alter(vec![("retention.ms", AlterConfigOp::Set("7200000".into()))], true).await;
    assert!(r[&topic].is_ok(), "{r:?}");
    assert_eq!(configs(&admin, &topic).await["retention.ms"].value.as_deref(), Some("3600000"));
    // Set; a list value grown by Append and shrunk by Subtract; Delete back to the default.
    let r = alter(
        vec![
            ("retention.ms", AlterConfigOp::Set("7200000".into())),
            ("cleanup.policy", AlterConfigOp::Append("compact".into())),
        ],
        false,
    )
    .await;
    assert!(r[&topic].is_ok(), "{r:?}");
    settled(vec![
        ("retention.ms", entry(Some("7200000"), ConfigSource::Topic)),
        ("cleanup.policy", entry(Some("delete,compact"), ConfigSource::Topic)),
    ])
    .await;
    let r = alter(
        vec![("cleanup.policy", AlterConfigOp::Subtract("delete".into())), ("retention.ms", AlterConfigOp::Delete)],
        false,
    )
    .await;
    assert!(r[&topic].is_ok(), "{r:?}");
    settled(vec![
        ("cleanup.policy", entry(Some("compact"), ConfigSource::Topic)),
        // scripts/kafka.sh's log.retention.ms.
        ("retention.ms", entry(Some("-1"), ConfigSource::StaticBroker)),
    ])
    .await;

    // Refused, and nothing of a refused request is applied: Append to a value that is not a
    // list, a value that does not parse, a key Kafka does not know.
    for ops in [
        vec![("retention.ms", AlterConfigOp::Append("1".into()))],
        vec![("segment.ms", AlterConfigOp::Set("3600000".into())), ("retention.ms", AlterConfigOp::Set("soon".into()))],
        vec![("no.such.config", AlterConfigOp::Set("1".into()))],
    ] {
        let what = format!("{ops:?}");
        let r = alter(ops, false).await;
        assert_eq!(code(&r[&topic]), Some(ErrorCode::InvalidConfig), "{what}: {r:?}");
    }
    let now = configs(&admin, &topic).await;
    assert_eq!(shown(&now["segment.ms"]), entry(Some("604800000"), ConfigSource::Default));
    // A topic that does not exist: an error of that resource only.
    let gone = ConfigResource::Topic(unique_topic("adm-cfg-none"));
    let got = admin.describe_configs(&[gone.clone(), topic.clone()]).await.unwrap();
    assert_eq!(code(&got[&gone]), Some(ErrorCode::UnknownTopicOrPartition), "{got:?}");
    assert!(got[&topic].is_ok());
}

#[tokio::test]
async fn broker_configs_with_their_sources_and_a_dynamic_change() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    let node = ConfigResource::Broker(1);
    let all = configs(&admin, &node).await;
    // From scripts/kafka.sh's server.properties (static, read-only where Kafka cannot change
    // them at run time), Kafka's defaults, and the cluster-wide dynamic default.
    assert_eq!(shown(&all["node.id"]), entry(Some("1"), ConfigSource::StaticBroker));
    assert!(all["node.id"].read_only);
    assert_eq!(shown(&all["group.min.session.timeout.ms"]), entry(Some("1000"), ConfigSource::StaticBroker));
    assert_eq!(shown(&all["offsets.topic.num.partitions"]), entry(Some("10"), ConfigSource::StaticBroker));
    assert_eq!(shown(&all["num.network.threads"]), entry(Some("3"), ConfigSource::Default));
    assert_eq!(shown(&all["log.retention.hours"]), entry(Some("168"), ConfigSource::Default));
    assert_eq!(shown(&all["min.insync.replicas"]), entry(Some("1"), min_isr_source(&broker)));
    // Secrets are flagged and their values withheld.
    let jaas = &all["listener.name.sasl_plaintext.plain.sasl.jaas.config"];
    assert_eq!((jaas.sensitive, jaas.value.as_deref(), jaas.source), (true, None, ConfigSource::StaticBroker));
    assert!(all.values().filter(|e| e.sensitive).all(|e| e.value.is_none()));

    // A per-broker dynamic change, and back (Delete restores the default). The shared node
    // outlives test runs: a run stopped half-way may have left the change behind.
    let set = |op: AlterConfigOp| vec![(node.clone(), vec![("log.cleaner.backoff.ms".to_string(), op)])];
    let now = || async { shown(&configs(&admin, &node).await["log.cleaner.backoff.ms"]) };
    let default = entry(Some("15000"), ConfigSource::Default);
    if now().await != default {
        admin.incremental_alter_configs(&set(AlterConfigOp::Delete), false).await.unwrap();
        eventually(10, "the default", || async { (now().await == default).then_some(()) }).await;
    }
    let r = admin.incremental_alter_configs(&set(AlterConfigOp::Set("20000".into())), false).await.unwrap();
    assert!(r[&node].is_ok(), "{r:?}");
    // The broker applies it a moment after the controller took it; its source can turn
    // dynamic before its value changes.
    let want = entry(Some("20000"), ConfigSource::DynamicBroker);
    eventually(10, "the dynamic broker config", || async { (now().await == want).then_some(()) }).await;
    let r = admin.incremental_alter_configs(&set(AlterConfigOp::Delete), false).await.unwrap();
    assert!(r[&node].is_ok(), "{r:?}");
    eventually(10, "the default again", || async { (now().await == default).then_some(()) }).await;
    // A read-only config cannot be changed at run time.
    let ro = vec![(node.clone(), vec![("node.id".to_string(), AlterConfigOp::Set("7".into()))])];
    let r = admin.incremental_alter_configs(&ro, false).await.unwrap();
    assert_eq!(code(&r[&node]), Some(ErrorCode::InvalidRequest), "{r:?}");
    // A broker the cluster does not have: no connection to route it to.
    let e = admin.describe_configs(&[ConfigResource::Broker(42)]).await.unwrap_err();
    assert_eq!(e.error_code(), Some(ErrorCode::BrokerNotAvailable), "{e}");
}

#[tokio::test]
async fn create_partitions_reach_a_running_group() {
    let broker = common::kafka();
    let addr = broker.addr();
    let admin = admin(&addr).await;
    let t = unique_topic("adm-parts");
    common::create_topics(&addr, &[TopicConfig::new(&t, 1)]).await;
    let group = unique_topic("adm-parts-g");
    let config = ReaderConfig::group(&group, std::slice::from_ref(&t))
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_millis(300))
        .with_partition_watch_interval(Duration::from_millis(300))
        .with_max_wait(Duration::from_millis(100));
    let mut member = Reader::new(&[&addr], config).await.unwrap();
    let pc = Dialer::new().dial_leader(&addr, &t, 0).await.unwrap();
    pc.write_messages(&[Message::new(None::<Bytes>, Some(Bytes::from("p0")))]).await.unwrap();
    let m = member.fetch_message().await.unwrap();
    assert_eq!((m.partition, m.value.as_deref()), (0, Some(&b"p0"[..])));
    member.commit_messages(&[m]).await.unwrap(); // else the rebalance hands it out again
    let generation = member.generation();

    // Validate only, fewer, the same count: nothing changes.
    let r = admin.create_partitions(&[(&t, 3)], true).await.unwrap();
    assert!(r[&t].is_ok(), "{r:?}");
    assert_eq!(admin.cluster().refresh_metadata(Some(&[&t])).await.unwrap().topics[&t].partitions.len(), 1);
    let other = unique_topic("adm-parts-none");
    let r = admin.create_partitions(&[(&t, 1), (&other, 2)], false).await.unwrap();
    assert_eq!(code(&r[&t]), Some(ErrorCode::InvalidPartitions), "{r:?}");
    assert_eq!(code(&r[&other]), Some(ErrorCode::UnknownTopicOrPartition), "{r:?}");

    let r = admin.create_partitions(&[(&t, 3)], false).await.unwrap();
    assert!(r[&t].is_ok(), "{r:?}");
    common::wait_ready(&addr, &t, 3).await;
    for p in 1..3 {
        let pc = Dialer::new().dial_leader(&addr, &t, p).await.unwrap();
        pc.write_messages(&[Message::new(None::<Bytes>, Some(Bytes::from(format!("p{p}"))))]).await.unwrap();
    }
    // The leader's partition watch sees 3 partitions and rebalances; the new partitions
    // start at the first offset (nothing is committed for them) and their records arrive.
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, member.fetch_message()).await.expect("records of the new partitions");
        let m = m.unwrap();
        got.insert(m.partition, String::from_utf8_lossy(m.value.as_deref().unwrap()).into_owned());
    }
    assert_eq!(got, BTreeMap::from([(1, "p1".to_string()), (2, "p2".to_string())]));
    assert!(member.generation() > generation);
    let mut assigned = member.assignment();
    assigned.sort();
    assert_eq!(assigned, (0..3).map(|p| TopicPartition::new(&t, p)).collect::<Vec<_>>());
    member.close().await.unwrap();
}

#[tokio::test]
async fn the_cluster_and_leader_elections_on_one_node() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    let d = admin.describe_cluster().await.unwrap();
    // One node: broker 1, which also answers as the controller (KRaft: a live broker).
    assert_eq!(d.controller_id, 1);
    assert_eq!(d.brokers.iter().map(|b| (b.id, b.addr())).collect::<Vec<_>>(), [(1, broker.addr())]);
    assert_eq!(Some(&d.cluster_id), admin.cluster().metadata().cluster_id.as_ref());
    assert_eq!(d.cluster_id.len(), 22, "a base64 UUID: {}", d.cluster_id);

    let t = unique_topic("adm-elect");
    common::create_topics(&broker.addr(), &[TopicConfig::new(&t, 2)]).await;
    let parts = [TopicPartition::new(&t, 0), TopicPartition::new(&t, 1)];
    // The only replica leads already: ELECTION_NOT_NEEDED for each partition named...
    let r = admin.elect_leaders(ElectionType::Preferred, Some(&parts)).await.unwrap();
    assert_eq!(r.len(), 2);
    for tp in &parts {
        assert_eq!(code(&r[tp]), Some(ErrorCode::ElectionNotNeeded), "{r:?}");
    }
    let r = admin.elect_leaders(ElectionType::Unclean, Some(&parts[..1])).await.unwrap();
    assert_eq!(code(&r[&parts[0]]), Some(ErrorCode::ElectionNotNeeded), "{r:?}");
    // ...and, asked for every partition, Kafka leaves those out.
    assert!(admin.elect_leaders(ElectionType::Preferred, None).await.unwrap().is_empty());
    let none = TopicPartition::new(&t, 9);
    let r = admin.elect_leaders(ElectionType::Preferred, Some(std::slice::from_ref(&none))).await.unwrap();
    assert_eq!(code(&r[&none]), Some(ErrorCode::UnknownTopicOrPartition), "{r:?}");
}

#[tokio::test]
async fn groups_and_their_offsets() {
    let broker = common::kafka();
    let addr = broker.addr();
    let admin = admin(&addr).await;
    let topic = unique_topic("adm-off");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 2)]).await;
    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic).with_balancer(|_: &Message, _: &[i32]| 0))
        .await
        .unwrap();
    let msgs: Vec<Message> = (0..10).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    let (p0, p1) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1));

    // A group commits, and the admin sees it, its members and offsets.
    let group = unique_topic("adm-g");
    let config = ReaderConfig::group(&group, std::slice::from_ref(&topic))
        .with_session_timeout(Duration::from_millis(2000))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_max_wait(Duration::from_millis(100));
    let mut r = Reader::new(&[&addr], config).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(r.fetch_message().await.unwrap());
    }
    r.commit_messages(&got[..4]).await.unwrap();
    let groups = admin.list_groups().await.unwrap();
    let listed = groups.iter().find(|g| g.group_id == group).expect("the group is listed");
    assert_eq!((listed.protocol_type.as_str(), listed.state.as_str(), listed.coordinator), ("consumer", "Stable", 1));
    let d = admin.describe_groups(&[&group]).await.unwrap();
    let desc = d[&group].as_ref().unwrap();
    assert_eq!(
        (desc.state.as_str(), desc.protocol_type.as_str(), desc.protocol.as_str()),
        ("Stable", "consumer", "range")
    );
    assert_eq!(desc.members.len(), 1);
    let m = &desc.members[0];
    assert_eq!(m.member_id, r.member_id());
    assert!(m.member_id.starts_with(&m.client_id), "Kafka prefixes the member id with the client id: {m:?}");
    assert_eq!(m.client_host, "/127.0.0.1");
    let mut assignment = m.assignment.clone();
    assignment.sort();
    assert_eq!(assignment, [p0.clone(), p1.clone()]);
    assert_eq!(admin.fetch_offsets(&group, None).await.unwrap(), BTreeMap::from([(p0.clone(), 4)]));

    // While it has members Kafka will not delete it, nor take offsets from outside it.
    let del = admin.delete_groups(&[&group]).await.unwrap();
    assert_eq!(code(&del[&group]), Some(ErrorCode::NonEmptyGroup), "{del:?}");
    let set = admin.alter_offsets(&group, &BTreeMap::from([(p0.clone(), 1)])).await.unwrap();
    assert_eq!(code(&set[&p0]), Some(ErrorCode::UnknownMemberId), "{set:?}");
    // Nor delete the offsets of a topic it reads.
    let od = admin.delete_offsets(&group, std::slice::from_ref(&p0)).await.unwrap();
    assert_eq!(code(&od[&p0]), Some(ErrorCode::GroupSubscribedToTopic), "{od:?}");
    r.close().await.unwrap();

    // Empty now: offsets can be set by hand, deleted, and the group deleted.
    let d = admin.describe_groups(&[&group]).await.unwrap();
    let desc = d[&group].as_ref().unwrap();
    assert_eq!((desc.state.as_str(), desc.members.len()), ("Empty", 0));
    let set = admin.alter_offsets(&group, &BTreeMap::from([(p0.clone(), 2), (p1.clone(), 0)])).await.unwrap();
    assert!(set.values().all(|r| r.is_ok()), "{set:?}");
    let now = admin.fetch_offsets(&group, Some(&[p0.clone(), p1.clone()])).await.unwrap();
    assert_eq!(now, BTreeMap::from([(p0.clone(), 2), (p1.clone(), 0)]));
    let od = admin.delete_offsets(&group, std::slice::from_ref(&p1)).await.unwrap();
    assert!(od[&p1].is_ok(), "{od:?}");
    assert_eq!(admin.fetch_offsets(&group, None).await.unwrap(), BTreeMap::from([(p0.clone(), 2)]));
    let del = admin.delete_groups(&[&group, "no-such-group-kafkit"]).await.unwrap();
    assert!(del[&group].is_ok(), "{del:?}");
    assert_eq!(code(&del["no-such-group-kafkit"]), Some(ErrorCode::GroupIdNotFound), "{del:?}");
    assert!(admin.fetch_offsets(&group, None).await.unwrap().is_empty());
    // A group Kafka does not know: DescribeGroups v6 (Kafka 4.x, KIP-1043) answers
    // GROUP_ID_NOT_FOUND; up to v5 (3.9) it describes it as Dead, with no members.
    let d = admin.describe_groups(&[&group]).await.unwrap();
    if broker.version().at_least(4, 0) {
        assert_eq!(code(&d[&group]), Some(ErrorCode::GroupIdNotFound), "{d:?}");
    } else {
        assert_eq!(d[&group].as_ref().unwrap().state, "Dead", "{d:?}");
    }
}

#[tokio::test]
async fn scram_credentials_created_used_and_deleted() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    // The users scripts/kafka.sh made at format time: both mechanisms, 4096 iterations.
    let all = admin.describe_user_scram_credentials(None).await.unwrap();
    for user in ["admin", "alice", "bob"] {
        let mut mechs = all[user].as_ref().unwrap().clone();
        mechs.sort();
        assert_eq!(mechs, [(ScramMechanism::Sha256, 4096), (ScramMechanism::Sha512, 4096)], "{user}");
    }

    // A new user, salted and hashed here: Kafka lets it log in with that password.
    let user = unique_topic("carol");
    let cred = ScramCredential {
        user: user.clone(),
        mechanism: ScramMechanism::Sha512,
        iterations: 8192,
        password: "carol-s3cret".into(),
    };
    let altered = admin.alter_user_scram_credentials(std::slice::from_ref(&cred), &[]).await.unwrap();
    assert!(altered[&user].is_ok(), "{altered:?}");
    // Any broker answers from its metadata, which has the controller's change a moment
    // after the controller answered.
    let described = || async {
        let mut got = admin.describe_user_scram_credentials(Some(&[&user])).await.unwrap();
        got.remove(&user).unwrap()
    };
    let got = eventually(10, "the new credential described", || async { described().await.ok() }).await;
    assert_eq!(got, [(ScramMechanism::Sha512, 8192)]);
    let sasl_addr = broker.addrs_on(common::Listener::SaslPlaintext)[0].clone();
    let login = |password: &str| {
        let d = Dialer::new().with_sasl(Sasl::scram(ScramMechanism::Sha512, user.clone(), password.to_string()));
        let addr = sasl_addr.clone();
        async move { d.dial(&addr).await }
    };
    // The credential reaches the broker's metadata a moment after the controller took it.
    let conn = eventually(10, "a login with the new credential", || async { login("carol-s3cret").await.ok() }).await;
    assert!(!conn.is_closed());
    let e = login("wrong").await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    // Fewer than 4096 iterations, and a mechanism without a credential: refused per user.
    let weak = ScramCredential { iterations: 1000, ..cred.clone() };
    let r = admin.alter_user_scram_credentials(&[weak], &[]).await.unwrap();
    assert_eq!(code(&r[&user]), Some(ErrorCode::UnacceptableCredential), "{r:?}");
    let r = admin.alter_user_scram_credentials(&[], &[(&user, ScramMechanism::Sha256)]).await.unwrap();
    assert_eq!(code(&r[&user]), Some(ErrorCode::ResourceNotFound), "{r:?}");

    let r = admin.alter_user_scram_credentials(&[], &[(&user, ScramMechanism::Sha512)]).await.unwrap();
    assert!(r[&user].is_ok(), "{r:?}");
    let e = eventually(10, "the credential gone", || async { described().await.err() }).await;
    assert_eq!(e.error_code(), Some(ErrorCode::ResourceNotFound), "{e}");
    let e = eventually(10, "logins refused once deleted", || async { login("carol-s3cret").await.err() }).await;
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    assert!(!format!("{e} {e:?} {cred:?}").contains("carol-s3cret"), "no secret is shown");
}
