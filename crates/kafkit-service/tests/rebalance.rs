//! Rebalances, shutdown and health on Apache Kafka 4.4: a member that loses partitions to a
//! newcomer finishes and commits them before the rebalance completes (nothing handled twice,
//! in each revocation mode's terms); a shutdown in the middle of a rebalance; readiness and
//! liveness as states and over HTTP; a static member stays in the group when it stops.

mod common;

use common::*;
use kafkit::ClusterConfig;
use kafkit_service::config::RevokeMode;
use kafkit_service::{Phase, Record, Service, Settings};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Handled = Arc<Mutex<BTreeMap<(i32, i64), Vec<&'static str>>>>;

/// A service on `topic` whose handler takes `ms` per record and notes who handled what.
async fn member(s: Settings, topic: &str, who: &'static str, ms: u64, handled: &Handled) -> Service {
    let mut svc = Service::from_settings(s).await.unwrap();
    let h = handled.clone();
    svc.handle(topic, move |r: Record| {
        let h = h.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if std::env::var_os("DEBUG_HANDLED").is_some() {
                eprintln!("{who} handled {}/{}", r.partition(), r.offset());
            }
            h.lock().unwrap().entry((r.partition(), r.offset())).or_default().push(who);
            Ok(())
        }
    });
    svc
}

async fn revoked_partitions_are_finished_and_committed_first(mode: RevokeMode) {
    let t = unique_topic("rebalance");
    let group = unique_topic("g-rebalance");
    topics(&[(&t, 4)]).await;
    produce((0..400).map(|i| msg(&t, &format!("k{i}"), "x")).collect()).await;
    let handled: Handled = Arc::default();
    let mut s = settings(&group);
    s.consumer.on_revoke = mode;
    s.consumer.commit_interval = Duration::from_secs(30); // only revocations and shutdowns commit
    let a = member(s.clone(), &t, "a", 15, &handled).await;
    let ca = a.control();
    let ra = tokio::spawn(a.run());
    wait_for("a handled some", Duration::from_secs(30), || handled.lock().unwrap().len() >= 40).await;
    let b = member(s, &t, "b", 1, &handled).await;
    let cb = b.control();
    let rb = tokio::spawn(b.run());
    wait_for("b took partitions", Duration::from_secs(30), || {
        handled.lock().unwrap().values().any(|w| w.contains(&"b"))
    })
    .await;
    wait_for("every record handled", Duration::from_secs(60), || handled.lock().unwrap().len() == 400).await;
    ca.shutdown();
    cb.shutdown();
    ra.await.unwrap().unwrap();
    rb.await.unwrap().unwrap();
    let handled = handled.lock().unwrap();
    let twice: Vec<_> = handled.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "{mode:?}: handled twice across the rebalance: {twice:?}");
    let by_a = handled.values().filter(|w| w[0] == "a").count();
    eprintln!("{mode:?}: a handled {by_a}, b {} (of 400), none twice", 400 - by_a);
}

#[tokio::test]
async fn revoked_partitions_are_finished_and_committed_before_the_rebalance_completes() {
    revoked_partitions_are_finished_and_committed_first(RevokeMode::Finish).await;
}

#[tokio::test]
async fn revoked_partitions_stop_their_work_and_commit_what_finished() {
    revoked_partitions_are_finished_and_committed_first(RevokeMode::Stop).await;
}

