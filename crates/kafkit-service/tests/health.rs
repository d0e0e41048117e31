//! Liveness on Apache Kafka 4.4 behind a proxy that a test can silence: a member whose
//! broker goes silent keeps its loop turning, but its fetching makes no progress, and it
//! turns not live after `health.fetch_stall`; it is live again once the broker answers.

mod common;

use common::*;
use kafkit::TopicConfig;
use kafkit_service::{Record, Service, Settings};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The proxy runs a runtime of its own, so this test starts and drops it outside of one.
#[test]
fn a_member_whose_broker_goes_silent_is_not_live_after_fetch_stall() {
    let k = Cluster::start(ClusterOptions::default().proxied());
    let (real, advertised) = k.proxied(1);
    let proxy = Proxy::start(&advertised, &real);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = unique_topic("silent");
        let group = unique_topic("g-silent");
        create_topics(&k.addr(), &[TopicConfig::new(&t, 2)]).await;
        let fetch_stall = Duration::from_secs(2);
        let mut s = Settings { brokers: vec![advertised.clone()], ..Settings::default() };
        s.reader.group_id = Some(group.clone());
        // A session long enough that the silence does not end the membership meanwhile
        // (then nothing would be assigned, and nothing to fetch).
        s.reader.session_timeout = Duration::from_secs(45);
        s.reader.heartbeat_interval = Duration::from_secs(1);
        s.reader.rebalance_timeout = Duration::from_secs(30);
        s.reader.max_wait = Duration::from_millis(100);
        s.consumer.commit_interval = Duration::from_millis(200);
        s.health.fetch_stall = fetch_stall;
        s.health.ping_interval = Duration::from_secs(60);
        s.shutdown.signals = false;
        s.shutdown.timeout = Duration::from_secs(5);
        let handled = Arc::new(AtomicUsize::new(0));
        let mut svc = Service::from_settings(s).await.unwrap();
        let h = handled.clone();
        svc.handle(&t, move |_: Record| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let control = svc.control();
        let run = tokio::spawn(svc.run());
        wait_for("ready", Duration::from_secs(60), || control.health().ready()).await;
        let w = kafkit::Writer::new(&[&k.addr()], kafkit::WriterConfig::default()).await.unwrap();
        w.write_messages(vec![msg(&t, "a", "x")]).await.unwrap();
        wait_for("the record handled", Duration::from_secs(30), || handled.load(Ordering::SeqCst) == 1).await;
        // Idle but fetching (each fetch waits reader.max_wait, 100 ms): live, for longer
        // than fetch_stall.
        let idle = Instant::now();
        while idle.elapsed() < fetch_stall * 2 {
            let h = control.health();
            assert!(h.live(), "idle and fetching: {h:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The stall counts from the last fetch progress, which came up to `age` before
        // `silent`: so liveness may end as early as `fetch_stall - age` after it.
        let silent = Instant::now();
        let m = control.health().members[0].clone();
        assert!(m.fetch_age.is_some_and(|a| a < fetch_stall), "{m:?}");
        let age = m.fetch_age.unwrap_or_default();

        proxy.set_mode(ProxyMode::Blackhole);
        wait_for("not live", Duration::from_secs(30), || !control.health().live()).await;
        let took = silent.elapsed();
        let h = control.health();
        let m = &h.members[0];
        assert!(m.fetch_age.is_some_and(|a| a > fetch_stall), "the fetch age says why: {h:?}");
        assert!(m.loop_age <= h.loop_stall, "the loop still turns: {h:?}");
        assert!(m.partitions == 2 && m.longest_call.is_none(), "{h:?}");
        assert!(took + age >= fetch_stall, "not before fetch_stall: {took:?} after a fetch age of {age:?}");

        proxy.set_mode(ProxyMode::Forward);
        let back = Instant::now();
        wait_for("live again", Duration::from_secs(60), || control.health().live()).await;
        let again = back.elapsed();
        w.write_messages(vec![msg(&t, "b", "y")]).await.unwrap();
        wait_for("fetching again", Duration::from_secs(60), || handled.load(Ordering::SeqCst) == 2).await;
        control.shutdown();
        run.await.unwrap().unwrap();
        eprintln!(
            "silent broker: not live {took:?} after the proxy went silent (fetch_stall {fetch_stall:?}, fetch age {:?}, loop age {:?}); live again {again:?} after it forwarded",
            m.fetch_age, m.loop_age
        );
    });
    drop(rt);
    drop(proxy);
}
