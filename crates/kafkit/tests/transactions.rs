//! The transactional Writer (KIP-98, KIP-447, KIP-890) against Apache Kafka: transactions v2
//! on the shared Kafka 4.4 node, v1 on a dedicated Kafka 3.9.2 node. Committed records are
//! read under read_committed; aborted ones stay invisible to it (and visible under
//! read_uncommitted); a newer writer with the same transactional id fences the older one; a
//! processor of an older group generation cannot commit offsets; offsets sent to a
//! transaction are committed for the group only when it commits; the broker aborts a
//! transaction left open past its transaction timeout.

mod common;

use bytes::Bytes;
use common::unique_topic;
use kafkit::admin::Client;
use kafkit::{
    ClusterConfig, Error, GroupMetadata, IsolationLevel, Message, Reader, ReaderConfig, StartOffset, TopicConfig,
    TopicPartition, Writer, WriterConfig,
};
use std::time::{Duration, Instant};

fn msg(v: &str) -> Message {
    Message::new(None, Some(Bytes::from(v.to_string())))
}

fn value(m: &Message) -> String {
    String::from_utf8(m.value.as_deref().expect("a value").to_vec()).expect("utf-8")
}

fn txn_writer_config(topic: &str, id: &str) -> WriterConfig {
    WriterConfig::default().with_topic(topic).with_transactional_id(id)
}

/// Reads `n` messages of `topic`/0 with `isolation`, each within 30 s, then checks that no
/// other one comes within 500 ms.
async fn read_all(addr: &str, topic: &str, isolation: IsolationLevel, n: usize) -> Vec<String> {
    let mut r = Reader::new(
        &[addr],
        ReaderConfig::new(topic, 0)
            .with_isolation(isolation)
            .with_start(StartOffset::First)
            .with_max_wait(Duration::from_millis(100)),
    )
    .await
    .expect("reader");
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), r.read_message()).await {
            Ok(m) => got.push(value(&m.expect("read"))),
            Err(_) => panic!("{isolation:?}: {} of {n} messages arrived: {got:?}", got.len()),
        }
    }
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(500), r.read_message()).await {
        panic!("{isolation:?}: one more message than the {n} expected: {m:?}");
    }
    got
}