/// A calls log: (member, partition, offset, attempt, succeeded).
type Calls = Arc<Mutex<Vec<(&'static str, i32, i64, u32, bool)>>>;

#[tokio::test]
async fn a_revocation_under_stop_leaves_a_record_in_its_retry_backoff_to_the_next_owner() {
    let t = unique_topic("rebalance-stop");
    let group = unique_topic("g-rebalance-stop");
    topics(&[(&t, 2)]).await;
    produce((0..20).map(|i| msg(&t, &format!("k{i}"), "x")).collect()).await;
    let per_part: BTreeMap<i32, i64> = read_all(&t, 2).await.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.partition).or_default() += 1;
        m
    });
    assert_eq!(per_part.len(), 2, "records on both partitions: {per_part:?}");
    let calls: Calls = Arc::default();
    let mut s = settings(&group);
    s.consumer.on_revoke = RevokeMode::Stop;
    // A 20 s backoff before the second attempt, well inside the revocation's budget (3/4
    // of a 60 s rebalance timeout): under `finish` the revocation would wait it out and a
    // would make that second attempt; under `stop` it is cut and never made.
    s.reader.rebalance_timeout = Duration::from_secs(60);
    s.consumer.retry.backoff.min = Duration::from_secs(20);
    s.consumer.retry.backoff.max = Duration::from_secs(20);
    s.consumer.retry.backoff.jitter = 0.0;
    let service = |who: &'static str, s: Settings| {
        let (t, calls) = (t.clone(), calls.clone());
        async move {
            let mut svc = Service::from_settings(s).await.unwrap();
            svc.handle(&t, move |r: Record| {
                let calls = calls.clone();
                async move {
                    // a's first call of each partition's offset 0 fails; everything else
                    // succeeds.
                    let mut c = calls.lock().unwrap();
                    let first = r.offset() == 0
                        && who == "a"
                        && !c.iter().any(|x| x.0 == "a" && x.1 == r.partition() && x.2 == 0);
                    c.push((who, r.partition(), r.offset(), r.attempt(), !first));
                    if first {
                        return Err(kafkit_service::Failure::retry("not yet"));
                    }
                    Ok(())
                }
            });
            svc
        }
    };
    let a = service("a", s.clone()).await;
    let ca = a.control();
    let ra = tokio::spawn(a.run());
    wait_for("a's first calls of both partitions failed", Duration::from_secs(30), || {
        calls.lock().unwrap().iter().filter(|c| c.0 == "a" && !c.4).count() == 2
    })
    .await;
    let b = service("b", s).await;
    let cb = b.control();
    let b_started = Instant::now();
    let rb = tokio::spawn(b.run());
    let done = || {
        let c = calls.lock().unwrap();
        per_part.iter().all(|(p, n)| (0..*n).all(|o| c.iter().any(|x| x.1 == *p && x.2 == o && x.4)))
    };
    wait_for("every record handled", Duration::from_secs(60), done).await;
    let took = b_started.elapsed();
    ca.shutdown();
    cb.shutdown();
    ra.await.unwrap().unwrap();
    rb.await.unwrap().unwrap();
    let calls = calls.lock().unwrap().clone();
    assert!(calls.iter().all(|c| c.3 == 1), "no second attempt: the backoff was cut, not waited out: {calls:?}");
    assert!(took < Duration::from_secs(20), "the 20 s backoff was not waited out: {took:?}");
    for (p, n) in &per_part {
        let of_zero: Vec<_> = calls.iter().filter(|c| c.1 == *p && c.2 == 0).collect();
        assert_eq!((of_zero[0].0, of_zero[0].4), ("a", false), "partition {p}: {of_zero:?}");
        assert_eq!(of_zero.iter().filter(|c| c.4).count(), 1, "partition {p} offset 0 redone once: {of_zero:?}");
        for o in 1..*n {
            let ok = calls.iter().filter(|c| c.1 == *p && c.2 == o && c.4).count();
            assert_eq!(ok, 1, "partition {p} offset {o}: {calls:?}");
        }
    }
    let redone_by_b = calls.iter().filter(|c| c.0 == "b" && c.2 == 0).count();
    assert_eq!(redone_by_b, 1, "b, the next owner of one partition, redid its offset 0: {calls:?}");
    let c = committed(&group).await;
    for (p, n) in &per_part {
        assert_eq!(c.get(&kafkit::TopicPartition::new(&t, *p)), Some(n), "partition {p} committed to its end");
    }
    eprintln!("stop: a's records in a 20 s retry backoff were left uncommitted at the revocation; the owners redid them, all done {took:?} after b started");
}

