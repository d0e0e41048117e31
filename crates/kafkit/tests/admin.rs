//! The admin `Client` against a real broker (Tansu). Calls Tansu does not serve must fail
//! with `UnsupportedByBroker`, decided from its ApiVersions.

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::admin::*;
use kafkit::protocol::{ApiKey, ErrorCode};
use kafkit::{
    ClusterConfig, Error, IsolationLevel, Message, Reader, ReaderConfig, TopicConfig, TopicPartition, Writer,
    WriterConfig,
};
use std::collections::BTreeMap;
use std::time::Duration;

async fn admin(addr: &str) -> Client {
    Client::new(&[addr], ClusterConfig::default()).await.unwrap()
}

fn unsupported(e: &Error, api: ApiKey) -> bool {
    matches!(e, Error::UnsupportedByBroker { api: a, .. } if *a == api)
}

#[tokio::test]
async fn topics_configs_and_the_cluster() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    let (a, b) = (unique_topic("adm-a"), unique_topic("adm-b"));

    // (validate_only is not checked here: this Tansu build creates the topic anyway.)
    let r = admin
        .create_topics(
            &[TopicConfig::new(&a, 3).with_config("retention.ms", "3600000"), TopicConfig::new(&b, 2)],
            false,
        )
        .await
        .unwrap();
    assert_eq!(r[&a].as_ref().unwrap().num_partitions, 3);
    assert!(r[&b].is_ok());
    // Per-item errors: one topic exists already, the other is created.
    let c = unique_topic("adm-c");
    let r = admin.create_topics(&[TopicConfig::new(&a, 3), TopicConfig::new(&c, 1)], false).await.unwrap();
    assert_eq!(r[&a].as_ref().unwrap_err().error_code(), Some(ErrorCode::TopicAlreadyExists));
    assert!(r[&c].is_ok());

    // Configs: Tansu reports the keys set explicitly.
    let topic = ConfigResource::Topic(a.clone());
    let got = admin.describe_configs(std::slice::from_ref(&topic)).await.unwrap();
    let entries = got[&topic].as_ref().unwrap();
    let retention = entries.iter().find(|e| e.name == "retention.ms").expect("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    let r = admin
        .incremental_alter_configs(
            &[(topic.clone(), vec![("retention.ms".into(), AlterConfigOp::Set("7200000".into()))])],
            false,
        )
        .await
        .unwrap();
    assert!(r[&topic].is_ok(), "{r:?}");
    let got = admin.describe_configs(std::slice::from_ref(&topic)).await.unwrap();
    let v = got[&topic].as_ref().unwrap().iter().find(|e| e.name == "retention.ms").unwrap().value.clone();
    assert_eq!(v.as_deref(), Some("7200000"));

    // The cluster: Tansu's one broker, node 111, is the controller.
    let d = admin.describe_cluster().await.unwrap();
    assert_eq!(d.controller_id, 111);
    assert_eq!(d.brokers.iter().map(|b| b.id).collect::<Vec<_>>(), [111]);

    // Not served by Tansu: a clear error, decided before anything is sent.
    let e = admin.create_partitions(&[(&a, 6)], false).await.unwrap_err();
    assert!(unsupported(&e, ApiKey::CreatePartitions), "{e}");
    assert!(e.to_string().contains("does not support CreatePartitions"), "{e}");
    let e = admin.elect_leaders(ElectionType::Preferred, None).await.unwrap_err();
    assert!(unsupported(&e, ApiKey::ElectLeaders), "{e}");
    let tp = TopicPartition::new(&a, 0);
    let e = admin.describe_producers(std::slice::from_ref(&tp)).await.unwrap_err();
    assert!(unsupported(&e, ApiKey::DescribeProducers), "{e}");
    let e = admin.describe_transactions(&["tx"]).await.unwrap_err();
    assert!(unsupported(&e, ApiKey::DescribeTransactions) || e.error_code().is_some(), "{e}");

    // Deleting: per-item results.
    let r = admin.delete_topics(&[&b, "no-such-topic-kafkit"]).await.unwrap();
    assert!(r[&b].is_ok());
    assert_eq!(r["no-such-topic-kafkit"].as_ref().unwrap_err().error_code(), Some(ErrorCode::UnknownTopicOrPartition));
}

