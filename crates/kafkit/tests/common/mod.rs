//! A real broker for integration tests: the pinned Tansu build from `scripts/broker.sh`,
//! started on a free loopback port for one test and killed when the guard drops, or the
//! cluster named by `KAFKA_BROKERS` when that is set.
#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct TestBroker {
    pub addr: String,
    child: Option<Child>,
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The broker binary, installed by the project's script when missing.
fn tansu() -> String {
    let out = Command::new(repo_root().join("scripts/broker.sh"))
        .arg("path")
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/broker.sh runs");
    assert!(out.status.success(), "scripts/broker.sh path failed");
    String::from_utf8(out.stdout).expect("utf-8 path").trim().to_string()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl TestBroker {
    pub fn start() -> TestBroker {
        if let Ok(b) = std::env::var("KAFKA_BROKERS") {
            let first = b.split(',').next().unwrap_or_default().to_string();
            return TestBroker { addr: first, child: None };
        }
        TestBroker::start_on(free_port())
    }

    /// A broker on this port (a restart of one that was killed).
    pub fn start_on(port: u16) -> TestBroker {
        TestBroker::start_advertising(port, port)
    }

    /// A broker listening on `port` that tells clients to connect to `advertised` (a proxy
    /// in front of it).
    pub fn start_advertising(port: u16, advertised: u16) -> TestBroker {
        TestBroker::start_advertised_as(port, &format!("127.0.0.1:{advertised}"))
    }

    /// A broker listening on `port` that tells clients to connect to `advertised`
    /// (`host:port`, such as a TLS terminator's `localhost:PORT`).
    pub fn start_advertised_as(port: u16, advertised: &str) -> TestBroker {
        let url = format!("tcp://127.0.0.1:{port}");
        let adv = format!("tcp://{advertised}");
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &adv, "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        TestBroker { addr, child: Some(child) }
    }

    /// Kills the broker now (a test of a broker going away).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A topic name no other test (or run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An acks=all ProduceRequest carrying `records` as one batch to `topic`/`partition`.
pub fn produce_request(
    topic: &str,
    partition: i32,
    records: Vec<kafkit::protocol::record::Record>,
) -> kafkit::protocol::messages::ProduceRequest {
    use kafkit::protocol::messages::{produce_request, ProduceRequest};
    let mut batch = kafkit::protocol::record::RecordBatch::new(1_700_000_000_000);
    batch.records = records.into_iter().enumerate().map(|(i, r)| r.with_offset_delta(i as i32)).collect();
    let mut buf = bytes::BytesMut::new();
    batch.encode(&mut buf).expect("encode a test batch");
    ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(topic.into()).with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_index(partition).with_records(Some(buf.freeze())),
        ]),
    ])
}
