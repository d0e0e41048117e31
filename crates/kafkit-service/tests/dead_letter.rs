//! Dead-letter topics on Apache Kafka 4.4: poison records land there with every header and
//! nothing else is skipped or handled twice; a dead-letter outage (the principal may not
//! write the dead-letter topic: Kafka's authorizer refuses it) stops the partition without
//! committing past the failed record, and it goes on once the topic can be written.

mod common;

use bytes::Bytes;
use common::*;
use kafkit::admin::{Acl, AclOperation, AclPermission, PatternType, ResourceType};
use kafkit::{ClusterConfig, Header, Message, TopicPartition, Writer, WriterConfig};
use kafkit_service::dlt::*;
use kafkit_service::{Failure, Record, Service};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Seen = Arc<Mutex<BTreeMap<(i32, i64), u32>>>;

#[tokio::test]
async fn poison_records_land_in_the_dead_letter_topic_with_every_header() {
    let t = unique_topic("orders");
    let dlt = format!("{t}.DLT");
    let group = unique_topic("g-dlt");
    topics(&[(&t, 3), (&dlt, 3)]).await;
    // 300 records over 30 keys: every 37th is poison (dead-lettered at once), every 41st
    // fails twice and then succeeds, every 53rd always asks for a retry (dead-lettered when
    // its 3 attempts are spent).
    let kind = |i: usize| match i {
        i if i % 37 == 5 => "poison",
        i if i % 41 == 7 => "flaky",
        i if i % 53 == 9 => "hopeless",
        _ => "ok",
    };
    let msgs: Vec<Message> = (0..300)
        .map(|i| {
            let mut m = msg(&t, &format!("k{}", i % 30), &format!("{}-{i}", kind(i)));
            m.headers.push(Header { key: "trace".into(), value: Some(Bytes::from(format!("t{i}"))) });
            m
        })
        .collect();
    let count = |k: &str| (0..300).filter(|&i| kind(i) == k).count() as u64;
    let (poison, flaky, hopeless, ok) = (count("poison"), count("flaky"), count("hopeless"), count("ok"));
    produce(msgs).await;
    let sources = read_all(&t, 3).await;
    assert_eq!(sources.len(), 300);

    let handled: Seen = Arc::default();
    let calls: Seen = Arc::default();
    let mut s = settings(&group);
    s.consumer.retry.max_attempts = 3;
    let mut svc = Service::from_settings(s).await.unwrap();
    let (h, c) = (handled.clone(), calls.clone());
    svc.handle(&t, move |r: Record| {
        let (h, c) = (h.clone(), c.clone());
        async move {
            *c.lock().unwrap().entry((r.partition(), r.offset())).or_default() += 1;
            let v = text(&r.value().cloned());
            if v.starts_with("poison") {
                return Err(Failure::dead_letter(format!("{v} is not an order")).with_kind("InvalidOrder"));
            }
            if v.starts_with("hopeless") || (v.starts_with("flaky") && r.attempt() < 3) {
                return Err(Failure::retry(format!("{v}: the ledger is busy")));
            }
            *h.lock().unwrap().entry((r.partition(), r.offset())).or_default() += 1;
            Ok(())
        }
    });
    let control = svc.control();
    let started = Instant::now();
    let run = tokio::spawn(svc.run());
    let ends: BTreeMap<TopicPartition, i64> = {
        let mut e = BTreeMap::new();
        for m in &sources {
            e.insert(TopicPartition::new(&t, m.partition), m.offset + 1);
        }
        e
    };
    wait_for_async("every offset committed", Duration::from_secs(60), || async {
        let c = committed(&group).await;
        ends.iter().all(|(tp, end)| c.get(tp) == Some(end))
    })
    .await;
    let took = started.elapsed();
    control.shutdown();
    run.await.unwrap().unwrap();

    // Nothing skipped, nothing handled twice.
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len() as u64, ok + flaky, "every good record handled");
    assert!(handled.values().all(|n| *n == 1), "a record handled twice: {handled:?}");
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 300, "every record was given to the handler");
    for m in &sources {
        let v = text(&m.value);
        let n = calls[&(m.partition, m.offset)];
        let want = if v.starts_with("flaky") || v.starts_with("hopeless") { 3 } else { 1 };
        assert_eq!(n, want, "{v}: calls");
    }
    let stats = control.stats()[&t].clone();
    assert_eq!(stats.handled, ok + flaky);
    assert_eq!(stats.dead_lettered, poison + hopeless);
    assert_eq!(stats.retried, 2 * flaky + 2 * hopeless);
    assert_eq!(stats.failed, poison + 2 * flaky + 3 * hopeless);
    assert_eq!(stats.latency.calls, ok + poison + 3 * flaky + 3 * hopeless);

    // The dead letters: exactly the poison and hopeless records, each once, with every header.
    let dead = read_all(&dlt, 3).await;
    assert_eq!(dead.len() as u64, poison + hopeless);
    let by_pos: BTreeMap<(i32, i64), &Message> = sources.iter().map(|m| ((m.partition, m.offset), m)).collect();
    let mut seen = BTreeSet::new();
    for d in &dead {
        let h = |name: &str| header_text(d, name).unwrap_or_else(|| panic!("no {name} on {d:?}"));
        assert_eq!(h(DLT_ORIGINAL_TOPIC), t);
        let pos = (h(DLT_ORIGINAL_PARTITION).parse::<i32>().unwrap(), h(DLT_ORIGINAL_OFFSET).parse::<i64>().unwrap());
        assert!(seen.insert(pos), "dead-lettered twice: {pos:?}");
        let src = by_pos[&pos];
        assert_eq!((&d.key, &d.value), (&src.key, &src.value), "key and value kept");
        assert_eq!(header_text(d, "trace"), header_text(src, "trace"), "headers kept");
        let ts = src.time.unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
        assert_eq!(h(DLT_ORIGINAL_TIMESTAMP), ts);
        assert_eq!(h(DLT_CONSUMER_GROUP), group);
        let (first, last): (i64, i64) = (h(DLT_FAILURE_FIRST).parse().unwrap(), h(DLT_FAILURE_LAST).parse().unwrap());
        assert!(first >= ts.parse::<i64>().unwrap() && first <= last, "{first} {last}");
        let v = text(&src.value);
        if v.starts_with("poison") {
            assert_eq!(
                (h(DLT_ERROR_KIND), h(DLT_ERROR_ACTION), h(DLT_ATTEMPTS)),
                ("InvalidOrder".into(), "dead-letter".into(), "1".into())
            );
            assert_eq!(h(DLT_ERROR_MESSAGE), format!("{v} is not an order"));
            assert_eq!(first, last);
        } else {
            assert!(v.starts_with("hopeless"), "{v} was dead-lettered");
            assert_eq!(
                (h(DLT_ERROR_KIND), h(DLT_ERROR_ACTION), h(DLT_ATTEMPTS)),
                ("error".into(), "retries-exhausted".into(), "3".into())
            );
            assert_eq!(h(DLT_ERROR_MESSAGE), format!("{v}: the ledger is busy"));
            assert!(last - first >= 40, "two backoffs of at least 20 ms between the failures: {first}..{last}");
        }
    }
    eprintln!(
        "300 records: {ok} ok, {flaky} flaky (handled on the 3rd call), {poison} poison and {hopeless} hopeless dead-lettered; all committed after {took:?}; p50 {:?} p99 {:?}",
        stats.latency.p50, stats.latency.p99
    );
}

