//! Apache Kafka for kafkit's integration tests.
//!
//! Every test that talks to a broker talks to Apache Kafka, started by the project's own
//! `scripts/kafka.sh` (KRaft, combined broker+controller nodes on loopback; see
//! `docs/TEST-BROKERS.md`):
//!
//! - [`Cluster::shared`]: one single-node cluster for the whole test run. `scripts/test.sh`
//!   starts it and names it in `KAFKIT_TEST_CLUSTER`; without that variable the first test to
//!   ask starts it (`scripts/kafka.sh shared`) and it keeps running for the next run (stop it with
//!   `scripts/kafka.sh stop-shared`). Tests on it use unique topic and group names
//!   ([`unique`]), so they run in parallel.
//! - [`Cluster::start`]: a dedicated cluster (1 or 3 nodes) for a test that kills, stops,
//!   freezes or restarts brokers, removed when the handle drops (and, should the test process
//!   die, by the script's watchdog).
//!
//! `KAFKIT_KAFKA_VERSION` picks the broker version of both (default 4.4.0; 3.9.2 is the older
//! line kept compatible). This crate does not depend on kafkit: its handles are processes,
//! files and addresses.

mod cluster;
pub mod java;
mod proxy;
pub mod wire;

pub use cluster::{users, Cluster, ClusterOptions, KafkaVersion, Listener, TlsFiles};
pub use proxy::{Proxy, ProxyMode};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The repository's root (where `scripts/` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// `$KAFKIT_CACHE`, default `~/.cache/kafkit`: where the scripts keep what they install.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("KAFKIT_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/kafkit"),
    }
}

/// A name no other test, process or run uses: for topics, groups, transactional ids.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