#[tokio::test]
async fn offsets_and_groups() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    let topic = unique_topic("adm-off");
    admin.create_topics(&[TopicConfig::new(&topic, 2)], false).await.unwrap()[&topic].as_ref().unwrap();
    let w = Writer::new(
        &[&broker.addr()],
        WriterConfig::default().with_topic(&topic).with_balancer(|_: &Message, _: &[i32]| 0),
    )
    .await
    .unwrap();
    let msgs: Vec<Message> = (0..10).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    let (p0, p1) = (TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1));
    let offs = admin
        .list_offsets(
            &[(p0.clone(), OffsetSpec::Earliest), (p1.clone(), OffsetSpec::Earliest)],
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    assert_eq!(offs[&p0].as_ref().unwrap().offset, 0);
    assert_eq!(offs[&p1].as_ref().unwrap().offset, 0);
    let latest =
        admin.list_offsets(&[(p1.clone(), OffsetSpec::Latest)], IsolationLevel::ReadUncommitted).await.unwrap();
    assert_eq!(latest[&p1].as_ref().unwrap().offset, 0, "nothing written to partition 1");

    // A group commits, leaves; the admin sees it, its offsets, and can change and delete.
    let group = unique_topic("adm-g");
    let config = ReaderConfig::group(&group, [topic.clone()])
        .with_session_timeout(Duration::from_millis(2000))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_max_wait(Duration::from_millis(100));
    let mut r = Reader::new(&[&broker.addr()], config).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(r.fetch_message().await.unwrap());
    }
    r.commit_messages(&got[..4]).await.unwrap();
    let groups = admin.list_groups().await.unwrap();
    assert!(groups.iter().any(|g| g.group_id == group && g.protocol_type == "consumer"), "{groups:?}");
    let d = admin.describe_groups(&[&group]).await.unwrap();
    let desc = d[&group].as_ref().unwrap();
    assert_eq!(desc.members.len(), 1);
    // (This Tansu build leaves the assignor name, `protocol`, empty.)
    // (This Tansu build sends members' metadata and assignments empty; the decoding of
    // assignments is unit-tested in admin/mod.rs.)
    assert_eq!(desc.members[0].member_id, r.member_id());
    assert_eq!(desc.state, "Stable");
    // (This Tansu build would delete a group that has members; Kafka answers
    // NON_EMPTY_GROUP. Not exercised here.)
    assert_eq!(admin.fetch_offsets(&group, None).await.unwrap(), BTreeMap::from([(p0.clone(), 4)]));
    r.close().await.unwrap();

    // Empty now: offsets can be set by hand, then the group deleted.
    let set = admin.alter_offsets(&group, &BTreeMap::from([(p0.clone(), 2), (p1.clone(), 0)])).await.unwrap();
    assert!(set.values().all(|r| r.is_ok()), "{set:?}");
    let now = admin.fetch_offsets(&group, Some(&[p0.clone(), p1.clone()])).await.unwrap();
    assert_eq!(now, BTreeMap::from([(p0.clone(), 2), (p1.clone(), 0)]));
    let del = admin.delete_groups(&[&group]).await.unwrap();
    assert!(del[&group].is_ok(), "{del:?}");
    assert!(admin.fetch_offsets(&group, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn acls_and_scram_credentials() {
    let broker = common::kafka();
    let admin = admin(&broker.addr()).await;
    // This Tansu build answers CreateAcls with a null result list, which no client can
    // read: kafkit reports it as a decode error (and closes that connection) rather than
    // guessing. DescribeAcls works (no ACLs); DeleteAcls is not served.
    let acl = Acl {
        resource_type: ResourceType::Topic,
        resource_name: "orders".into(),
        pattern_type: PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
    };
    let e = admin.create_acls(std::slice::from_ref(&acl)).await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    assert_eq!(admin.describe_acls(&AclFilter::any()).await.unwrap(), []);
    let e = admin.delete_acls(&[AclFilter::any()]).await.unwrap_err();
    assert!(unsupported(&e, ApiKey::DeleteAcls), "{e}");
    let cred = ScramCredential {
        user: "alice".into(),
        mechanism: ScramMechanism::Sha256,
        iterations: 4096,
        password: "alice-secret".into(),
    };
    let altered = admin.alter_user_scram_credentials(std::slice::from_ref(&cred), &[]).await.unwrap();
    assert!(altered["alice"].is_ok(), "{altered:?}");
    // This Tansu build answers DescribeUserScramCredentials with a null result list: a
    // decode error, which names no secret.
    let e = admin.describe_user_scram_credentials(Some(&["alice"])).await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("alice-secret"));
}