async fn write_txn(w: &Writer, values: &[String]) {
    for v in values {
        // The futures resolve by the commit's flush.
        let _ = w.write(msg(v)).await.expect("write");
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// A committed transaction is read under read_committed, an aborted one is not (but is under
/// read_uncommitted); an empty transaction commits without a request; calls out of order
/// fail with a state error.
async fn commit_and_abort(addr: &str, expect_v2: bool) {
    let topic = unique_topic("txn");
    common::create_topics(addr, &[TopicConfig::new(&topic, 1)]).await;
    let w = Writer::new(&[addr], txn_writer_config(&topic, &unique_topic("txn-id"))).await.expect("writer");
    // Nothing before init_transactions.
    assert!(matches!(w.begin_transaction().await, Err(Error::TransactionState(_))));
    assert!(matches!(w.write(msg("x")).await, Err(Error::TransactionState(_))));
    w.init_transactions().await.expect("init_transactions");
    assert_eq!(w.transactions_v2(), expect_v2);
    assert!(matches!(w.commit_transaction().await, Err(Error::TransactionState(_))));
    assert!(matches!(w.write(msg("x")).await, Err(Error::TransactionState(_))));

    // Empty: commits at once.
    w.begin_transaction().await.unwrap();
    w.commit_transaction().await.expect("empty commit");

    let (a, b, c) = (values("aborted", 30), values("committed", 20), values("again", 5));
    w.begin_transaction().await.unwrap();
    assert!(matches!(w.begin_transaction().await, Err(Error::TransactionState(_))));
    write_txn(&w, &a).await;
    w.flush().await.unwrap();
    w.abort_transaction().await.expect("abort");
    w.begin_transaction().await.unwrap();
    write_txn(&w, &b).await;
    w.commit_transaction().await.expect("commit");
    // Several transactions in a row (epoch bumps with v2).
    w.begin_transaction().await.unwrap();
    write_txn(&w, &c).await;
    w.commit_transaction().await.expect("second commit");

    let mut committed = b.clone();
    committed.extend(c.iter().cloned());
    assert_eq!(read_all(addr, &topic, IsolationLevel::ReadCommitted, committed.len()).await, committed);
    let mut everything = a.clone();
    everything.extend(committed);
    assert_eq!(read_all(addr, &topic, IsolationLevel::ReadUncommitted, everything.len()).await, everything);
}

#[tokio::test]
async fn v2_commit_is_read_committed_and_abort_is_not() {
    let kafka = common::kafka();
    commit_and_abort(&kafka.addr(), true).await;
}

/// Transactions back to back, each begun the moment the one before it committed: with
/// transactions v2 every EndTxn gives a new epoch, and each transaction's batches must carry
/// its own. The writer's task once read the epoch before looking for new batches, so a task
/// preempted in between sent a transaction's first batches with the previous epoch: the
/// broker answered INVALID_PRODUCER_EPOCH and the Writer reported itself fenced (seen in CI
/// in `kafkit perf produce --transactional-id`; about once in 2,000 transactions on 2 busy
/// cores). Runs on two worker threads, so the task and the transactions run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_transactions_each_carry_their_own_epoch() {
    let addr = common::kafka().addr();
    let topic = unique_topic("txn-b2b");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    let w =
        Writer::new(&[addr.as_str()], txn_writer_config(&topic, &unique_topic("txn-b2b-id"))).await.expect("writer");
    w.init_transactions().await.expect("init_transactions");
    let first = w.producer_id_and_epoch().expect("a producer id");
    let mut all = Vec::new();
    for t in 0..400 {
        let vs = values(&format!("t{t}"), 5);
        w.begin_transaction().await.unwrap();
        write_txn(&w, &vs).await;
        if let Err(e) = w.commit_transaction().await {
            panic!("transaction {t}: {e}");
        }
        all.extend(vs);
    }
    // One producer id, and with v2 one epoch more per commit.
    let last = w.producer_id_and_epoch().expect("a producer id");
    assert_eq!(last.0, first.0);
    if w.transactions_v2() {
        assert_eq!(last.1, first.1 + 400, "{first:?} -> {last:?}");
    }
    w.close().await.expect("close");
    assert_eq!(read_all(&addr, &topic, IsolationLevel::ReadCommitted, all.len()).await, all);
}

/// A second writer with the same transactional id fences the first: the first's commit and
/// every later call fail with ProducerFenced, its open transaction is aborted, and the new
/// writer's transactions go through.
#[tokio::test]
async fn a_newer_writer_fences_the_zombie() {
    let kafka = common::kafka();
    let addr = kafka.addr();
    let topic = unique_topic("txn-fence");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    let id = unique_topic("txn-fence-id");
    let zombie = Writer::new(&[&addr], txn_writer_config(&topic, &id)).await.unwrap();
    zombie.init_transactions().await.unwrap();
    zombie.begin_transaction().await.unwrap();
    write_txn(&zombie, &values("zombie", 10)).await;
    zombie.flush().await.unwrap();

    let fresh = Writer::new(&[&addr], txn_writer_config(&topic, &id)).await.unwrap();
    fresh.init_transactions().await.expect("the new writer initializes");
    let e = zombie.commit_transaction().await.expect_err("the zombie must not commit");
    assert!(matches!(e, Error::ProducerFenced(_)), "{e:?}");
    assert!(e.is_fatal());
    assert!(matches!(zombie.write(msg("late")).await, Err(Error::ProducerFenced(_))));
    assert!(matches!(zombie.begin_transaction().await, Err(Error::ProducerFenced(_))));
    assert!(matches!(zombie.abort_transaction().await, Err(Error::ProducerFenced(_))));

    fresh.begin_transaction().await.unwrap();
    write_txn(&fresh, &values("fresh", 3)).await;
    fresh.commit_transaction().await.unwrap();
    assert_eq!(read_all(&addr, &topic, IsolationLevel::ReadCommitted, 3).await, values("fresh", 3));
}

/// A zombie that keeps writing after it was fenced: its Produce fails (INVALID_PRODUCER_EPOCH
/// or PRODUCER_FENCED), so its commit can never report success.
#[tokio::test]
async fn a_fenced_writer_cannot_commit_later_writes() {
    let kafka = common::kafka();
    let addr = kafka.addr();
    let topic = unique_topic("txn-fence2");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    let id = unique_topic("txn-fence2-id");
    let zombie = Writer::new(&[&addr], txn_writer_config(&topic, &id)).await.unwrap();
    zombie.init_transactions().await.unwrap();
    zombie.begin_transaction().await.unwrap();
    let fresh = Writer::new(&[&addr], txn_writer_config(&topic, &id)).await.unwrap();
    fresh.init_transactions().await.unwrap();
    let f = zombie.write(msg("zombie")).await.expect("queued");
    assert!(f.await.is_err(), "a fenced producer's record must fail");
    let e = zombie.commit_transaction().await.expect_err("no commit");
    assert!(e.is_fatal() || matches!(e, Error::TransactionAbortable(_)), "{e:?}");
    assert_eq!(read_all(&addr, &topic, IsolationLevel::ReadUncommitted, 0).await, Vec::<String>::new());
}

/// Offsets sent to a transaction are the group's only once it commits (KIP-447).
async fn offsets_only_on_commit(addr: &str) {
    let topic = unique_topic("txn-off");
    let input = unique_topic("txn-off-in");
    common::create_topics(addr, &[TopicConfig::new(&topic, 1), TopicConfig::new(&input, 2)]).await;
    let group = unique_topic("txn-off-group");
    let admin = Client::new(&[addr], ClusterConfig::default()).await.unwrap();
    let w = Writer::new(&[addr], txn_writer_config(&topic, &unique_topic("txn-off-id"))).await.unwrap();
    w.init_transactions().await.unwrap();
    let meta = GroupMetadata::new(&group, -1, "");
    let tp0 = TopicPartition::new(&input, 0);
    let tp1 = TopicPartition::new(&input, 1);

    w.begin_transaction().await.unwrap();
    write_txn(&w, &values("out-aborted", 2)).await;
    w.send_offsets_to_transaction(&[(tp0.clone(), 5), (tp1.clone(), 6)], &meta).await.expect("send offsets");
    w.abort_transaction().await.unwrap();
    let got = admin.fetch_offsets(&group, None).await.unwrap();
    assert!(got.is_empty(), "an aborted transaction committed offsets: {got:?}");

    w.begin_transaction().await.unwrap();
    write_txn(&w, &values("out", 2)).await;
    w.send_offsets_to_transaction(&[(tp0.clone(), 7)], &meta).await.unwrap();
    w.commit_transaction().await.unwrap();
    // The offset commit lands with the markers: wait for it (up to 10 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = admin.fetch_offsets(&group, None).await.unwrap();
        if !got.is_empty() {
            assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![(tp0.clone(), 7)]);
            break;
        }
        assert!(Instant::now() < deadline, "the committed transaction's offsets never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_all(addr, &topic, IsolationLevel::ReadCommitted, 2).await, values("out", 2));
}

#[tokio::test]
async fn v2_offsets_are_committed_only_with_the_transaction() {
    let kafka = common::kafka();
    offsets_only_on_commit(&kafka.addr()).await;
}

fn group_member(addr: &str, group: &str, topic: &str) -> impl std::future::Future<Output = kafkit::Result<Reader>> {
    let config = ReaderConfig::group(group, [topic.to_string()])
        .with_session_timeout(Duration::from_secs(10))
        .with_heartbeat_interval(Duration::from_millis(500));
    let addr = addr.to_string();
    async move { Reader::new(&[&addr], config).await }
}

/// Waits (up to 60 s) until every reader is in generation `after` + 1 or later, all in the
/// same one, each with partitions.
async fn same_generation(readers: &[&Reader], after: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let gens: Vec<i32> = readers.iter().map(|r| r.generation()).collect();
        if gens[0] > after && gens.iter().all(|g| *g == gens[0]) && readers.iter().all(|r| !r.assignment().is_empty()) {
            return gens[0];
        }
        assert!(Instant::now() < deadline, "generations {gens:?} (waiting for one past {after})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A zombie processor (KIP-447): a consume-transform-produce member whose group rebalanced
/// sends its offsets with the generation it read in; the group coordinator refuses them
/// (ILLEGAL_GENERATION), the transaction can only be aborted, and nothing of it (offsets or
/// output) becomes visible. With the current generation the same writer's next transaction
/// commits.
#[tokio::test]
async fn a_zombie_processor_of_an_older_generation_cannot_commit_offsets() {
    let kafka = common::kafka();
    zombie_generation(&kafka.addr()).await;
}

async fn zombie_generation(addr: &str) {
    let addr = addr.to_string();
    let (input, output) = (unique_topic("txn-gen-in"), unique_topic("txn-gen-out"));
    common::create_topics(&addr, &[TopicConfig::new(&input, 2), TopicConfig::new(&output, 1)]).await;
    let group = unique_topic("txn-gen-group");
    let first = group_member(&addr, &group, &input).await.unwrap();
    let old_generation = same_generation(&[&first], 0).await;
    let old = GroupMetadata::new(&group, old_generation, first.member_id());
    // A second member joins: a new generation, partitions moved.
    let second = group_member(&addr, &group, &input).await.unwrap();
    let generation = same_generation(&[&first, &second], old_generation).await;
    assert!(generation > old_generation);

    let w = Writer::new(&[&addr], txn_writer_config(&output, &unique_topic("txn-gen-id"))).await.unwrap();
    w.init_transactions().await.unwrap();
    let tp = TopicPartition::new(&input, 0);
    w.begin_transaction().await.unwrap();
    write_txn(&w, &values("zombie", 2)).await;
    let e = w.send_offsets_to_transaction(&[(tp.clone(), 9)], &old).await.expect_err("a zombie's offsets");
    assert!(matches!(e, Error::TransactionAbortable(_)), "{e:?}");
    assert!(e.to_string().to_ascii_uppercase().contains("GENERATION"), "{e}");
    assert!(matches!(w.commit_transaction().await, Err(Error::TransactionAbortable(_))));
    w.abort_transaction().await.expect("abort the zombie's transaction");

    let current = GroupMetadata::new(&group, first.generation(), first.member_id());
    assert_eq!(current.generation_id, generation);
    w.begin_transaction().await.unwrap();
    write_txn(&w, &values("current", 1)).await;
    w.send_offsets_to_transaction(&[(tp.clone(), 3)], &current).await.expect("the current member's offsets");
    w.commit_transaction().await.unwrap();
    let admin = Client::new(&[&addr], ClusterConfig::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = admin.fetch_offsets(&group, None).await.unwrap();
        if !got.is_empty() {
            assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![(tp.clone(), 3)]);
            break;
        }
        assert!(Instant::now() < deadline, "the committed transaction's offsets never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_all(&addr, &output, IsolationLevel::ReadCommitted, 1).await, values("current", 1));
    second.close().await.unwrap();
    first.close().await.unwrap();
}

/// With a 2 s transaction timeout, a transaction left open is aborted by the coordinator
/// (which checks every `transaction.abort.timed.out.transaction.cleanup.interval.ms`, 10 s by
/// default); the writer's commit then fails, and nothing of it is read under read_committed.
#[tokio::test]
async fn the_broker_aborts_a_transaction_past_its_timeout() {
    let kafka = common::kafka();
    let addr = kafka.addr();
    let topic = unique_topic("txn-timeout");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    let id = unique_topic("txn-timeout-id");
    let w = Writer::new(&[&addr], txn_writer_config(&topic, &id).with_transaction_timeout(Duration::from_secs(2)))
        .await
        .unwrap();
    w.init_transactions().await.unwrap();
    w.begin_transaction().await.unwrap();
    write_txn(&w, &values("late", 3)).await;
    w.flush().await.unwrap();
    let admin = Client::new(&[&addr], ClusterConfig::default()).await.unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    loop {
        let d = admin.describe_transactions(&[&id]).await.unwrap();
        let state = d[&id].as_ref().expect("described").state.clone();
        if state != "Ongoing" {
            assert!(state.contains("Abort"), "the coordinator ended the transaction as {state}");
            break;
        }
        assert!(Instant::now() < deadline, "the coordinator never aborted the timed-out transaction");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(1500), "aborted before its timeout");
    let e = w.commit_transaction().await.expect_err("a timed-out transaction must not commit");
    assert!(matches!(e, Error::ProducerFenced(_) | Error::TransactionAbortable(_) | Error::Fatal(_)), "{e:?}");
    assert_eq!(read_all(&addr, &topic, IsolationLevel::ReadCommitted, 0).await, Vec::<String>::new());
}

/// Transactions v1 on Kafka 3.9.2: AddPartitionsToTxn and AddOffsetsToTxn, Produce up to
/// v11, the epoch kept across transactions; a zombie processor's offsets refused.
#[tokio::test]
async fn v1_on_kafka_3_9() {
    let cluster = common::Cluster::start(common::ClusterOptions::default().version("3.9.2"));
    let addr = cluster.addr();
    commit_and_abort(&addr, false).await;
    offsets_only_on_commit(&addr).await;
    zombie_generation(&addr).await;
}

/// Throughput at 1 and 10,000 records per transaction (run by hand: `cargo test -p kafkit
/// --test transactions throughput -- --ignored --nocapture`); asserts only that every
/// transaction committed.
#[tokio::test]
#[ignore]
async fn throughput() {
    let kafka = common::kafka();
    let addr = kafka.addr();
    for (per_txn, total) in [(1usize, 500usize), (10_000, 100_000)] {
        let topic = unique_topic("txn-perf");
        common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
        let w = Writer::new(&[&addr], txn_writer_config(&topic, &unique_topic("txn-perf-id")).with_batch_size(1_000))
            .await
            .unwrap();
        w.init_transactions().await.unwrap();
        let value = Bytes::from(vec![b'v'; 100]);
        let started = Instant::now();
        let mut flushing = Duration::ZERO;
        for _ in 0..total / per_txn {
            w.begin_transaction().await.unwrap();
            for _ in 0..per_txn {
                let _ = w.write(Message::new(None, Some(value.clone()))).await.unwrap();
            }
            let t = Instant::now();
            w.flush().await.unwrap();
            flushing += t.elapsed();
            w.commit_transaction().await.unwrap();
        }
        println!("flushes took {flushing:?}");
        let s = started.elapsed().as_secs_f64();
        println!(
            "{per_txn} records per transaction: {total} records in {s:.2} s, {:.0} records/s, {:.1} ms per transaction",
            total as f64 / s,
            s * 1000.0 / (total / per_txn) as f64
        );
    }
}
