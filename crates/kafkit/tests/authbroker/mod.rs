//! Tansu 0.6.0 with authentication on (SQLite storage), with users alice (SCRAM-SHA-256,
//! password `alice-pw-256`) and bob (SCRAM-SHA-512, `bob-pw-512`). Used by `scram.rs` and
//! the `kafkit` command's tests (both also include `common`).
#![allow(dead_code)]

use crate::common::{free_port, unique_topic};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct AuthBroker {
    pub addr: String,
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for AuthBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tansu_060() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/broker.sh");
    let out = Command::new(root).arg("path-auth").stderr(Stdio::inherit()).output().expect("scripts/broker.sh runs");
    assert!(out.status.success(), "scripts/broker.sh path-auth failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Tansu runs in `dir` (its `sqlite://FILE` is relative to the working directory).
fn start(bin: &str, port: u16, dir: &std::path::Path, authentication: bool, advertised: &str) -> Child {
    let db = "sqlite://tansu.db";
    let url = format!("tcp://127.0.0.1:{port}");
    let adv = if advertised.is_empty() { url.clone() } else { format!("tcp://{advertised}") };
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir);
    cmd.args(["broker", "--listener-url", &url, "--advertised-listener-url", &adv, "--storage-engine", db]);
    if authentication {
        cmd.arg("--authentication");
    }
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start tansu 0.6.0");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu 0.6.0 did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A broker that requires authentication, knowing alice (SCRAM-SHA-256) and bob
/// (SCRAM-SHA-512).
pub fn auth_broker() -> AuthBroker {
    auth_broker_advertising(None)
}

/// As [`auth_broker`], telling clients to connect to `advertised` (a proxy) when given.
pub fn auth_broker_advertising(advertised: Option<u16>) -> AuthBroker {
    auth_broker_advertising_host(&advertised.map(|p| format!("127.0.0.1:{p}")).unwrap_or_default())
}

/// As [`auth_broker`], advertising `host:port` (its own address when empty).
pub fn auth_broker_advertising_host(advertised: &str) -> AuthBroker {
    let bin = tansu_060();
    let dir = std::env::temp_dir().join(unique_topic("kafkit-scram"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    // Users are created through a broker without authentication on the same database.
    let mut open = start(&bin, port, &dir, false, "");
    for (user, password, mechanism) in [("alice", "alice-pw-256", "scram256"), ("bob", "bob-pw-512", "scram512")] {
        let out = Command::new(&bin)
            .args(["user", "create", "--broker", &url, "--mechanism", mechanism, user, password])
            .output()
            .expect("tansu user create");
        assert!(out.status.success(), "creating {user}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = open.kill();
    let _ = open.wait();
    let child = start(&bin, port, &dir, true, advertised);
    AuthBroker { addr: format!("127.0.0.1:{port}"), child, dir }
}
