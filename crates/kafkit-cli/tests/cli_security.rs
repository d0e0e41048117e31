//! The `kafkit` command's TLS and SASL flags and environment against Apache Kafka.

#[path = "../../kafkit/tests/authbroker/mod.rs"]
mod authbroker;
#[path = "../../kafkit/tests/common/mod.rs"]
mod common;
#[path = "../../kafkit/tests/tlsutil/mod.rs"]
mod tlsutil;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn kafkit_env(broker: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["--brokers", broker])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run kafkit")
}

#[test]
fn tls_from_flags_or_the_environment_and_never_a_password_flag() {
    let pki = tlsutil::pki();
    let ca = pki.write("ca.pem", &pki.ca);
    let cert = pki.write("client.pem", &pki.client.cert);
    let key = pki.write("client.key", &pki.client.key);
    let tls_port = common::free_port();
    let b = TestBroker::start_advertised_as(common::free_port(), &format!("localhost:{tls_port}"));
    let broker_port: u16 = b.addr().rsplit_once(':').unwrap().1.parse().unwrap();
    let _tunnel = tlsutil::stunnel(&pki, &pki.server, tls_port, broker_port, Some(&ca));
    let addr = format!("localhost:{tls_port}");
    let t = unique_topic("cli-tls");
    let (ca, cert, key) = (ca.to_str().unwrap(), cert.to_str().unwrap(), key.to_str().unwrap());
    // Flags.
    ok(&kafkit(&addr, &["--ca", ca, "--cert", cert, "--key", key, "topics", "create", &t, "--partitions", "1"], b""));
    ok(&kafkit(&addr, &["--tls", "--ca", ca, "--cert", cert, "--key", key, "produce", &t], b"over-tls\n"));
    // The environment.
    let env = [("KAFKIT_TLS", "1"), ("KAFKIT_TLS_CA", ca), ("KAFKIT_TLS_CERT", cert), ("KAFKIT_TLS_KEY", key)];
    let out = ok(&kafkit_env(&addr, &["consume", &t, "-e"], &env));
    assert_eq!(out, "over-tls\n");
    // Without the client certificate: one clear line.
    let err = one_line_error(&kafkit(&addr, &["--ca", ca, "topics", "list"], b""));
    assert!(err.contains("client certificate"), "{err}");
    // A password is never a flag value.
    let out = kafkit(&addr, &["--password", "hunter2", "topics", "list"], b"");
    assert_eq!(out.status.code(), Some(2), "no --password flag exists");
    // SASL settings are checked before connecting, and name no secret.
    let err = one_line_error(&kafkit_env(
        &addr,
        &["--ca", ca, "--sasl-mechanism", "SCRAM-SHA-512", "topics", "list"],
        &[("KAFKIT_SASL_PASSWORD", "pw-s3cr3t")],
    ));
    assert!(err.contains("needs a username") && !err.contains("pw-s3cr3t"), "{err}");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[test]
fn scram_from_the_environment_or_a_password_file() {
    let b = authbroker::auth_broker();
    let t = unique_topic("cli-scram");
    // The password from the environment.
    let env = [
        ("KAFKIT_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKIT_SASL_USERNAME", "bob"),
        ("KAFKIT_SASL_PASSWORD", "bob-pw-512"),
    ];
    ok(&kafkit_env(&b.addr(), &["topics", "create", &t, "--partitions", "1"], &env));
    assert!(ok(&kafkit_env(&b.addr(), &["topics", "list"], &env)).lines().any(|l| l == t));
    // The password from a file, the rest from flags.
    let dir = std::env::temp_dir().join(unique_topic("cli-pw"));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("password");
    std::fs::write(&pw, "alice-pw-256\n").unwrap();
    let flags = ["--sasl-mechanism", "SCRAM-SHA-256", "--username", "alice", "--password-file", pw.to_str().unwrap()];
    let mut produce = flags.to_vec();
    produce.extend(["produce", t.as_str()]);
    ok(&kafkit(&b.addr(), &produce, b"authenticated\n"));
    let mut consume = flags.to_vec();
    consume.extend(["consume", t.as_str(), "-e"]);
    assert_eq!(ok(&kafkit(&b.addr(), &consume, b"")), "authenticated\n");
    // A wrong password: one line, an authentication error, no secret, no hang.
    std::fs::write(&pw, "not-the-s3cr3t\n").unwrap();
    let started = Instant::now();
    let mut list = flags.to_vec();
    list.extend(["topics", "list"]);
    let err = one_line_error(&kafkit(&b.addr(), &list, b""));
    assert!(err.contains("SASL SCRAM-SHA-256 authentication") && !err.contains("s3cr3t"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}