fn allow(resource_type: ResourceType, name: &str, operation: AclOperation) -> Acl {
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

#[tokio::test]
async fn a_dead_letter_outage_stops_the_partition_without_committing_past_the_record() {
    let k = kafka();
    let t = unique_topic("orders-outage");
    let dlt = format!("{t}.DLT");
    let out = format!("{t}-out");
    let group = unique_topic("g-outage");
    topics(&[(&t, 2), (&dlt, 1), (&out, 1)]).await;
    let admin = kafkit::admin::Client::new(&[&k.addr()], ClusterConfig::default()).await.unwrap();
    // bob may read the topic and the group and write the output topic: not the dead-letter
    // topic.
    let acls = [
        allow(ResourceType::Topic, &t, AclOperation::Read),
        allow(ResourceType::Group, &group, AclOperation::Read),
        allow(ResourceType::Topic, &out, AclOperation::Write),
    ];
    assert!(admin.create_acls(&acls).await.unwrap().iter().all(Result::is_ok));

    // 20 records on each partition; the 6th of partition 0 is poison.
    let w = Writer::new(&[&k.addr()], WriterConfig::default()).await.unwrap();
    let mut msgs = Vec::new();
    for p in 0..2 {
        for i in 0..20 {
            let v = if p == 0 && i == 5 { "poison".to_string() } else { format!("ok-{p}-{i}") };
            let mut m = msg(&t, &format!("k{i}"), &v);
            m.partition = p;
            msgs.push(m);
        }
    }
    let w2 =
        Writer::new(&[&k.addr()], WriterConfig::default().with_balancer(|m: &Message, _parts: &[i32]| m.partition))
            .await
            .unwrap();
    drop(w);
    let delivered = w2.write_messages(msgs).await.unwrap();
    let poison = delivered.iter().find(|d| d.partition == 0).map(|d| d.offset + 5).unwrap();
    let end0 = poison + 15;
    let end1 = delivered.iter().filter(|d| d.partition == 1).map(|d| d.offset).max().unwrap() + 1;

    let handled: Seen = Arc::default();
    let mut s = settings(&group);
    s.brokers = k.addrs_on(Listener::SaslPlaintext);
    s.sasl.mechanism = Some("PLAIN".into());
    s.sasl.username = Some(users::BOB.0.into());
    s.sasl.password = Some(kafkit_service::config::SecretString::new(users::BOB.1));
    let mut svc = Service::from_settings(s).await.unwrap();
    let h = handled.clone();
    svc.handle(&t, move |r: Record| {
        let h = h.clone();
        async move {
            if text(&r.value().cloned()) == "poison" {
                return Err(Failure::dead_letter("poison"));
            }
            *h.lock().unwrap().entry((r.partition(), r.offset())).or_default() += 1;
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());

    // Partition 1 goes on to its end; partition 0 stops at the poison record.
    let tp0 = TopicPartition::new(&t, 0);
    let tp1 = TopicPartition::new(&t, 1);
    wait_for_async("partition 1 committed to its end", Duration::from_secs(30), || async {
        committed(&group).await.get(&tp1) == Some(&end1)
    })
    .await;
    wait_for("partition 0 reported stopped", Duration::from_secs(30), || {
        control.health().members.iter().any(|m| m.stopped.iter().any(|s| s.starts_with(&format!("{tp0}:"))))
    })
    .await;
    let stopped_at = Instant::now();
    // Several dead-letter tries (100 ms doubling) and commit intervals (100 ms) go by.
    wait_for("four failed dead-letter writes", Duration::from_secs(30), || control.stats()[&t].dead_letter_errors >= 4)
        .await;
    let health = control.health();
    let why = health.members[0].stopped.join("; ");
    assert!(why.contains("TOPIC_AUTHORIZATION_FAILED"), "{why}");
    assert_eq!(committed(&group).await.get(&tp0), Some(&poison), "committed exactly up to the poison record");
    let after: Vec<i64> =
        handled.lock().unwrap().keys().filter(|(p, o)| *p == 0 && *o > poison).map(|(_, o)| *o).collect();
    assert!(after.is_empty(), "records after the poison record were handled while it waited: {after:?}");
    assert_eq!(control.stats()[&t].dead_lettered, 0);
    eprintln!(
        "outage: partition 0 held at offset {poison} for {:?} over {} failed dead-letter writes: {why}",
        stopped_at.elapsed(),
        control.stats()[&t].dead_letter_errors
    );

    // The dead-letter topic becomes writable: the record goes there and partition 0 goes on.
    assert!(admin
        .create_acls(&[allow(ResourceType::Topic, &dlt, AclOperation::Write)])
        .await
        .unwrap()
        .iter()
        .all(Result::is_ok));
    let granted = Instant::now();
    wait_for_async("partition 0 committed to its end", Duration::from_secs(30), || async {
        committed(&group).await.get(&tp0) == Some(&end0)
    })
    .await;
    let recovered = granted.elapsed();
    wait_for("the partition no longer reported stopped", Duration::from_secs(30), || {
        control.health().members[0].stopped.is_empty()
    })
    .await;
    control.shutdown();
    run.await.unwrap().unwrap();
    let dead = read_all(&dlt, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(header_text(&dead[0], DLT_ORIGINAL_OFFSET), Some(poison.to_string()));
    let handled = handled.lock().unwrap();
    assert_eq!(handled.len(), 39, "every other record handled");
    assert!(handled.values().all(|n| *n == 1));
    eprintln!("recovered {recovered:?} after the grant: dead letter written, partition 0 committed to {end0}");
}
