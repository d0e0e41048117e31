//! The consumer runtime on Apache Kafka 4.4: key-ordered parallelism under a shuffled
//! workload (per-key order, commits never past an unfinished record), the partition bound,
//! batch handlers (per partition and across partitions, failed records only retried),
//! several topics in one group and in separate groups with stats per topic, and retries
//! through retry topics.

mod common;

use common::*;
use kafkit::TopicPartition;
use kafkit_service::config::{BatchScope, Ordering, RetryMode, TopicSettings};
use kafkit_service::dlt::*;
use kafkit_service::{Batch, BatchFailure, Failure, Record, Service};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A small deterministic generator (the workload is shuffled the same way every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

async fn all_committed(group: &str, topic: &str, partitions: i32) -> BTreeMap<TopicPartition, i64> {
    let ends: BTreeMap<TopicPartition, i64> = {
        let mut e = BTreeMap::new();
        for m in read_all(topic, partitions).await {
            e.insert(TopicPartition::new(topic, m.partition), m.offset + 1);
        }
        e
    };
    wait_for_async(&format!("{topic} committed to its end by {group}"), Duration::from_secs(60), || async {
        let c = committed(group).await;
        ends.iter().all(|(tp, end)| c.get(tp) == Some(end))
    })
    .await;
    ends
}

#[tokio::test]
async fn key_ordered_parallelism_keeps_per_key_order_under_a_shuffled_workload() {
    let t = unique_topic("keyed");
    let group = unique_topic("g-keyed");
    topics(&[(&t, 1)]).await;
    // 40 keys x 25 records, interleaved in a shuffled order; each value is `key:seq`.
    let (keys, per_key) = (40usize, 25usize);
    let mut next_seq = vec![0usize; keys];
    let mut rng = Lcg(7);
    let mut msgs = Vec::new();
    while msgs.len() < keys * per_key {
        let k = (rng.next() as usize) % keys;
        if next_seq[k] < per_key {
            msgs.push(msg(&t, &format!("key-{k}"), &format!("{k}:{}", next_seq[k])));
            next_seq[k] += 1;
        }
    }
    produce(msgs).await;

    let order: Arc<Mutex<BTreeMap<usize, Vec<usize>>>> = Arc::default();
    let running: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let finished: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut s = settings(&group);
    s.consumer.ordering = Ordering::Key;
    s.consumer.key_concurrency = 8;
    let mut svc = Service::from_settings(s).await.unwrap();
    let (o, r, f, v, n, p) =
        (order.clone(), running.clone(), finished.clone(), violations.clone(), now.clone(), peak.clone());
    let slept = Arc::new(AtomicUsize::new(0));
    let sl = slept.clone();
    svc.handle(&t, move |rec: Record| {
        let (o, r, f, v, n, p, sl) = (o.clone(), r.clone(), f.clone(), v.clone(), n.clone(), p.clone(), sl.clone());
        async move {
            let val = text(&rec.value().cloned());
            let (k, seq) =
                val.split_once(':').map(|(k, s)| (k.parse::<usize>().unwrap(), s.parse::<usize>().unwrap())).unwrap();
            if !r.lock().unwrap().insert(k) {
                v.lock().unwrap().push(format!("key {k} ran twice at once (seq {seq})"));
            }
            let c = n.fetch_add(1, AtomicOrdering::SeqCst) + 1;
            p.fetch_max(c, AtomicOrdering::SeqCst);
            o.lock().unwrap().entry(k).or_default().push(seq);
            let ms = rec.offset() as u64 * 2654435761 % 6;
            sl.fetch_add(ms as usize, AtomicOrdering::Relaxed);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            n.fetch_sub(1, AtomicOrdering::SeqCst);
            r.lock().unwrap().remove(&k);
            f.lock().unwrap().insert(rec.offset());
            Ok(())
        }
    });
    let control = svc.control();
    let started = Instant::now();
    let run = tokio::spawn(svc.run());
    // While it runs: every committed offset has everything below it finished.
    let (f2, g2, t2) = (finished.clone(), group.clone(), t.clone());
    let watcher = tokio::spawn(async move {
        let mut checks = 0;
        loop {
            let c = committed(&g2).await.get(&TopicPartition::new(&t2, 0)).copied().unwrap_or(0);
            let done = f2.lock().unwrap().clone();
            if let Some(missing) = (0..c).find(|o| !done.contains(o)) {
                return Err(format!("committed {c} while offset {missing} was not finished"));
            }
            checks += 1;
            if c >= 1000 {
                return Ok(checks);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    all_committed(&group, &t, 1).await;
    let took = started.elapsed();
    let checks = watcher.await.unwrap().unwrap();
    control.shutdown();
    run.await.unwrap().unwrap();

    assert!(violations.lock().unwrap().is_empty(), "{:?}", violations.lock().unwrap());
    let order = order.lock().unwrap();
    assert_eq!(order.len(), keys);
    for (k, seqs) in order.iter() {
        assert_eq!(seqs, &(0..per_key).collect::<Vec<_>>(), "key {k} out of order or not once each");
    }
    let peak = peak.load(AtomicOrdering::SeqCst);
    assert!((2..=8).contains(&peak), "at most key_concurrency (8) at once, and more than one: {peak}");
    let serial = Duration::from_millis(slept.load(AtomicOrdering::Relaxed) as u64);
    eprintln!(
        "1000 records of 40 shuffled keys on one partition: per-key order kept, {peak} at once at most, {took:?} \
         against {serial:?} of handler sleep in all; {checks} commit checks, none past an unfinished record"
    );
}

#[tokio::test]
async fn partitions_run_in_parallel_within_the_bound_and_in_order_each() {
    let t = unique_topic("parts");
    let group = unique_topic("g-parts");
    topics(&[(&t, 6)]).await;
    produce((0..240).map(|i| msg(&t, &format!("k{i}"), &i.to_string())).collect()).await;
    let per_part: Arc<Mutex<BTreeMap<i32, Vec<i64>>>> = Arc::default();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut s = settings(&group);
    s.consumer.partition_concurrency = 2;
    let mut svc = Service::from_settings(s).await.unwrap();
    let (pp, n, p) = (per_part.clone(), now.clone(), peak.clone());
    svc.handle(&t, move |r: Record| {
        let (pp, n, p) = (pp.clone(), n.clone(), p.clone());
        async move {
            let c = n.fetch_add(1, AtomicOrdering::SeqCst) + 1;
            p.fetch_max(c, AtomicOrdering::SeqCst);
            pp.lock().unwrap().entry(r.partition()).or_default().push(r.offset());
            tokio::time::sleep(Duration::from_millis(3)).await;
            n.fetch_sub(1, AtomicOrdering::SeqCst);
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    all_committed(&group, &t, 6).await;
    control.shutdown();
    run.await.unwrap().unwrap();
    assert_eq!(peak.load(AtomicOrdering::SeqCst), 2, "two partitions at once, never more");
    let per_part = per_part.lock().unwrap();
    let total: usize = per_part.values().map(Vec::len).sum();
    assert_eq!(total, 240);
    for (p, offs) in per_part.iter() {
        assert!(offs.windows(2).all(|w| w[0] + 1 == w[1]), "partition {p} out of order: {offs:?}");
    }
}

#[tokio::test]
async fn batches_fail_whole_or_by_record_and_only_failed_records_go_again() {
    let t = unique_topic("batches");
    let across = unique_topic("batches-across");
    let group = unique_topic("g-batches");
    topics(&[(&t, 2), (&format!("{t}.DLT"), 1), (&across, 3)]).await;
    let mut msgs: Vec<_> = (0..100)
        .map(|i| {
            let v = match i {
                i if i % 17 == 3 => format!("bad-{i}"),
                i if i % 29 == 4 => format!("poison-{i}"),
                i => format!("ok-{i}"),
            };
            msg(&t, &format!("k{i}"), &v)
        })
        .collect();
    msgs.extend((0..90).map(|i| msg(&across, &format!("a{i}"), &i.to_string())));
    produce(msgs).await;
    type Calls = Arc<Mutex<Vec<(u32, Vec<(i32, i64, String)>)>>>;
    type Positions = Arc<Mutex<Vec<Vec<(i32, i64)>>>>;
    let calls: Calls = Arc::default();
    let across_batches: Positions = Arc::default();
    let mut s = settings(&group);
    s.consumer.batch.max_records = 10;
    s.consumer.batch.max_wait = Duration::from_millis(50);
    s.consumer.topics.insert(
        across.clone(),
        TopicSettings { batch_scope: Some(BatchScope::Topic), batch_max_records: Some(25), ..TopicSettings::default() },
    );
    let mut svc = Service::from_settings(s).await.unwrap();
    let c = calls.clone();
    svc.handle_batch(&t, move |b: Batch| {
        let c = c.clone();
        async move {
            let attempt = b.records()[0].attempt();
            let seen: Vec<(i32, i64, String)> =
                b.records().iter().map(|r| (r.partition(), r.offset(), text(&r.value().cloned()))).collect();
            c.lock().unwrap().push((attempt, seen.clone()));
            let failed: Vec<(usize, Failure)> = seen
                .iter()
                .enumerate()
                .filter_map(|(i, (_, _, v))| match v {
                    v if v.starts_with("bad") && attempt == 1 => Some((i, Failure::retry("not yet"))),
                    v if v.starts_with("poison") => Some((i, Failure::dead_letter("poison"))),
                    _ => None,
                })
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(BatchFailure::Records(failed))
            }
        }
    });
    let ab = across_batches.clone();
    svc.handle_batch(&across, move |b: Batch| {
        let ab = ab.clone();
        async move {
            ab.lock().unwrap().push(b.records().iter().map(|r| (r.partition(), r.offset())).collect());
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    all_committed(&group, &t, 2).await;
    all_committed(&group, &across, 3).await;
    control.shutdown();
    run.await.unwrap().unwrap();

    let calls = calls.lock().unwrap().clone();
    let mut good_calls: BTreeMap<(i32, i64), u32> = BTreeMap::new();
    for (attempt, batch) in &calls {
        assert!(!batch.is_empty() && batch.len() <= 10, "batch of {}", batch.len());
        assert!(batch.iter().all(|(p, _, _)| *p == batch[0].0), "a per-partition batch held two partitions");
        if *attempt > 1 {
            assert!(
                batch.iter().all(|(_, _, v)| v.starts_with("bad")),
                "a retried batch held a record that had not failed: {batch:?}"
            );
        }
        for (p, o, v) in batch {
            if v.starts_with("ok") {
                *good_calls.entry((*p, *o)).or_default() += 1;
            }
        }
    }
    let oks = (0..100).filter(|i| i % 17 != 3 && i % 29 != 4).count();
    assert_eq!(good_calls.len(), oks);
    assert!(good_calls.values().all(|n| *n == 1), "a good record was handed over twice");
    let bads = (0..100).filter(|i| i % 17 == 3).count();
    let retried: usize = calls.iter().filter(|(a, _)| *a == 2).map(|(_, b)| b.len()).sum();
    assert_eq!(retried, bads, "every bad record retried once, and nothing else");
    let dead = read_all(&format!("{t}.DLT"), 1).await;
    assert_eq!(dead.len(), (0..100).filter(|i| i % 29 == 4 && i % 17 != 3).count());
    assert!(dead.iter().all(|d| text(&d.value).starts_with("poison")));
    let stats = control.stats();
    assert_eq!(stats[&t].retried as usize, bads);

    let across_batches = across_batches.lock().unwrap();
    let n: usize = across_batches.iter().map(Vec::len).sum();
    assert_eq!(n, 90, "every record once");
    assert!(across_batches.iter().all(|b| b.len() <= 25));
    let mixed = across_batches.iter().filter(|b| b.iter().map(|(p, _)| p).collect::<BTreeSet<_>>().len() > 1).count();
    assert!(mixed > 0, "a topic-scope batch holds several partitions: {across_batches:?}");
    for p in 0..3 {
        let offs: Vec<i64> = across_batches.iter().flatten().filter(|(q, _)| *q == p).map(|(_, o)| *o).collect();
        assert!(offs.windows(2).all(|w| w[0] < w[1]), "partition {p} out of order across batches");
    }
    eprintln!(
        "{} per-partition batches (at most 10), {bads} failed records retried alone, {} dead-lettered; {} topic-scope batches, {mixed} of several partitions",
        calls.len(),
        dead.len(),
        across_batches.len()
    );
}

#[tokio::test]
async fn several_topics_share_one_membership_or_get_groups_of_their_own() {
    let (a, b, c) = (unique_topic("multi-a"), unique_topic("multi-b"), unique_topic("multi-c"));
    let group = unique_topic("g-multi");
    let other = unique_topic("g-multi-other");
    topics(&[(&a, 2), (&b, 3), (&c, 1)]).await;
    let mut msgs: Vec<_> = (0..30).map(|i| msg(&a, &format!("k{i}"), "a")).collect();
    msgs.extend((0..45).map(|i| msg(&b, &format!("k{i}"), "b")));
    msgs.extend((0..7).map(|i| msg(&c, &format!("k{i}"), "c")));
    produce(msgs).await;
    let mut s = settings(&group);
    s.consumer.topics.insert(c.clone(), TopicSettings { group_id: Some(other.clone()), ..TopicSettings::default() });
    let mut svc = Service::from_settings(s).await.unwrap();
    let wrong: Arc<Mutex<Vec<String>>> = Arc::default();
    for (topic, want) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let w = wrong.clone();
        svc.handle(topic, move |r: Record| {
            let w = w.clone();
            async move {
                if text(&r.value().cloned()) != want {
                    w.lock().unwrap().push(format!("{} got {:?}", want, r.value()));
                }
                Ok(())
            }
        });
    }
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    all_committed(&group, &a, 2).await;
    all_committed(&group, &b, 3).await;
    all_committed(&other, &c, 1).await;
    wait_for("ready", Duration::from_secs(10), || control.health().ready()).await;
    let health = control.health();
    control.shutdown();
    run.await.unwrap().unwrap();
    assert!(wrong.lock().unwrap().is_empty(), "{:?}", wrong.lock().unwrap());
    let groups: BTreeSet<&str> = health.members.iter().map(|m| m.group.as_str()).collect();
    assert_eq!(groups, BTreeSet::from([group.as_str(), other.as_str()]), "one membership per group");
    let main = health.members.iter().find(|m| m.group == group).unwrap();
    assert_eq!(main.partitions, 5, "a and b in one membership");
    assert!(committed(&group).await.keys().all(|tp| tp.topic != c), "c is committed by its own group only");
    let stats = control.stats();
    assert_eq!((stats[&a].handled, stats[&b].handled, stats[&c].handled), (30, 45, 7));
    assert!(stats.values().all(|s| s.lag == 0), "{stats:?}");
}

#[tokio::test]
async fn retries_through_retry_topics_leave_the_partition_going() {
    let t = unique_topic("rt");
    let group = unique_topic("g-rt");
    let (r1, r2, dlt) = (format!("{t}.retry-1"), format!("{t}.retry-2"), format!("{t}.DLT"));
    topics(&[(&t, 1), (&r1, 1), (&r2, 1), (&dlt, 1)]).await;
    // flaky fails twice, then works; hopeless never does; the rest work at once.
    let values = ["ok-0", "flaky-1", "ok-2", "hopeless-3", "ok-4", "ok-5"];
    produce(values.iter().enumerate().map(|(i, v)| msg(&t, &format!("k{i}"), v)).collect()).await;
    type Call = (String, String, u32, Instant, String);
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let mut s = settings(&group);
    s.consumer.retry.mode = RetryMode::Topics;
    s.consumer.retry.max_attempts = 3;
    s.consumer.retry.backoff.min = Duration::from_millis(300);
    s.consumer.retry.backoff.max = Duration::from_millis(600);
    s.consumer.retry.backoff.jitter = 0.0;
    let mut svc = Service::from_settings(s).await.unwrap();
    let c = calls.clone();
    svc.handle(&t, move |r: Record| {
        let c = c.clone();
        async move {
            let v = text(&r.value().cloned());
            c.lock().unwrap().push((
                v.clone(),
                r.topic().to_string(),
                r.attempt(),
                Instant::now(),
                r.origin().topic.to_string(),
            ));
            if v.starts_with("hopeless") || (v.starts_with("flaky") && r.attempt() < 3) {
                return Err(Failure::retry("later"));
            }
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    all_committed(&group, &t, 1).await;
    wait_for("flaky handled and hopeless dead-lettered", Duration::from_secs(30), || {
        let s = control.stats();
        s.get(&t).is_some_and(|s| s.handled == 5 && s.dead_lettered == 1)
    })
    .await;
    all_committed(&group, &r1, 1).await;
    all_committed(&group, &r2, 1).await;
    control.shutdown();
    run.await.unwrap().unwrap();

    let calls = calls.lock().unwrap().clone();
    let of = |v: &str| calls.iter().filter(|c| c.0 == v).cloned().collect::<Vec<_>>();
    let flaky = of("flaky-1");
    assert_eq!(
        flaky.iter().map(|c| (c.1.as_str(), c.2)).collect::<Vec<_>>(),
        vec![(t.as_str(), 1), (r1.as_str(), 2), (r2.as_str(), 3)]
    );
    assert!(flaky.iter().all(|c| c.4 == t), "origin is the first topic");
    let gap1 = flaky[1].3 - flaky[0].3;
    let gap2 = flaky[2].3 - flaky[1].3;
    assert!(gap1 >= Duration::from_millis(300) && gap2 >= Duration::from_millis(600), "backoffs {gap1:?} {gap2:?}");
    // Non-blocking: the records after flaky on the partition ran before its first retry.
    let ok5 = of("ok-5")[0].3;
    assert!(ok5 < flaky[1].3, "the partition went on while flaky waited in its retry topic");
    let dead = read_all(&dlt, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(text(&dead[0].value), "hopeless-3");
    assert_eq!(header_text(&dead[0], DLT_ORIGINAL_TOPIC), Some(t.clone()));
    assert_eq!(header_text(&dead[0], DLT_ORIGINAL_OFFSET), Some("3".into()));
    assert_eq!(header_text(&dead[0], DLT_ATTEMPTS), Some("3".into()));
    assert!(dead[0].headers.iter().all(|h| !h.key.starts_with("kafkit.retry.")));
    eprintln!("retry topics: flaky handled on its 3rd call after {gap1:?} and {gap2:?}; the partition did not wait");
}

#[tokio::test]
async fn an_in_place_retry_holds_its_partition_until_its_last_attempt() {
    let t = unique_topic("retry-holds");
    let group = unique_topic("g-retry-holds");
    topics(&[(&t, 1)]).await;
    // Offset 1 fails twice and succeeds on its third attempt; the others succeed at once.
    let values = ["ok", "flaky", "ok", "ok", "ok", "ok"];
    produce(values.iter().enumerate().map(|(i, v)| msg(&t, &format!("k{i}"), v)).collect()).await;
    type Calls = Arc<Mutex<Vec<(i64, u32, Instant, Instant)>>>;
    let calls: Calls = Arc::default();
    let mut s = settings(&group);
    s.consumer.retry.max_attempts = 3;
    s.consumer.retry.backoff.min = Duration::from_millis(200);
    s.consumer.retry.backoff.max = Duration::from_millis(200);
    let mut svc = Service::from_settings(s).await.unwrap();
    let c = calls.clone();
    svc.handle(&t, move |r: Record| {
        let c = c.clone();
        async move {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
            let fail = text(&r.value().cloned()) == "flaky" && r.attempt() < 3;
            c.lock().unwrap().push((r.offset(), r.attempt(), start, Instant::now()));
            if fail {
                return Err(Failure::retry("not yet"));
            }
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    all_committed(&group, &t, 1).await;
    control.shutdown();
    run.await.unwrap().unwrap();

    let calls = calls.lock().unwrap().clone();
    let of = |o: i64| calls.iter().filter(|c| c.0 == o).cloned().collect::<Vec<_>>();
    let retried = of(1);
    assert_eq!(retried.iter().map(|c| c.1).collect::<Vec<_>>(), vec![1, 2, 3], "three attempts: {calls:?}");
    let last_end = retried[2].3;
    for o in 2..values.len() as i64 {
        let later = of(o);
        assert_eq!(later.len(), 1, "offset {o} handled once: {calls:?}");
        assert!(
            later[0].2 >= last_end,
            "offset {o} started {:?} before offset 1's last attempt ended",
            last_end.duration_since(later[0].2)
        );
    }
    let waited = retried[2].2.duration_since(retried[0].3);
    eprintln!(
        "in-place retry: offset 1's three attempts spanned {waited:?} of backoff; offsets 2..5 started only after its last"
    );
}

#[tokio::test]
async fn a_partial_batch_waits_for_batch_max_wait() {
    let t = unique_topic("batch-wait");
    let group = unique_topic("g-batch-wait");
    topics(&[(&t, 1)]).await;
    let max_wait = Duration::from_secs(1);
    let mut s = settings(&group);
    s.consumer.batch.max_records = 100;
    s.consumer.batch.max_wait = max_wait;
    type Calls = Arc<Mutex<Vec<(std::time::SystemTime, Vec<(i64, std::time::SystemTime)>)>>>;
    let calls: Calls = Arc::default();
    let mut svc = Service::from_settings(s).await.unwrap();
    let c = calls.clone();
    svc.handle_batch(&t, move |b: Batch| {
        let c = c.clone();
        async move {
            let now = std::time::SystemTime::now();
            let recs = b.records().iter().map(|r| (r.offset(), r.time().unwrap())).collect();
            c.lock().unwrap().push((now, recs));
            Ok(())
        }
    });
    let control = svc.control();
    let run = tokio::spawn(svc.run());
    // Produced only once the member has its partition: the records are new when fetched.
    wait_for("ready", Duration::from_secs(30), || control.health().ready()).await;
    produce((0..3).map(|i| msg(&t, &format!("k{i}"), "x")).collect()).await;
    wait_for("the batch handled", Duration::from_secs(30), || {
        calls.lock().unwrap().iter().map(|(_, r)| r.len()).sum::<usize>() == 3
    })
    .await;
    control.shutdown();
    run.await.unwrap().unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the three records in one partial batch: {calls:?}");
    let (called, recs) = &calls[0];
    assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    // A record's timestamp (its producer's clock, this machine) is before it was fetched,
    // and the batch waits max_wait from the first record's fetch.
    let first = recs.iter().map(|r| r.1).min().unwrap();
    let waited = called.duration_since(first).unwrap_or_default();
    assert!(waited >= max_wait, "a partial batch of 3 (max 100) went after {waited:?}, before max_wait {max_wait:?}");
    eprintln!(
        "a partial batch of 3 records went {waited:?} after its first record was written (max_wait {max_wait:?})"
    );
}

/// A queued output that fails (the broker refuses it: larger than the topic's
/// `max.message.bytes`) was told to no one: the service commits nothing more and stops. One
/// that fails while its handler awaits it (`send`) is the handler's to handle, and the
/// commits go on past it.
#[cfg(feature = "serde")]
#[tokio::test]
async fn a_queued_output_that_fails_stops_the_commits() {
    let t = unique_topic("outputs");
    let out = unique_topic("outputs-small");
    let group = unique_topic("g-outputs");
    topics(&[(&t, 1)]).await;
    create_topics(&kafka().addr(), &[kafkit::TopicConfig::new(&out, 1).with_config("max.message.bytes", "200")]).await;
    let values = ["ok", "sent-big", "ok", "queued-big", "ok", "ok"];
    produce(values.iter().enumerate().map(|(i, v)| msg(&t, &format!("k{i}"), v)).collect()).await;
    let sent_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut svc = Service::from_settings(settings(&group)).await.unwrap();
    let producer = svc.producer();
    let (g, o, se) = (group.clone(), out.clone(), sent_error.clone());
    let tp = TopicPartition::new(&t, 0);
    let tp2 = tp.clone();
    svc.handle(&t, move |r: Record| {
        let (producer, g, o, se, tp) = (producer.clone(), g.clone(), o.clone(), se.clone(), tp2.clone());
        async move {
            let big = vec![b'x'; 2000];
            match text(&r.value().cloned()).as_str() {
                "sent-big" => {
                    let e = producer.send(&o, "k", big).await.expect_err("the broker refuses it");
                    *se.lock().unwrap() = Some(e.to_string()); // handled: the record is done
                }
                "queued-big" => {
                    // Once what came before is committed, so the commit that must not come is
                    // the only one left.
                    wait_for_async("offsets 0..2 committed", Duration::from_secs(30), || async {
                        committed(&g).await.get(&tp) == Some(&3)
                    })
                    .await;
                    let m = kafkit::Message::new(Some(bytes::Bytes::from("k")), Some(bytes::Bytes::from(big)));
                    drop(producer.queue(m.with_topic(o.as_str())).await.unwrap());
                }
                _ => {}
            }
            Ok(())
        }
    });
    let run = tokio::spawn(svc.run());
    let r = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the service stops").unwrap();
    assert!(matches!(r, Err(kafkit_service::Error::OutputLost(_))), "{r:?}");
    assert!(sent_error.lock().unwrap().is_some(), "the awaited send was told its failure");
    let c = committed(&group).await;
    assert_eq!(c.get(&tp), Some(&3), "committed past the awaited failure, never past the queued one: {c:?}");
    eprintln!("a queued output refused by the broker stopped the service ({r:?}); committed offset 3 of 6");
}