#[tokio::test]
async fn a_shutdown_that_outlasts_its_timeout_ends_with_shutdown_timeout() {
    let t = unique_topic("shutdown-timeout");
    let group = unique_topic("g-shutdown-timeout");
    topics(&[(&t, 1)]).await;
    produce(vec![msg(&t, "a", "ok"), msg(&t, "b", "ok"), msg(&t, "c", "stuck"), msg(&t, "d", "ok")]).await;
    let mut s = settings(&group);
    s.shutdown.timeout = Duration::from_secs(1);
    s.shutdown.drain_timeout = Duration::from_secs(30); // the drain would wait: the timeout ends it
    let stuck = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut svc = Service::from_settings(s).await.unwrap();
    let st = stuck.clone();
    svc.handle(&t, move |r: Record| {
        let st = st.clone();
        async move {
            if text(&r.value().cloned()) == "stuck" {
                st.store(true, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    wait_for("the stuck call", Duration::from_secs(30), || stuck.load(std::sync::atomic::Ordering::SeqCst)).await;
    let tp = kafkit::TopicPartition::new(&t, 0);
    wait_for_async("offsets 0 and 1 committed", Duration::from_secs(30), || async {
        committed(&group).await.get(&tp) == Some(&2)
    })
    .await;
    let stop = Instant::now();
    control.shutdown();
    let r = run.await.unwrap();
    let took = stop.elapsed();
    assert!(matches!(r, Err(kafkit_service::Error::ShutdownTimeout(d)) if d == Duration::from_secs(1)), "{r:?}");
    assert!(took >= Duration::from_secs(1), "ended at shutdown.timeout, not before: {took:?}");
    assert_eq!(control.phase(), Phase::Stopped);
    assert_eq!(committed(&group).await.get(&tp), Some(&2), "nothing past the call cut short");
    eprintln!("a shutdown stuck on a 60 s call ended with {r:?} after {took:?}; committed offset 2");
}

#[tokio::test]
async fn revoked_partitions_cancel_their_work_and_the_next_owner_redoes_only_that() {
    let t = unique_topic("rebalance-cancel");
    let group = unique_topic("g-rebalance-cancel");
    topics(&[(&t, 2)]).await;
    produce((0..40).map(|i| msg(&t, &format!("k{i}"), "x")).collect()).await;
    let handled: Handled = Arc::default();
    let started: Arc<Mutex<Vec<(i32, i64)>>> = Arc::default();
    let per_part: BTreeMap<i32, usize> = read_all(&t, 2).await.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.partition).or_default() += 1;
        m
    });
    let mut s = settings(&group);
    s.consumer.on_revoke = RevokeMode::Cancel;
    // At the end, a's drain gives up on its 20 s call after 1 s.
    s.shutdown.drain_timeout = Duration::from_secs(1);
    let mut a = Service::from_settings(s.clone()).await.unwrap();
    let (h, st) = (handled.clone(), started.clone());
    a.handle(&t, move |r: Record| {
        let (h, st) = (h.clone(), st.clone());
        async move {
            st.lock().unwrap().push((r.partition(), r.offset()));
            // Long enough that the revocation comes in the middle of the first call.
            tokio::time::sleep(Duration::from_secs(20)).await;
            h.lock().unwrap().entry((r.partition(), r.offset())).or_default().push("a");
            Ok(())
        }
    });
    let ca = a.control();
    let ra = tokio::spawn(a.run());
    wait_for("a started its calls", Duration::from_secs(30), || started.lock().unwrap().len() == 2).await;
    let revoke_started = Instant::now();
    let b = member(s, &t, "b", 0, &handled).await;
    let cb = b.control();
    let rb = tokio::spawn(b.run());
    let b_partition = || {
        let h = handled.lock().unwrap();
        per_part
            .iter()
            .find(|(p, n)| (0..**n as i64).all(|o| h.get(&(**p, o)).is_some_and(|w| w == &["b"])))
            .map(|(p, _)| *p)
    };
    wait_for("b handled a whole partition", Duration::from_secs(30), || b_partition().is_some()).await;
    let took = revoke_started.elapsed();
    let p = b_partition().unwrap();
    assert!(took < Duration::from_secs(15), "cancelled at once, not after the 20 s calls: {took:?}");
    assert!(
        started.lock().unwrap().contains(&(p, 0)),
        "a had started offset 0 of partition {p}, cancelled, and b redid it"
    );
    let stop = Instant::now();
    ca.shutdown();
    cb.shutdown();
    ra.await.unwrap().unwrap();
    let a_stop = stop.elapsed();
    assert!(a_stop < Duration::from_secs(5), "the drain timeout (1 s) cut a's 20 s call: {a_stop:?}");
    rb.await.unwrap().unwrap();
    let handled = handled.lock().unwrap().clone();
    assert!(handled.values().all(|w| w.len() == 1), "{handled:?}");
    assert!(handled.values().all(|w| w == &["b"]), "a finished nothing: {handled:?}");
    let c = committed(&group).await;
    assert!(
        c.get(&kafkit::TopicPartition::new(&t, 1 - p)).is_none_or(|o| *o == 0),
        "a's abandoned call not committed: {c:?}"
    );
    eprintln!("cancel: a's 20 s calls dropped; b redid partition {p} from offset 0 within {took:?}; a's shutdown cut its call after {a_stop:?}");
}

#[tokio::test]
async fn a_shutdown_during_a_rebalance_is_handled() {
    let t = unique_topic("rebalance-shutdown");
    let group = unique_topic("g-rebalance-shutdown");
    topics(&[(&t, 4)]).await;
    produce((0..300).map(|i| msg(&t, &format!("k{i}"), "x")).collect()).await;
    let handled: Handled = Arc::default();
    let s = settings(&group);
    // a's calls turn slow once b starts: the revocation b's join causes waits for them.
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut a = Service::from_settings(s.clone()).await.unwrap();
    let (h, sl) = (handled.clone(), slow.clone());
    a.handle(&t, move |r: Record| {
        let (h, sl) = (h.clone(), sl.clone());
        async move {
            let ms = if sl.load(std::sync::atomic::Ordering::SeqCst) { 1500 } else { 5 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            h.lock().unwrap().entry((r.partition(), r.offset())).or_default().push("a");
            Ok(())
        }
    });
    let ca = a.control();
    let ra = tokio::spawn(a.run());
    wait_for("a handled some", Duration::from_secs(30), || handled.lock().unwrap().len() >= 30).await;
    slow.store(true, std::sync::atomic::Ordering::SeqCst);
    let b = member(s, &t, "b", 1, &handled).await;
    let cb = b.control();
    let rb = tokio::spawn(b.run());
    // b's join starts a rebalance, which waits for a's revocation (its slow calls): a is
    // asked to stop once the coordinator says the group is rebalancing.
    let admin = kafkit::admin::Client::new(&[&kafka().addr()], ClusterConfig::default()).await.unwrap();
    let state: Arc<Mutex<String>> = Arc::default();
    wait_for_async("the group rebalancing", Duration::from_secs(30), || {
        let (admin, group, state) = (&admin, &group, state.clone());
        async move {
            let d = admin.describe_groups(&[group]).await.unwrap().remove(group).unwrap().unwrap();
            *state.lock().unwrap() = d.state.clone();
            d.state == "PreparingRebalance" || d.state == "CompletingRebalance"
        }
    })
    .await;
    let state = state.lock().unwrap().clone();
    let stop = Instant::now();
    ca.shutdown();
    assert!(ca.is_shutdown());
    assert_eq!(ca.phase(), Phase::Draining);
    ra.await.unwrap().unwrap();
    let a_took = stop.elapsed();
    assert_eq!(ca.phase(), Phase::Stopped);
    assert!(!ca.health().ready());
    wait_for("b handled the rest", Duration::from_secs(60), || handled.lock().unwrap().len() == 300).await;
    cb.shutdown();
    rb.await.unwrap().unwrap();
    // Everything was committed, by a (what it finished) or b (the rest).
    let c = committed(&group).await;
    let ends = read_all(&t, 4).await.iter().fold(BTreeMap::new(), |mut m, r| {
        m.insert(kafkit::TopicPartition::new(&t, r.partition), r.offset + 1);
        m
    });
    assert_eq!(c, ends, "committed to the end of each partition");
    let twice: Vec<_> = handled.lock().unwrap().iter().filter(|(_, w)| w.len() > 1).map(|(k, _)| *k).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");
    let by_a = handled.lock().unwrap().values().filter(|w| w[0] == "a").count();
    eprintln!("a, asked to stop while the group was {state}, finished its slow calls and left in {a_took:?}; a handled {by_a}, b {}, none twice, all committed", 300 - by_a);
}

/// GET `path` from `addr`: the status and the body.
#[cfg(feature = "http")]
async fn get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

#[cfg(feature = "http")]
#[tokio::test]
async fn health_is_readable_by_code_and_over_http() {
    let t = unique_topic("health");
    let group = unique_topic("g-health");
    topics(&[(&t, 2)]).await;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut s = settings(&group);
    s.health.listen = Some(addr.clone());
    s.health.handler_stall = Duration::from_millis(300);
    s.reader.group_instance_id = Some(unique_topic("static"));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut svc = Service::from_settings(s).await.unwrap();
    let r = release.clone();
    svc.handle(&t, move |rec: Record| {
        let r = r.clone();
        async move {
            if crate::common::text(&rec.value().cloned()) == "stuck" {
                r.notified().await;
            }
            Ok(())
        }
    });
    let control = svc.control();
    assert!(!control.health().ready(), "not ready before it runs");
    let run = tokio::spawn(svc.run());
    wait_for("ready", Duration::from_secs(30), || control.health().ready()).await;
    let (code, body) = get(&addr, "/health/ready").await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["members"][0]["group"], group.as_str());
    assert_eq!(v["members"][0]["partitions"], 2);
    assert_eq!(get(&addr, "/health/live").await.0, 200);

    // A handler call stuck past health.handler_stall: not live, until it ends.
    produce(vec![msg(&t, "k", "stuck")]).await;
    wait_for("not live", Duration::from_secs(10), || !control.health().live()).await;
    let (code, body) = get(&addr, "/health/live").await;
    assert_eq!(code, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["members"][0]["longest_call"].is_string(), "{body}");
    release.notify_one();
    wait_for("live again", Duration::from_secs(10), || control.health().live()).await;
    assert_eq!(get(&addr, "/health/live").await.0, 200);
    let (code, body) = get(&addr, "/stats").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[t.as_str()]["handled"], 1, "{body}");
    assert!(v[t.as_str()]["latency"]["max"].is_string(), "{body}");
    assert_eq!(get(&addr, "/nope").await.0, 404);

    control.shutdown();
    run.await.unwrap().unwrap();
    assert!(!control.health().ready() && control.is_shutdown());
    // A static member does not leave the group: it is still listed after the shutdown.
    let admin = kafkit::admin::Client::new(&[&kafka().addr()], ClusterConfig::default()).await.unwrap();
    let d = admin.describe_groups(&[&group]).await.unwrap().remove(&group).unwrap().unwrap();
    assert_eq!(d.members.len(), 1, "the static member stays until its session times out: {d:?}");
}

#[tokio::test]
async fn a_dynamic_member_leaves_the_group_when_it_stops() {
    let t = unique_topic("leave");
    let group = unique_topic("g-leave");
    topics(&[(&t, 1)]).await;
    let handled: Handled = Arc::default();
    let svc = member(settings(&group), &t, "a", 0, &handled).await;
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    wait_for("ready", Duration::from_secs(30), || control.health().ready()).await;
    control.shutdown();
    run.await.unwrap().unwrap();
    let admin = kafkit::admin::Client::new(&[&kafka().addr()], ClusterConfig::default()).await.unwrap();
    let d = admin.describe_groups(&[&group]).await.unwrap().remove(&group).unwrap().unwrap();
    assert!(d.members.is_empty(), "left at once: {d:?}");
    assert_eq!(d.state, "Empty");
}

#[tokio::test]
async fn a_shutdown_starts_no_new_retry_and_commits_nothing_past_the_record() {
    let t = unique_topic("retry-shutdown");
    let group = unique_topic("g-retry-shutdown");
    topics(&[(&t, 1)]).await;
    produce(vec![msg(&t, "a", "ok"), msg(&t, "b", "fails"), msg(&t, "c", "ok")]).await;
    let calls: Arc<Mutex<Vec<(i64, u32)>>> = Arc::default();
    let mut s = settings(&group);
    s.consumer.retry.backoff.min = Duration::from_secs(10);
    s.consumer.retry.backoff.max = Duration::from_secs(10);
    let mut svc = Service::from_settings(s).await.unwrap();
    let c = calls.clone();
    svc.handle(&t, move |r: Record| {
        let c = c.clone();
        async move {
            c.lock().unwrap().push((r.offset(), r.attempt()));
            if text(&r.value().cloned()) == "fails" {
                return Err(kafkit_service::Failure::retry("not now"));
            }
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    wait_for("the failing record's first call", Duration::from_secs(30), || calls.lock().unwrap().contains(&(1, 1)))
        .await;
    let stop = Instant::now();
    control.shutdown();
    run.await.unwrap().unwrap();
    let took = stop.elapsed();
    assert!(took < Duration::from_secs(5), "the 10 s backoff was not waited out: {took:?}");
    assert_eq!(calls.lock().unwrap().clone(), vec![(0, 1), (1, 1)], "no retry, nothing after it");
    let c = committed(&group).await;
    assert_eq!(c.get(&kafkit::TopicPartition::new(&t, 0)), Some(&1), "committed up to the unfinished record");
    eprintln!("shutdown during a 10 s retry backoff took {took:?}; committed offset 1");
}
