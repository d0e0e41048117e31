//! Handles on the clusters `scripts/kafka.sh` starts: their listeners, TLS files, users, and
//! their nodes' processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The SASL users every test cluster knows (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 alike).
pub mod users {
    /// A super user.
    pub const ADMIN: (&str, &str) = ("admin", "admin-secret");
    /// A super user.
    pub const ALICE: (&str, &str) = ("alice", "alice-secret");
    /// Not a super user: it may do only what ACLs grant it (the StandardAuthorizer decides).
    pub const BOB: (&str, &str) = ("bob", "bob-secret");
}

/// A client listener of every node (`scripts/kafka.sh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// No authentication; the principal is ANONYMOUS, a super user.
    Plaintext,
    /// SASL PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (unsecured JWTs).
    SaslPlaintext,
    /// TLS with the brokers' certificate only.
    Ssl,
    /// TLS that requires a client certificate signed by the cluster's CA.
    Mtls,
    /// The SASL mechanisms over TLS.
    SaslSsl,
    /// As `SaslPlaintext`, but sessions last `connections.max.reauth.ms` = 3 s (KIP-368).
    Reauth,
}

impl Listener {
    fn key(self) -> &'static str {
        match self {
            Listener::Plaintext => "PLAINTEXT",
            Listener::SaslPlaintext => "SASL_PLAINTEXT",
            Listener::Ssl => "SSL",
            Listener::Mtls => "MTLS",
            Listener::SaslSsl => "SASL_SSL",
            Listener::Reauth => "REAUTH",
        }
    }
}

/// The broker's version, as `scripts/kafka.sh` was asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KafkaVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KafkaVersion {
    fn parse(s: &str) -> KafkaVersion {
        let mut it = s.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        KafkaVersion { major: it.next().unwrap_or(0), minor: it.next().unwrap_or(0), patch: it.next().unwrap_or(0) }
    }

    /// At least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl std::fmt::Display for KafkaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// PEM files made for one cluster.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA that signed the brokers' and the client's certificates.
    pub ca: PathBuf,
    /// The brokers' certificate (names `localhost` and `127.0.0.1`).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate the MTLS listener accepts (principal `CN=kafkit-client`).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Another CA, which signed nothing the brokers trust or present.
    pub other_ca: PathBuf,
    /// A client certificate signed by the other CA: the MTLS listener refuses it.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

/// What a dedicated cluster is started with.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// 1 or 3 combined broker+controller nodes. With 3: replication factor 3 and
    /// `min.insync.replicas` 2 by default.
    pub nodes: usize,
    /// Broker settings appended to every node's `server.properties`.
    pub settings: Vec<(String, String)>,
    /// Every node also gets a PROXIED listener advertising a port of its own, where the test
    /// starts a [`crate::Proxy`] to the node ([`Cluster::proxied`]).
    pub proxied: bool,
    /// Default: `KAFKIT_KAFKA_VERSION`, else 4.4.0.
    pub version: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions { nodes: 1, settings: Vec::new(), proxied: false, version: None }
    }
}

impl ClusterOptions {
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.settings.push((key.to_string(), value.to_string()));
        self
    }

    pub fn proxied(mut self) -> Self {
        self.proxied = true;
        self
    }

    pub fn version(mut self, v: &str) -> Self {
        self.version = Some(v.to_string());
        self
    }
}

/// A running cluster: the shared one, or a dedicated one stopped when this drops.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    env: BTreeMap<String, String>,
    owned: bool,
}

fn script() -> PathBuf {
    crate::repo_root().join("scripts/kafka.sh")
}

/// Runs `scripts/kafka.sh ARGS` and returns its last line of output.
fn run_script(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running scripts/kafka.sh {args:?}: {e}"));
    assert!(out.status.success(), "scripts/kafka.sh {args:?} failed ({})", out.status);
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string()
}

fn requested_version() -> String {
    std::env::var("KAFKIT_KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".to_string())
}

