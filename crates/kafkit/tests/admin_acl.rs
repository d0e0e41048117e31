//! ACLs and authorization on Apache Kafka (the shared node, StandardAuthorizer): ACLs
//! created, described through filters and deleted by the admin `Client` on PLAINTEXT (a
//! super user), then what `bob` (SASL PLAIN, on SASL_PLAINTEXT) and a SCRAM user made here may
//! and may not do. Every refusal must be prompt (no retrying to a timeout), not retriable,
//! and carry Kafka's error code, from the Writer, the Reader (partition and group mode) and
//! the admin Client. Every test uses names of its own, and ACLs on those names only.

mod common;

use bytes::Bytes;
use common::{unique_topic, users, Listener};
use kafkit::admin::*;
use kafkit::protocol::ErrorCode;
use kafkit::{
    ClusterConfig, Dialer, Error, Message, Reader, ReaderConfig, Sasl, TopicConfig, TopicPartition, Writer,
    WriterConfig,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A refusal must come at once: well below the 60 s a retry loop would take.
const PROMPT: Duration = Duration::from_secs(2);
/// Past this a call that should have been refused is taken for hung.
const HANG: Duration = Duration::from_secs(30);

async fn super_admin(addr: &str) -> Client {
    Client::new(&[addr], ClusterConfig::default()).await.unwrap()
}

fn sasl_addr() -> String {
    common::kafka().addrs_on(Listener::SaslPlaintext)[0].clone()
}

/// bob on SASL_PLAINTEXT: only what ACLs grant him.
fn as_bob() -> ClusterConfig {
    ClusterConfig { dialer: Dialer::new().with_sasl(Sasl::plain(users::BOB.0, users::BOB.1)), ..Default::default() }
}

fn allow(principal: &str, resource_type: ResourceType, name: &str, operation: AclOperation) -> Acl {
    Acl {
        resource_type,
        resource_name: name.to_string(),
        pattern_type: PatternType::Literal,
        principal: principal.to_string(),
        host: "*".into(),
        operation,
        permission: AclPermission::Allow,
    }
}

fn bob(resource_type: ResourceType, name: &str, operation: AclOperation) -> Acl {
    allow("User:bob", resource_type, name, operation)
}

fn filter_of(acl: &Acl) -> AclFilter {
    AclFilter {
        resource_type: acl.resource_type,
        resource_name: Some(acl.resource_name.clone()),
        pattern_type: acl.pattern_type,
        principal: Some(acl.principal.clone()),
        host: Some(acl.host.clone()),
        operation: acl.operation,
        permission: acl.permission,
    }
}

/// Creates `acls` and waits until the broker's authorizer has them (it answers DescribeAcls
/// from the same metadata it authorizes with).
async fn grant(admin: &Client, acls: &[Acl]) {
    let r = admin.create_acls(acls).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    for acl in acls {
        while admin.describe_acls(&filter_of(acl)).await.unwrap() != [acl.clone()] {
            assert!(Instant::now() < deadline, "{acl:?} not in effect within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs `f`, checks it was refused promptly with `code`, not retriable; returns the time.
async fn refused<T: std::fmt::Debug>(
    what: &str,
    code: ErrorCode,
    f: impl std::future::Future<Output = kafkit::Result<T>>,
) -> Duration {
    let started = Instant::now();
    let r = tokio::time::timeout(HANG, f).await.unwrap_or_else(|_| panic!("{what}: no answer within {HANG:?}"));
    let took = started.elapsed();
    let e = r.expect_err(what);
    assert_eq!(e.error_code(), Some(code), "{what}: {e}");
    assert!(!e.is_retriable(), "{what}: {e}");
    assert!(took < PROMPT, "{what}: refused after {took:?}");
    eprintln!("{what}: {code} after {} ms", took.as_millis());
    took
}

fn msg(v: &str) -> Message {
    Message::new(None::<Bytes>, Some(Bytes::from(v.to_string())))
}

#[tokio::test]
async fn acls_created_described_by_filters_and_deleted() {
    let broker = common::kafka();
    let admin = super_admin(&broker.addr()).await;
    let (t, g, tx) = (unique_topic("acl-t"), unique_topic("acl-g"), unique_topic("acl-tx"));
    let prefix = unique_topic("acl-p");
    let read = bob(ResourceType::Topic, &t, AclOperation::Read);
    let write = Acl { pattern_type: PatternType::Prefixed, ..bob(ResourceType::Topic, &prefix, AclOperation::Write) };
    let deny = Acl {
        permission: AclPermission::Deny,
        host: "10.0.0.1".into(),
        ..allow("User:carol", ResourceType::Topic, &t, AclOperation::Write)
    };
    let group = bob(ResourceType::Group, &g, AclOperation::Read);
    let txn = bob(ResourceType::TransactionalId, &tx, AclOperation::Write);
    let all = [read.clone(), write.clone(), deny.clone(), group.clone(), txn.clone()];
    grant(&admin, &all).await;

    let sorted = |mut v: Vec<Acl>| {
        v.sort_by_key(|a| format!("{a:?}"));
        v
    };
    let described = |f: AclFilter| {
        let admin = admin.clone();
        async move { sorted(admin.describe_acls(&f).await.unwrap()) }
    };
    let named = |name: &str, pattern_type| AclFilter {
        resource_type: ResourceType::Any,
        resource_name: Some(name.to_string()),
        pattern_type,
        ..AclFilter::any()
    };
    // By name, literal: both ACLs on the topic, of either principal and permission.
    assert_eq!(described(named(&t, PatternType::Literal)).await, sorted(vec![read.clone(), deny.clone()]));
    // By principal and name.
    let bobs = AclFilter { principal: Some("User:bob".into()), ..named(&t, PatternType::Literal) };
    assert_eq!(described(bobs.clone()).await, std::slice::from_ref(&read));
    // MATCH: the ACLs that apply to a name, here the prefixed one.
    let under = format!("{prefix}-orders");
    assert_eq!(described(named(&under, PatternType::Match)).await, std::slice::from_ref(&write));
    assert!(described(named(&under, PatternType::Literal)).await.is_empty());
    assert_eq!(described(named(&prefix, PatternType::Prefixed)).await, std::slice::from_ref(&write));
    // By type, operation, permission and host.
    let of_type = |resource_type| AclFilter { resource_type, ..named(&g, PatternType::Any) };
    assert_eq!(described(of_type(ResourceType::Group)).await, std::slice::from_ref(&group));
    assert!(described(of_type(ResourceType::Topic)).await.is_empty());
    let tx_any = AclFilter { resource_type: ResourceType::TransactionalId, ..named(&tx, PatternType::Any) };
    assert_eq!(described(tx_any).await, std::slice::from_ref(&txn));
    let denies = AclFilter { permission: AclPermission::Deny, ..named(&t, PatternType::Any) };
    assert_eq!(described(denies).await, std::slice::from_ref(&deny));
    let on_host =
        AclFilter { host: Some("10.0.0.1".into()), operation: AclOperation::Write, ..named(&t, PatternType::Any) };
    assert_eq!(described(on_host).await, std::slice::from_ref(&deny));

    // Filter values in an ACL are refused before anything is sent (Kafka 4.4 would fail the
    // whole request with UNKNOWN_SERVER_ERROR); the valid ACL beside them is created.
    let extra = bob(ResourceType::Topic, &t, AclOperation::Describe);
    let bad = [
        Acl { resource_type: ResourceType::Any, ..read.clone() },
        extra.clone(),
        Acl { pattern_type: PatternType::Match, ..read.clone() },
        Acl { operation: AclOperation::Any, ..read.clone() },
        Acl { permission: AclPermission::Any, ..read.clone() },
    ];
    let r = admin.create_acls(&bad).await.unwrap();
    assert_eq!(r.len(), 5);
    assert!(r[1].is_ok(), "{r:?}");
    for i in [0, 2, 3, 4] {
        assert!(matches!(r[i], Err(Error::InvalidArgument(_))), "{:?}: {:?}", bad[i], r[i]);
    }
    // A principal without its type ("User:") is Kafka's to refuse.
    let r = admin.create_acls(&[Acl { principal: "bob".into(), ..read.clone() }]).await.unwrap();
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(e.error_code(), Some(ErrorCode::InvalidRequest), "{e}");
    assert!(e.to_string().contains("Could not parse principal"), "Kafka's message is kept: {e}");
    assert_eq!(described(bobs.clone()).await, sorted(vec![read.clone(), extra.clone()]));

    // Deleting: per filter, the ACLs it matched; a filter matching nothing deletes nothing.
    let r = admin
        .delete_acls(&[
            named(&t, PatternType::Literal),
            filter_of(&txn),
            named(&unique_topic("acl-none"), PatternType::Any),
        ])
        .await
        .unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(sorted(r[0].as_ref().unwrap().clone()), sorted(vec![read.clone(), deny.clone(), extra.clone()]));
    assert_eq!(r[1].as_ref().unwrap(), std::slice::from_ref(&txn));
    assert!(r[2].as_ref().unwrap().is_empty());
    assert!(described(named(&t, PatternType::Any)).await.is_empty());
    assert!(described(named(&tx, PatternType::Any)).await.is_empty());
    // The others stay, until deleted too.
    assert_eq!(described(named(&g, PatternType::Any)).await, std::slice::from_ref(&group));
    let r = admin.delete_acls(&[filter_of(&group), filter_of(&write)]).await.unwrap();
    assert_eq!((r[0].as_ref().unwrap(), r[1].as_ref().unwrap()), (&vec![group], &vec![write]));
}

#[tokio::test]
async fn the_writer_is_refused_promptly_what_bob_may_not_write() {
    let broker = common::kafka();
    let addr = broker.addr();
    let admin = super_admin(&addr).await;
    let (ok, describe_only, nothing) = (unique_topic("acl-w-ok"), unique_topic("acl-w-desc"), unique_topic("acl-w-no"));
    common::create_topics(
        &addr,
        &[TopicConfig::new(&ok, 1), TopicConfig::new(&describe_only, 1), TopicConfig::new(&nothing, 1)],
    )
    .await;
    // Write implies Describe, and (KIP-679) the idempotent producer's InitProducerId.
    grant(
        &admin,
        &[
            bob(ResourceType::Topic, &ok, AclOperation::Write),
            bob(ResourceType::Topic, &describe_only, AclOperation::Describe),
        ],
    )
    .await;
    let sasl = sasl_addr();
    let config = |topic: &str| WriterConfig::default().with_topic(topic).with_cluster(as_bob());
    let w = Writer::new(&[&sasl], config(&ok)).await.unwrap();
    w.write_messages(vec![msg("granted")]).await.unwrap();
    for (topic, what) in [(&describe_only, "Produce"), (&nothing, "Metadata")] {
        let w = Writer::new(&[&sasl], config(topic)).await.unwrap();
        refused(&format!("a write refused by {what}"), ErrorCode::TopicAuthorizationFailed, async {
            w.write_messages(vec![msg("denied")]).await.map_err(|mut e| e.results.remove(0).unwrap_err())
        })
        .await;
    }
    // One writer, two topics: each message gets its own answer.
    let w = Writer::new(&[&sasl], WriterConfig::default().with_cluster(as_bob())).await.unwrap();
    let started = Instant::now();
    let errs = w
        .write_messages(vec![msg("a").with_topic(ok.as_str()), msg("b").with_topic(describe_only.as_str())])
        .await
        .unwrap_err();
    assert!(started.elapsed() < PROMPT);
    assert!(errs.results[0].is_ok(), "{errs:?}");
    assert_eq!(errs.results[1].as_ref().unwrap_err().error_code(), Some(ErrorCode::TopicAuthorizationFailed));
    // The granted topic has both records, nothing else got any.
    let pc = Dialer::new().dial_leader(&addr, &ok, 0).await.unwrap();
    assert_eq!(pc.read_offsets().await.unwrap(), (0, 2));
    let pc = Dialer::new().dial_leader(&addr, &describe_only, 0).await.unwrap();
    assert_eq!(pc.read_offsets().await.unwrap(), (0, 0));
}

/// A SCRAM-SHA-256 user made for one test: nobody's ACLs but the test's name it.
async fn new_user(admin: &Client, prefix: &str) -> ClusterConfig {
    let user = unique_topic(prefix);
    let password = format!("{user}-secret");
    let cred = ScramCredential {
        user: user.clone(),
        mechanism: ScramMechanism::Sha256,
        iterations: 4096,
        password: password.clone(),
    };
    let r = admin.alter_user_scram_credentials(&[cred], &[]).await.unwrap();
    assert!(r[&user].is_ok(), "{r:?}");
    let dialer = Dialer::new().with_sasl(Sasl::scram(ScramMechanism::Sha256, user.clone(), password));
    // The credential reaches the broker a moment after the controller took it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while dialer.dial(&sasl_addr()).await.is_err() {
        assert!(Instant::now() < deadline, "{user} cannot log in within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ClusterConfig { dialer, ..Default::default() }
}

#[tokio::test]
async fn a_principal_that_may_write_nothing_cannot_be_an_idempotent_producer() {
    let broker = common::kafka();
    let admin = super_admin(&broker.addr()).await;
    let topic = unique_topic("acl-idem");
    common::create_topics(&broker.addr(), &[TopicConfig::new(&topic, 1)]).await;
    let cluster = new_user(&admin, "dave").await;
    let sasl = sasl_addr();
    // InitProducerId needs Write on some topic or IdempotentWrite on the cluster: the
    // idempotent Writer (the default) is refused as it starts, with a hint.
    let config = WriterConfig::default().with_topic(&topic).with_cluster(cluster.clone());
    let mut hint = String::new();
    refused("an idempotent writer for a principal without Write", ErrorCode::ClusterAuthorizationFailed, async {
        Writer::new(&[&sasl], config.clone()).await.inspect_err(|e| hint = e.to_string())
    })
    .await;
    assert!(hint.contains("Write on some topic") && hint.contains("with_idempotent(false)"), "{hint}");
    // Without idempotence it starts, and its writes are refused for the topic.
    let w = Writer::new(&[&sasl], config.clone().with_idempotent(false)).await.unwrap();
    refused("a plain write without Write", ErrorCode::TopicAuthorizationFailed, async {
        w.write_messages(vec![msg("x")]).await.map_err(|mut e| e.results.remove(0).unwrap_err())
    })
    .await;
}

#[tokio::test]
async fn the_reader_is_refused_promptly_in_partition_and_group_mode() {
    let broker = common::kafka();
    let addr = broker.addr();
    let admin = super_admin(&addr).await;
    let (ok, describe_only, nothing) = (unique_topic("acl-r-ok"), unique_topic("acl-r-desc"), unique_topic("acl-r-no"));
    // Read on every group named from this prefix: each case below is a group of its own (a
    // member left behind would hold the next one's rebalance for its session timeout).
    let (groups, no_group) = (unique_topic("acl-r-g"), unique_topic("acl-r-nog"));
    let group = |n: u32| format!("{groups}-{n}");
    common::create_topics(
        &addr,
        &[TopicConfig::new(&ok, 1), TopicConfig::new(&describe_only, 1), TopicConfig::new(&nothing, 1)],
    )
    .await;
    for t in [&ok, &describe_only] {
        let pc = Dialer::new().dial_leader(&addr, t, 0).await.unwrap();
        pc.write_messages(&[msg("m0"), msg("m1")]).await.unwrap();
    }
    grant(
        &admin,
        &[
            bob(ResourceType::Topic, &ok, AclOperation::Read),
            bob(ResourceType::Topic, &describe_only, AclOperation::Describe),
            Acl { pattern_type: PatternType::Prefixed, ..bob(ResourceType::Group, &groups, AclOperation::Read) },
        ],
    )
    .await;
    let sasl = sasl_addr();
    let part = |t: &str| ReaderConfig::new(t, 0).with_cluster(as_bob()).with_max_wait(Duration::from_millis(100));

    // Partition mode: Read granted; Describe only (ListOffsets works, Fetch does not); nothing.
    let mut r = Reader::new(&[&sasl], part(&ok)).await.unwrap();
    assert_eq!(r.read_message().await.unwrap().value.as_deref(), Some(&b"m0"[..]));
    let mut r = Reader::new(&[&sasl], part(&describe_only)).await.unwrap();
    assert_eq!(r.read_lag().await.unwrap(), 2, "Describe lets bob see the offsets");
    refused("a fetch without Read", ErrorCode::TopicAuthorizationFailed, r.read_message()).await;
    // The partition stays failed: every later read is refused too, promptly.
    refused("a fetch without Read, read again", ErrorCode::TopicAuthorizationFailed, r.read_message()).await;
    refused("a fetch without Read, fetched again", ErrorCode::TopicAuthorizationFailed, r.fetch_message()).await;
    refused("a reader of a topic bob may not describe", ErrorCode::TopicAuthorizationFailed, async {
        Reader::new(&[&sasl], part(&nothing)).await.map(|_| ())
    })
    .await;

    // Group mode.
    let member = |g: &str, t: &str| {
        ReaderConfig::group(g, [t])
            .with_cluster(as_bob())
            .with_session_timeout(Duration::from_secs(6))
            .with_heartbeat_interval(Duration::from_millis(500))
            .with_max_wait(Duration::from_millis(100))
    };
    let mut m = Reader::new(&[&sasl], member(&group(0), &ok)).await.unwrap();
    let first = m.fetch_message().await.unwrap();
    m.commit_messages(&[first]).await.unwrap();
    m.close().await.unwrap();
    let committed = admin.fetch_offsets(&group(0), None).await.unwrap();
    assert_eq!(committed, BTreeMap::from([(TopicPartition::new(&ok, 0), 1)]));
    // `fatal`: the group cannot go on, so commits are refused too; a partition's refusal
    // leaves the membership (and commits of other partitions) alone.
    for (g, t, code, what, fatal) in [
        (no_group.clone(), &ok, ErrorCode::GroupAuthorizationFailed, "a group bob may not read", true),
        (group(1), &describe_only, ErrorCode::TopicAuthorizationFailed, "a group member's fetch without Read", false),
        (group(2), &nothing, ErrorCode::TopicAuthorizationFailed, "a subscription bob may not describe", true),
    ] {
        let mut m = Reader::new(&[&sasl], member(&g, t)).await.unwrap();
        refused(what, code, m.read_message()).await;
        // Sticky: every later read (and, when fatal, commit) is refused with it, promptly.
        refused(&format!("{what}, read again"), code, m.read_message()).await;
        refused(&format!("{what}, fetched again"), code, m.fetch_message()).await;
        if fatal {
            refused(&format!("{what}, then a commit"), code, m.commit_messages(&[])).await;
        }
        m.abort();
    }
}

/// Checks an item's refusal: `code`, not retriable.
fn denied<T: std::fmt::Debug>(what: &str, r: &kafkit::Result<T>, code: ErrorCode) {
    let e = r.as_ref().expect_err(what);
    assert_eq!(e.error_code(), Some(code), "{what}: {e}");
    assert!(!e.is_retriable(), "{what}: {e}");
}

/// Awaits `f`, checking it answered promptly.
async fn prompt<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(HANG, f).await.unwrap_or_else(|_| panic!("{what}: no answer within {HANG:?}"));
    let took = started.elapsed();
    assert!(took < PROMPT, "{what}: answered after {took:?}");
    eprintln!("{what}: answered in {} ms", took.as_millis());
    out
}

#[tokio::test]
async fn the_admin_client_is_refused_promptly() {
    let broker = common::kafka();
    let addr = broker.addr();
    let admin = super_admin(&addr).await;
    let (t, hidden) = (unique_topic("acl-a-t"), unique_topic("acl-a-hidden"));
    let (mine, other) = (unique_topic("acl-a-create"), unique_topic("acl-a-other"));
    let (g, seen, tx) = (unique_topic("acl-a-g"), unique_topic("acl-a-seen"), unique_topic("acl-a-tx"));
    common::create_topics(&addr, &[TopicConfig::new(&t, 1), TopicConfig::new(&hidden, 1)]).await;
    // Two groups with committed offsets (an admin commit makes an Empty group).
    for group in [&g, &seen] {
        let r = admin.alter_offsets(group, &BTreeMap::from([(TopicPartition::new(&t, 0), 0)])).await.unwrap();
        assert!(r.values().all(Result::is_ok), "{r:?}");
    }
    grant(
        &admin,
        &[
            bob(ResourceType::Topic, &t, AclOperation::Describe),
            bob(ResourceType::Topic, &mine, AclOperation::Create),
            bob(ResourceType::Group, &seen, AclOperation::Describe),
            bob(ResourceType::TransactionalId, &tx, AclOperation::Describe),
        ],
    )
    .await;
    let bob = Client::new(&[&sasl_addr()], as_bob()).await.unwrap();
    let (tp, hidden_tp) = (TopicPartition::new(&t, 0), TopicPartition::new(&hidden, 0));
    let cluster_denied = ErrorCode::ClusterAuthorizationFailed;
    let topic_denied = ErrorCode::TopicAuthorizationFailed;
    let group_denied = ErrorCode::GroupAuthorizationFailed;

    // Topics: what bob may do succeeds beside what he may not, item by item.
    let r =
        prompt("CreateTopics", bob.create_topics(&[TopicConfig::new(&mine, 1), TopicConfig::new(&other, 1)], false))
            .await
            .unwrap();
    assert!(r[&mine].is_ok(), "{r:?}");
    denied("CreateTopics without Create", &r[&other], topic_denied);
    let r = prompt("DeleteTopics", bob.delete_topics(&[&t])).await.unwrap();
    denied("DeleteTopics without Delete", &r[&t], topic_denied);
    let r = prompt("CreatePartitions", bob.create_partitions(&[(&t, 2)], false)).await.unwrap();
    denied("CreatePartitions without Alter", &r[&t], topic_denied);
    // Configs: a topic's need DescribeConfigs on it, a broker's on the cluster.
    let (topic, node) = (ConfigResource::Topic(t.clone()), ConfigResource::Broker(1));
    let r = prompt("DescribeConfigs", bob.describe_configs(&[topic.clone(), node.clone()])).await.unwrap();
    denied("topic configs without DescribeConfigs", &r[&topic], topic_denied);
    denied("broker configs without DescribeConfigs", &r[&node], cluster_denied);
    let change = [(topic.clone(), vec![("retention.ms".to_string(), AlterConfigOp::Set("1000".into()))])];
    let r = prompt("IncrementalAlterConfigs", bob.incremental_alter_configs(&change, false)).await.unwrap();
    denied("altering configs without AlterConfigs", &r[&topic], topic_denied);
    // Partitions: Describe is enough for offsets, not for deleting records or producers.
    let r = prompt(
        "ListOffsets",
        bob.list_offsets(
            &[(tp.clone(), OffsetSpec::Latest), (hidden_tp.clone(), OffsetSpec::Latest)],
            Default::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r[&tp].as_ref().unwrap().offset, 0);
    denied("ListOffsets without Describe", &r[&hidden_tp], topic_denied);
    let r = prompt("DeleteRecords", bob.delete_records(&BTreeMap::from([(tp.clone(), 0)]))).await.unwrap();
    denied("DeleteRecords without Delete", &r[&tp], topic_denied);
    let r = prompt("DescribeProducers", bob.describe_producers(std::slice::from_ref(&tp))).await.unwrap();
    denied("DescribeProducers without Read", &r[&tp], topic_denied);

    // The cluster's resources: ACLs, elections, SCRAM credentials. The cluster itself may be
    // described by anyone.
    let r = prompt("DescribeAcls", bob.describe_acls(&AclFilter::any())).await;
    denied("DescribeAcls", &r, cluster_denied);
    let r = prompt("CreateAcls", bob.create_acls(&[bob_acl(&t)])).await.unwrap();
    denied("CreateAcls", &r[0], cluster_denied);
    let r = prompt("DeleteAcls", bob.delete_acls(&[filter_of(&bob_acl(&t))])).await.unwrap();
    denied("DeleteAcls", &r[0], cluster_denied);
    let r = prompt("ElectLeaders", bob.elect_leaders(ElectionType::Preferred, None)).await;
    denied("ElectLeaders", &r, cluster_denied);
    let r = prompt("DescribeUserScramCredentials", bob.describe_user_scram_credentials(None)).await;
    denied("DescribeUserScramCredentials", &r, cluster_denied);
    let r =
        prompt("AlterUserScramCredentials", bob.alter_user_scram_credentials(&[], &[("bob", ScramMechanism::Sha256)]))
            .await
            .unwrap();
    denied("AlterUserScramCredentials", &r["bob"], cluster_denied);
    let d = prompt("DescribeCluster", bob.describe_cluster()).await.unwrap();
    assert_eq!(d.brokers.len(), 1);

    // Groups: bob lists only those he may describe; the others are refused item by item
    // (FindCoordinator is refused first).
    let listed = prompt("ListGroups", bob.list_groups()).await.unwrap();
    assert!(listed.iter().any(|l| l.group_id == seen), "{listed:?}");
    assert!(!listed.iter().any(|l| l.group_id == g), "{listed:?}");
    let r = prompt("DescribeGroups", bob.describe_groups(&[&g, &seen])).await.unwrap();
    denied("DescribeGroups without Describe", &r[&g], group_denied);
    assert_eq!(r[&seen].as_ref().unwrap().state, "Empty");
    let r = prompt("DeleteGroups", bob.delete_groups(&[&g, &seen])).await.unwrap();
    denied("DeleteGroups without Delete", &r[&g], group_denied);
    denied("DeleteGroups with Describe only", &r[&seen], group_denied);
    let r = prompt("OffsetFetch", bob.fetch_offsets(&g, None)).await;
    denied("OffsetFetch without Describe", &r, group_denied);
    let r = prompt("OffsetCommit", bob.alter_offsets(&seen, &BTreeMap::from([(tp.clone(), 0)]))).await;
    denied("OffsetCommit without Read", &r.and_then(|m| m.into_values().next().unwrap()), group_denied);

    // Transactional ids: Describe lets bob learn there is no such transaction.
    let unknown = unique_topic("acl-a-tx-denied");
    let r = prompt("DescribeTransactions", bob.describe_transactions(&[&tx, &unknown])).await.unwrap();
    denied("DescribeTransactions with Describe", &r[&tx], ErrorCode::TransactionalIdNotFound);
    denied("DescribeTransactions without Describe", &r[&unknown], ErrorCode::TransactionalIdAuthorizationFailed);
}

fn bob_acl(topic: &str) -> Acl {
    bob(ResourceType::Topic, topic, AclOperation::Read)
}

/// A transactional id bob may not write: `init_transactions` fails at once with a fatal error
/// naming TRANSACTIONAL_ID_AUTHORIZATION_FAILED (the Java client's
/// `TransactionalIdAuthorizationException`), and every later call of that Writer fails the same
/// way. Granted Write on the id, a new Writer commits a transaction.
#[tokio::test]
async fn a_transactional_id_bob_may_not_write_is_refused_promptly_and_for_good() {
    let broker = common::kafka();
    let addr = broker.addr();
    let admin = super_admin(&addr).await;
    let topic = unique_topic("acl-txn");
    let txn_id = unique_topic("acl-txn-id");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    grant(&admin, &[bob(ResourceType::Topic, &topic, AclOperation::Write)]).await;
    let sasl = sasl_addr();
    let config = WriterConfig::default().with_topic(&topic).with_cluster(as_bob()).with_transactional_id(&txn_id);
    let w = Writer::new(&[&sasl], config.clone()).await.unwrap();
    let e = prompt("init_transactions without Write on the transactional id", w.init_transactions())
        .await
        .expect_err("init_transactions without Write on the transactional id");
    assert!(e.is_fatal() && !e.is_retriable(), "{e}");
    assert!(e.to_string().contains("TRANSACTIONAL_ID_AUTHORIZATION_FAILED"), "{e}");
    let again = prompt("begin_transaction after the refusal", w.begin_transaction()).await;
    assert!(again.as_ref().is_err_and(|e| e.is_fatal()), "{again:?}");

    grant(&admin, &[bob(ResourceType::TransactionalId, &txn_id, AclOperation::Write)]).await;
    let w = Writer::new(&[&sasl], config).await.unwrap();
    w.init_transactions().await.unwrap();
    w.begin_transaction().await.unwrap();
    w.write_messages(vec![msg("committed")]).await.unwrap();
    w.commit_transaction().await.unwrap();
}
