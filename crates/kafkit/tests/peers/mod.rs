//! Independent clients for the interop tests, and the records they exchange with kafkit:
//! the Java client (kafkit-testbed's Java peer, `scripts/java-peer/Peer.java`), and
//! confluent-kafka (librdkafka) and kafka-python (`scripts/interop/client.py`, in the venv
//! `$KAFKIT_CACHE/pyenv` or the interpreter named by `KAFKIT_PYTHON`).
//!
//! Both speak records as JSON: `{"key": base64|null, "value": base64|null, "headers": [[name,
//! base64|null], ...], "timestamp": ms}`, plus `partition` and `offset` when read.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use kafkit::Message;
use kafkit_testbed::java::JavaSession;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `max.message.bytes` for topics that take the 1 MiB record: the broker's default, 1 MiB
/// plus 12 bytes, refuses a batch that holds it.
pub const BIG_MESSAGES: (&str, &str) = ("max.message.bytes", "8388608");

pub fn b64(b: &Option<Bytes>) -> Value {
    match b {
        Some(b) => Value::String(STANDARD.encode(b)),
        None => Value::Null,
    }
}

pub fn unb64(v: &Value) -> Option<Bytes> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Bytes::from(STANDARD.decode(s).expect("base64 from a peer"))),
        other => panic!("not base64 or null: {other}"),
    }
}

pub fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

/// A message as the peers take it.
pub fn to_json(m: &Message) -> Value {
    json!({
        "key": b64(&m.key),
        "value": b64(&m.value),
        "headers": m.headers.iter().map(|h| json!([h.key, b64(&h.value)])).collect::<Vec<_>>(),
        "timestamp": millis(m.time.expect("a time")),
    })
}

/// A record a peer read, as a message (topic left empty).
pub fn from_json(v: &Value) -> Message {
    let mut m = Message::new(unb64(&v["key"]), unb64(&v["value"]))
        .with_time(UNIX_EPOCH + Duration::from_millis(v["timestamp"].as_u64().expect("a timestamp")));
    for h in v["headers"].as_array().expect("headers") {
        m = m.with_header(h[0].as_str().expect("a header name"), unb64(&h[1]));
    }
    m.partition = v["partition"].as_i64().unwrap_or(-1) as i32;
    m.offset = v["offset"].as_i64().unwrap_or(-1);
    m
}

/// Keys, null keys, null values, empty and null header values, and (with `big`) a last record
/// with a 1 MiB value: the records every interop test exchanges, with fixed timestamps.
pub fn sample(big: bool) -> Vec<Message> {
    let t0 = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    let mut out: Vec<Message> = (0..12)
        .map(|i| {
            let key = (i % 3 != 0).then(|| Bytes::from(format!("key-{i}")));
            let value = (i != 4).then(|| Bytes::from(format!("value-{i}-{}", "abc".repeat(i * 7))));
            let mut m = Message::new(key, value).with_time(t0 + Duration::from_millis(i as u64 * 10));
            if i % 2 == 0 {
                m = m.with_header("h1", Some(Bytes::from(format!("v{i}")))).with_header("empty", Some(Bytes::new()));
            }
            if i == 6 {
                m = m.with_header("null", None::<Bytes>);
            }
            if i == 9 {
                m = m.with_header("bin", Some(Bytes::from_static(&[0, 0xff, 0x80, 10])));
            }
            m
        })
        .collect();
    if big {
        let value: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        out.push(Message::new(Some(Bytes::from_static(b"big")), Some(Bytes::from(value))).with_time(t0));
    }
    out
}

/// Asserts that `got` are `want`, in order, byte for byte: keys, values, headers, timestamps.
pub fn assert_same_records(got: &[Message], want: &[Message], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {} records, not {}", got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!((&g.key, &g.value), (&w.key, &w.value), "{what}: record {i}");
        assert_eq!(g.headers, w.headers, "{what}: record {i}: headers");
        assert_eq!(g.time.map(millis), w.time.map(millis), "{what}: record {i}: timestamp");
    }
}

/// A Java peer session (one JVM for a whole test).
pub struct Java(pub JavaSession);

impl Java {
    pub fn start(bootstrap: &str) -> Java {
        Java(JavaSession::start(bootstrap))
    }

    /// Runs one command: its output lines and its `done` line. Panics on the peer's error.
    /// Blocks (inside `block_in_place` on a multi-thread runtime, so kafkit's tasks go on).
    pub fn call(&mut self, cmd: Value) -> (Vec<Value>, Value) {
        let line = cmd.to_string();
        let mut run = || self.0.call(&line);
        let out = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        };
        let mut lines: Vec<Value> = out
            .unwrap_or_else(|e| panic!("the Java peer failed: {e}"))
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON from the Java peer"))
            .collect();
        let done = lines.pop().expect("a done line");
        (lines, done)
    }
}

/// The Python interpreter of the venv with confluent-kafka and kafka-python.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("KAFKIT_PYTHON") {
        return PathBuf::from(p);
    }
    let p = kafkit_testbed::cache_dir().join("pyenv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: python3 -m venv $KAFKIT_CACHE/pyenv && $KAFKIT_CACHE/pyenv/bin/pip install -r scripts/python-clients.txt",
        p.display()
    );
    p
}

/// Runs `scripts/interop/client.py ARGS` with `stdin`; its stdout.
pub fn py_client(args: &[&str], stdin: Option<String>) -> String {
    let script = kafkit_testbed::repo_root().join("scripts/interop/client.py");
    let mut child = Command::new(python())
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the interop client");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.unwrap_or_default();
    let writer = std::thread::spawn(move || input.write_all(data.as_bytes()));
    let out = child.wait_with_output().expect("interop client output");
    writer.join().expect("stdin writer").expect("write stdin");
    assert!(out.status.success(), "client {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}