fn read_env(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

impl Cluster {
    /// The run's shared single-node cluster (see the crate docs).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            let env_file = match std::env::var("KAFKIT_TEST_CLUSTER") {
                Ok(p) if !p.is_empty() => PathBuf::from(p),
                _ => PathBuf::from(run_script(&["shared", &requested_version()])),
            };
            Cluster::open(&env_file, false)
        })
    }

    /// A dedicated cluster, started now (a few seconds: 3-4 s for one node, 8-10 s for three).
    pub fn start(opts: ClusterOptions) -> Cluster {
        let dir = std::env::temp_dir().join(crate::unique("kafkit-cluster"));
        let version = opts.version.clone().unwrap_or_else(requested_version);
        let nodes = opts.nodes.to_string();
        let owner = std::process::id().to_string();
        let dir_s = dir.to_string_lossy().to_string();
        let mut args: Vec<String> = ["start", &dir_s, "--nodes", &nodes, "--version", &version, "--owner", &owner]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (k, v) in &opts.settings {
            args.push("--set".into());
            args.push(format!("{k}={v}"));
        }
        if opts.proxied {
            args.push("--proxied".into());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let env_file = run_script(&argv);
        Cluster::open(Path::new(&env_file), true)
    }

    fn open(env_file: &Path, owned: bool) -> Cluster {
        let env = read_env(env_file);
        let dir = env_file.parent().expect("cluster.env has a directory").to_path_buf();
        Cluster { dir, env, owned }
    }

    fn get(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("{} names no {key}", self.dir.join("cluster.env").display()))
    }

    /// The directory the cluster lives in (configs, data, logs: `nodeI/server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker version.
    pub fn version(&self) -> KafkaVersion {
        KafkaVersion::parse(self.get("KAFKA_VERSION"))
    }

    /// How many nodes.
    pub fn nodes(&self) -> usize {
        self.get("NODES").parse().unwrap_or(1)
    }

    /// Every node's PLAINTEXT address, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.bootstrap_on(Listener::Plaintext)
    }

    /// Every node's address on `listener`, comma-separated.
    pub fn bootstrap_on(&self, listener: Listener) -> String {
        self.get(&format!("BOOTSTRAP_{}", listener.key())).to_string()
    }

    /// Every node's address on `listener`.
    pub fn addrs_on(&self, listener: Listener) -> Vec<String> {
        self.bootstrap_on(listener).split(',').map(str::to_string).collect()
    }

    /// The first node's PLAINTEXT address.
    pub fn addr(&self) -> String {
        self.node_addr(1)
    }

    /// Node `i`'s (1-based; its node id) PLAINTEXT address.
    pub fn node_addr(&self, i: usize) -> String {
        self.get(&format!("NODE{i}_PLAINTEXT")).to_string()
    }

    /// With [`ClusterOptions::proxied`]: where node `i`'s PROXIED listener really is, and the
    /// address the node advertises for it (where the test's proxy must listen).
    pub fn proxied(&self, i: usize) -> (String, String) {
        (
            self.get(&format!("NODE{i}_PROXIED")).to_string(),
            self.get(&format!("NODE{i}_PROXIED_ADVERTISED")).to_string(),
        )
    }

    /// Where node `i` serves JMX (HOST:PORT), when the cluster was started with
    /// `scripts/kafka.sh start --jmx` (as scripts/test.sh starts the run's shared node).
    pub fn jmx(&self, i: usize) -> Option<String> {
        self.env.get(&format!("NODE{i}_JMX")).map(|a| a.to_string())
    }

    /// The PEM files of this cluster's certificates.
    pub fn tls(&self) -> TlsFiles {
        let d = PathBuf::from(self.get("TLS_DIR"));
        TlsFiles {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            other_ca: d.join("other-ca.pem"),
            stranger_cert: d.join("stranger.pem"),
            stranger_key: d.join("stranger.key"),
        }
    }

    /// Node `i`'s broker log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{i}/server.log"))).unwrap_or_default()
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(format!("node{i}/pid"))).ok()?.trim().parse().ok()
    }

    fn dedicated(&self, what: &str) {
        assert!(self.owned, "{what} on the shared cluster: start a dedicated one (Cluster::start)");
    }

    fn signal(&self, i: usize, sig: &str) {
        self.dedicated(sig);
        run_script(&["stop-node", &self.dir.to_string_lossy(), &i.to_string(), sig]);
    }

    /// `kill -9` of node `i`; returns once it is gone.
    pub fn kill(&self, i: usize) {
        self.signal(i, "KILL");
    }

    /// A controlled shutdown of node `i` (SIGTERM); returns once it has exited.
    pub fn stop(&self, i: usize) {
        self.signal(i, "TERM");
    }

    /// SIGSTOP: node `i` keeps its sockets open and answers nothing.
    pub fn freeze(&self, i: usize) {
        self.signal(i, "STOP");
    }

    /// SIGCONT after [`Cluster::freeze`].
    pub fn thaw(&self, i: usize) {
        self.signal(i, "CONT");
    }

    /// Starts node `i` again on its config and data; returns once it serves.
    pub fn restart(&self, i: usize) {
        self.dedicated("restart");
        run_script(&["start-node", &self.dir.to_string_lossy(), &i.to_string()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            // Nothing of a dedicated cluster outlives its test: no controlled shutdown needed.
            let _ = Command::new(script())
                .args(["stop", &self.dir.to_string_lossy(), "KILL"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
        }
    }
}
