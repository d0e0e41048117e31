//! The `kafkit` command on Apache Kafka (the shared node): `consume --since` on records of
//! chosen timestamps, `offsets` after DeleteRecords, and what `bob` (SASL PLAIN, password
//! from KAFKIT_SASL_PASSWORD) may and may not do: a refusal is one line naming Kafka's error
//! code, exit 1, at once (the command's retries would take 10 s).

#[path = "../../kafkit/tests/common/mod.rs"]
mod common;
mod run;

use bytes::Bytes;
use common::{unique_topic, users, Listener};
use kafkit::admin::{
    Acl, AclOperation, AclPermission, Client, PatternType, ResourceType, ScramCredential, ScramMechanism,
};
use kafkit::{ClusterConfig, Dialer, Message, TopicConfig, TopicPartition};
use run::{command, ok, one_line_error, run};
use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// A refusal must come well before the command's 10 s of retries.
const PROMPT: Duration = Duration::from_secs(4);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `kafkit --brokers BROKER ARGS` with `env` set (and no SASL mechanism or user from the
/// test's own environment), feeding it `stdin`.
fn kafkit(broker: &str, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = command(broker, args);
    cmd.envs(env.iter().copied()).env_remove("KAFKIT_SASL_MECHANISM").env_remove("KAFKIT_SASL_USERNAME");
    run(&mut cmd, stdin)
}

/// Writes one record per timestamp (ms since the epoch) to partition `p`, values `p-i`.
fn write_at(rt: &tokio::runtime::Runtime, addr: &str, topic: &str, p: i32, times: &[u64]) {
    rt.block_on(async {
        let pc = Dialer::new().dial_leader(addr, topic, p).await.unwrap();
        let msgs: Vec<Message> = times
            .iter()
            .enumerate()
            .map(|(i, ms)| {
                Message::new(None::<Bytes>, Some(Bytes::from(format!("{p}-{i}"))))
                    .with_time(UNIX_EPOCH + Duration::from_millis(*ms))
            })
            .collect();
        pc.write_messages(&msgs).await.unwrap();
    });
}

/// `value` of each JSON line, sorted.
fn values(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["value"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn consume_since_a_time_on_the_brokers_timestamps() {
    let b = common::kafka();
    let addr = b.addr();
    let rt = runtime();
    let t = unique_topic("cli-adm-since");
    rt.block_on(common::create_topics(&addr, &[TopicConfig::new(&t, 2)]));
    // 2023-11-14T22:13:20Z and the seconds after it.
    const T0: u64 = 1_700_000_000_000;
    write_at(&rt, &addr, &t, 0, &[T0, T0 + 1000, T0 + 2000, T0 + 3000]);
    write_at(&rt, &addr, &t, 1, &[T0 + 500, T0 + 2500]);
    let since = |s: &str| values(&ok(&kafkit(&addr, &[], &["consume", &t, "-e", "-f", "json", "--since", s], b"")));
    // Epoch milliseconds, and RFC 3339: each partition from its first record at or after.
    assert_eq!(since(&(T0 + 1500).to_string()), ["0-2", "0-3", "1-1"]);
    assert_eq!(since("2023-11-14T22:13:21Z"), ["0-1", "0-2", "0-3", "1-1"]);
    assert_eq!(since("2023-11-14T22:13:20.500Z"), ["0-1", "0-2", "0-3", "1-0", "1-1"]);
    // Timestamps come back as written.
    let out = ok(&kafkit(
        &addr,
        &[],
        &["consume", &t, "-e", "-f", "json", "-p", "1", "--since", "2023-11-14T22:13:22Z"],
        b"",
    ));
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["timestamp"], T0 + 2500);
    // Past every record (Kafka answers -1): the end of each partition, so -e prints nothing.
    assert!(since(&(T0 + 3001).to_string()).is_empty());
    let err = one_line_error(&kafkit(&addr, &[], &["consume", &t, "-e", "--since", "yesterday"], b""));
    assert!(err.contains("bad time"), "{err}");
}

#[test]
fn offsets_after_delete_records() {
    let b = common::kafka();
    let addr = b.addr();
    let rt = runtime();
    let t = unique_topic("cli-adm-offsets");
    rt.block_on(common::create_topics(&addr, &[TopicConfig::new(&t, 2)]));
    write_at(&rt, &addr, &t, 0, &[1; 10]);
    write_at(&rt, &addr, &t, 1, &[1; 3]);
    assert_eq!(ok(&kafkit(&addr, &[], &["offsets", &t], b"")), "partition\tearliest\tlatest\n0\t0\t10\n1\t0\t3\n");
    rt.block_on(async {
        let admin = Client::new(&[&addr], ClusterConfig::default()).await.unwrap();
        let r = admin.delete_records(&BTreeMap::from([(TopicPartition::new(&t, 0), 4)])).await.unwrap();
        assert_eq!(*r.values().next().unwrap().as_ref().unwrap(), 4);
    });
    assert_eq!(ok(&kafkit(&addr, &[], &["offsets", &t], b"")), "partition\tearliest\tlatest\n0\t4\t10\n1\t0\t3\n");
    // What consume reads starts at the log start offset.
    let out = ok(&kafkit(&addr, &[], &["consume", &t, "-e", "-p", "0", "-f", "json"], b""));
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!((first["offset"].as_i64(), out.lines().count()), (Some(4), 6));
}

fn bob(resource_type: ResourceType, name: &str, operation: AclOperation) -> Acl {
    Acl {
        resource_type,
        resource_name: name.to_string(),
        pattern_type: PatternType::Literal,
        principal: "User:bob".into(),
        host: "*".into(),
        operation,
        permission: AclPermission::Allow,
    }
}

/// Creates `acls` and waits until the broker's authorizer has them.
async fn grant(admin: &Client, acls: &[Acl]) {
    let r = admin.create_acls(acls).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    for acl in acls {
        let filter = kafkit::admin::AclFilter {
            resource_type: acl.resource_type,
            resource_name: Some(acl.resource_name.clone()),
            pattern_type: acl.pattern_type,
            principal: Some(acl.principal.clone()),
            host: Some(acl.host.clone()),
            operation: acl.operation,
            permission: acl.permission,
        };
        while admin.describe_acls(&filter).await.unwrap() != [acl.clone()] {
            assert!(Instant::now() < deadline, "{acl:?} not in effect within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs a command that must be refused with `code`, at once.
fn refused(broker: &str, env: &[(&str, &str)], args: &[&str], stdin: &[u8], code: &str) -> Duration {
    let started = Instant::now();
    let out = kafkit(broker, env, args, stdin);
    let took = started.elapsed();
    let err = one_line_error(&out);
    assert!(err.contains(code), "{args:?}: {err}");
    assert!(took < PROMPT, "{args:?}: refused after {took:?}");
    eprintln!("kafkit {}: {code} after {} ms", args.join(" "), took.as_millis());
    took
}

#[test]
fn bob_gets_what_acls_grant_and_prompt_one_line_refusals_otherwise() {
    let b = common::kafka();
    let addr = b.addr();
    let sasl = b.addrs_on(Listener::SaslPlaintext)[0].clone();
    let rt = runtime();
    let (ok_t, denied_t, group, denied_g) = (
        unique_topic("cli-acl-ok"),
        unique_topic("cli-acl-no"),
        unique_topic("cli-acl-g"),
        unique_topic("cli-acl-nog"),
    );
    rt.block_on(async {
        common::create_topics(&addr, &[TopicConfig::new(&ok_t, 1), TopicConfig::new(&denied_t, 1)]).await;
        let admin = Client::new(&[&addr], ClusterConfig::default()).await.unwrap();
        grant(
            &admin,
            &[
                bob(ResourceType::Topic, &ok_t, AclOperation::Write),
                bob(ResourceType::Topic, &ok_t, AclOperation::Read),
                bob(ResourceType::Group, &group, AclOperation::Read),
            ],
        )
        .await;
    });
    let env = [("KAFKIT_SASL_PASSWORD", users::BOB.1)];
    fn as_bob<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--sasl-mechanism", "PLAIN", "--username", "bob"], args].concat()
    }

    // Granted: bob writes, reads and reads as a group member (committing).
    ok(&kafkit(&sasl, &env, &as_bob(&["produce", &ok_t]), b"one\ntwo\n"));
    assert_eq!(ok(&kafkit(&sasl, &env, &as_bob(&["consume", &ok_t, "-e"]), b"")), "one\ntwo\n");
    assert_eq!(
        ok(&kafkit(&sasl, &env, &as_bob(&["consume", &ok_t, "-e", "-g", &group, "--session-timeout", "6s"]), b"")),
        "one\ntwo\n"
    );
    assert_eq!(ok(&kafkit(&sasl, &env, &as_bob(&["offsets", &ok_t]), b"")), "partition\tearliest\tlatest\n0\t0\t2\n");

    // Refused, each at once, in one line naming Kafka's code.
    let topic_denied = "TOPIC_AUTHORIZATION_FAILED";
    refused(&sasl, &env, &as_bob(&["produce", &denied_t]), b"x\n", topic_denied);
    refused(&sasl, &env, &as_bob(&["consume", &denied_t, "-e"]), b"", topic_denied);
    refused(&sasl, &env, &as_bob(&["offsets", &denied_t]), b"", topic_denied);
    refused(
        &sasl,
        &env,
        &as_bob(&["topics", "create", &unique_topic("cli-acl-new"), "--partitions", "1"]),
        b"",
        topic_denied,
    );
    refused(&sasl, &env, &as_bob(&["topics", "delete", &ok_t]), b"", topic_denied);
    let group_denied = "GROUP_AUTHORIZATION_FAILED";
    refused(
        &sasl,
        &env,
        &as_bob(&["consume", &ok_t, "-e", "-g", &denied_g, "--session-timeout", "6s"]),
        b"",
        group_denied,
    );
    refused(&sasl, &env, &as_bob(&["groups", "describe", &denied_g]), b"", group_denied);
    refused(&sasl, &env, &as_bob(&["lag", &denied_g]), b"", group_denied);
    refused(&sasl, &env, &as_bob(&["groups", "delete", &group]), b"", group_denied);
    // Nothing was written to the refused topic.
    assert_eq!(ok(&kafkit(&addr, &[], &["offsets", &denied_t], b"")), "partition\tearliest\tlatest\n0\t0\t0\n");
    // The wrong password is not an authorization failure: SASL authentication fails.
    let err = one_line_error(&kafkit(&sasl, &[("KAFKIT_SASL_PASSWORD", "wrong")], &as_bob(&["topics", "list"]), b""));
    assert!(err.contains("SASL PLAIN authentication") && !err.contains("wrong"), "{err}");
}

#[test]
fn a_user_who_may_write_nothing_is_told_why_the_producer_cannot_start() {
    let b = common::kafka();
    let addr = b.addr();
    let sasl = b.addrs_on(Listener::SaslPlaintext)[0].clone();
    let rt = runtime();
    let t = unique_topic("cli-acl-idem");
    let user = unique_topic("erin");
    let password = format!("{user}-pw");
    rt.block_on(async {
        common::create_topics(&addr, &[TopicConfig::new(&t, 1)]).await;
        let admin = Client::new(&[&addr], ClusterConfig::default()).await.unwrap();
        let cred = ScramCredential {
            user: user.clone(),
            mechanism: ScramMechanism::Sha512,
            iterations: 4096,
            password: password.clone(),
        };
        assert!(admin.alter_user_scram_credentials(&[cred], &[]).await.unwrap()[&user].is_ok());
        let d = Dialer::new().with_sasl(kafkit::Sasl::scram(ScramMechanism::Sha512, user.clone(), password.clone()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.dial(&sasl).await.is_err() {
            assert!(Instant::now() < deadline, "{user} cannot log in");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let env = [("KAFKIT_SASL_PASSWORD", password.as_str())];
    let args = ["--sasl-mechanism", "SCRAM-SHA-512", "--username", &user, "produce", &t];
    // acks=all, the default, is the idempotent producer: its InitProducerId is refused.
    refused(&sasl, &env, &args, b"x\n", "CLUSTER_AUTHORIZATION_FAILED");
    let err = one_line_error(&kafkit(&sasl, &env, &args, b"x\n"));
    assert!(err.contains("Write on some topic or IdempotentWrite on the cluster"), "{err}");
    // With acks=1 (no idempotence) the write itself is refused for the topic.
    refused(&sasl, &env, &[&args[..], &["--acks", "1"]].concat(), b"x\n", "TOPIC_AUTHORIZATION_FAILED");
}
