//! Certificates made per run (rcgen) and stunnel in front of a broker, for the TLS tests of
//! the library (`tls.rs`, `scram.rs`) and of the `kafkit` command (each also includes
//! `common`).
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Issued {
    pub cert: String,
    pub key: String,
}

pub struct Pki {
    pub dir: PathBuf,
    pub ca: String,
    pub other_ca: String,
    pub server: Issued,
    pub expired: Issued,
    pub client: Issued,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    (p.self_signed(&key).unwrap(), key)
}

fn issue(names: &[&str], ca: &(rcgen::Certificate, KeyPair), expired: bool) -> Issued {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    Issued { cert: cert.pem(), key: key.serialize_pem() }
}

pub fn pki() -> Pki {
    let dir = std::env::temp_dir().join(crate::common::unique_topic("kafkit-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let root = ca("kafkit test CA");
    let other = ca("some other CA");
    Pki {
        ca: root.0.pem(),
        other_ca: other.0.pem(),
        server: issue(&["localhost"], &root, false),
        expired: issue(&["localhost"], &root, true),
        client: issue(&["kafkit-client"], &root, false),
        dir,
    }
}

impl Pki {
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

pub struct Stunnel {
    child: Child,
    pub port: u16,
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// stunnel terminating TLS on `port` in front of `broker_port`; with `client_ca`, it
/// requires a client certificate signed by it (`verify = 2`).
pub fn stunnel(pki: &Pki, server: &Issued, port: u16, broker_port: u16, client_ca: Option<&Path>) -> Stunnel {
    let cert = pki.write(&format!("server-{port}.pem"), &server.cert);
    let key = pki.write(&format!("server-{port}.key"), &server.key);
    let mut conf = format!(
        "foreground = yes\npid =\ndebug = 3\n[kafka]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{broker_port}\ncert = {}\nkey = {}\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        conf.push_str(&format!("verify = 2\nCAfile = {}\n", ca.display()));
    }
    let path = pki.write(&format!("stunnel-{port}.conf"), &conf);
    let child = Command::new("stunnel")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stunnel (scripts/setup.sh installs stunnel4)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "stunnel did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Stunnel { child, port }
}
