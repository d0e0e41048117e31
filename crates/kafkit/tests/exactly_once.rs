//! The consume-transform-produce example (`examples/exactly_once.rs`) on Apache Kafka 4.4:
//! three processors in one group copy 20,000 records; a second and a third join part-way (a
//! rebalance each: the open transactions are aborted, reading starts again at the committed
//! offsets), and one is killed mid-transaction (its task dropped) and restarted with the same
//! transactional id, which fences it and aborts its open transaction. Under read_committed
//! every input record appears exactly once in the output, transformed.

mod common;

#[allow(dead_code)]
#[path = "../examples/exactly_once.rs"]
mod example;

use bytes::Bytes;
use common::unique_topic;
use kafkit::{
    IsolationLevel, Message, Reader, ReaderConfig, StartOffset, TopicConfig, TopicPartition, Writer, WriterConfig,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RECORDS: usize = 20_000;

async fn wait_for(out: &Arc<Mutex<Vec<String>>>, n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "{what}: {} of {n} output records", out.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processors_copy_every_record_exactly_once_through_rebalances_and_a_crash() {
    let kafka = common::kafka();
    let addr = kafka.addr();
    let (input, output, group) = (unique_topic("eos-in"), unique_topic("eos-out"), unique_topic("eos-group"));
    common::create_topics(&addr, &[TopicConfig::new(&input, 3), TopicConfig::new(&output, 3)]).await;
    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&input)).await.unwrap();
    let msgs: Vec<Message> =
        (0..RECORDS).map(|i| Message::new(None, Some(Bytes::from(format!("record-{i}"))))).collect();
    w.write_messages(msgs).await.expect("input written");

    // The output, under read_committed, as it lands.
    let out = Arc::new(Mutex::new(Vec::new()));
    let parts = (0..3).map(|p| TopicPartition::new(&output, p));
    let mut r = Reader::new(
        &[&addr],
        ReaderConfig::assign(parts)
            .with_isolation(IsolationLevel::ReadCommitted)
            .with_start(StartOffset::First)
            .with_max_wait(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let sink = out.clone();
    let reading = tokio::spawn(async move {
        loop {
            let m = r.read_message().await.expect("read output");
            sink.lock().unwrap().push(String::from_utf8(m.value.unwrap().to_vec()).unwrap());
        }
    });

    let pipeline = |instance: &str| example::Pipeline {
        brokers: vec![addr.clone()],
        input: input.clone(),
        output: output.clone(),
        group: group.clone(),
        transactional_id: format!("{group}-{instance}"),
        idle: Duration::from_secs(15),
    };
    let a = tokio::spawn(example::run(pipeline("a")));
    wait_for(&out, 2_000, "processor a alone").await;
    let b = tokio::spawn(example::run(pipeline("b")));
    wait_for(&out, 6_000, "a and b").await;
    // Killed: its transaction is left open, its member left to time out.
    a.abort();
    let _ = a.await;
    let a2 = tokio::spawn(example::run(pipeline("a")));
    let c = tokio::spawn(example::run(pipeline("c")));
    wait_for(&out, RECORDS, "after the crash").await;
    // Nothing more comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    reading.abort();
    let got = out.lock().unwrap().clone();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in &got {
        *counts.entry(v.clone()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "records copied twice: {dups:?}");
    for i in 0..RECORDS {
        assert_eq!(counts.get(&format!("RECORD-{i}")), Some(&1), "RECORD-{i}");
    }
    assert_eq!(got.len(), RECORDS);
    let (mut committed, mut aborted) = (0, 0);
    for t in [b, a2, c] {
        let s = t.await.unwrap().expect("a processor failed");
        committed += s.committed;
        aborted += s.aborted;
    }
    eprintln!("b, a2 and c committed {committed} records; {aborted} transactions aborted");
    assert!(committed <= RECORDS as u64);
}
