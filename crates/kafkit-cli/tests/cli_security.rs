//! The `kafkit` command's TLS and SASL settings, from flags, the environment and files,
//! against Apache Kafka's SSL, MTLS, SASL_PLAINTEXT and SASL_SSL listeners (the shared node).

#[path = "../../kafkit/tests/common/mod.rs"]
mod common;
mod run;

use base64::Engine as _;
use common::{kafka, unique_topic, users, Listener};
use run::{command, kafkit, ok, one_line_error, run};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runs `kafkit --brokers BROKER ARGS` with `env` added and `stdin` as its input.
fn kafkit_env(broker: &str, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    run(command(broker, args).envs(env.iter().copied()), stdin)
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// A directory of its own for files the test writes.
fn scratch(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_topic(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn tls_from_flags_or_the_environment_and_never_a_password_flag() {
    let f = kafka().tls();
    let (ca, cert, key) = (path(&f.ca), path(&f.client_cert), path(&f.client_key));
    // The SSL listener: the CA from a flag, then from the environment.
    let ssl = kafka().bootstrap_on(Listener::Ssl);
    let t = unique_topic("cli-tls");
    ok(&kafkit(&ssl, &["--ca", ca, "topics", "create", &t, "--partitions", "1"], b""));
    ok(&kafkit(&ssl, &["--tls", "--ca", ca, "produce", &t], b"over-tls\n"));
    let out = ok(&kafkit_env(&ssl, &["consume", &t, "-e"], &[("KAFKIT_TLS", "1"), ("KAFKIT_TLS_CA", ca)], b""));
    assert_eq!(out, "over-tls\n");
    // The MTLS listener: the client certificate from flags, then from the environment.
    let mtls = kafka().bootstrap_on(Listener::Mtls);
    ok(&kafkit(&mtls, &["--ca", ca, "--cert", cert, "--key", key, "produce", &t], b"mutual\n"));
    let env = [("KAFKIT_TLS_CA", ca), ("KAFKIT_TLS_CERT", cert), ("KAFKIT_TLS_KEY", key)];
    assert_eq!(ok(&kafkit_env(&mtls, &["consume", &t, "-e"], &env, b"")), "over-tls\nmutual\n");
    // Without the client certificate, with a stranger's, with the wrong CA: one clear line each.
    let err = one_line_error(&kafkit(&mtls, &["--ca", ca, "topics", "list"], b""));
    assert!(err.contains("requires a client certificate"), "{err}");
    let stranger = ["--ca", ca, "--cert", path(&f.stranger_cert), "--key", path(&f.stranger_key), "topics", "list"];
    let err = one_line_error(&kafkit(&mtls, &stranger, b""));
    assert!(err.contains("refused this client's certificate"), "{err}");
    let err = one_line_error(&kafkit(&ssl, &["--ca", path(&f.other_ca), "topics", "list"], b""));
    assert!(err.contains("not signed by a trusted CA"), "{err}");
    // Plaintext to the TLS listener.
    let err = one_line_error(&kafkit(&ssl, &["topics", "list"], b""));
    assert!(err.contains("speaks TLS"), "{err}");
    // A password is never a flag value.
    let out = kafkit(&ssl, &["--password", "hunter2", "topics", "list"], b"");
    assert_eq!(out.status.code(), Some(2), "no --password flag exists");
    // SASL settings are checked before connecting, and name no secret.
    let err = one_line_error(&kafkit_env(
        &ssl,
        &["--ca", ca, "--sasl-mechanism", "SCRAM-SHA-512", "topics", "list"],
        &[("KAFKIT_SASL_PASSWORD", "pw-s3cr3t")],
        b"",
    ));
    assert!(err.contains("needs a username") && !err.contains("pw-s3cr3t"), "{err}");
}

#[test]
fn scram_and_plain_from_the_environment_or_a_password_file() {
    let sasl = kafka().bootstrap_on(Listener::SaslPlaintext);
    let (alice, alice_pw) = users::ALICE;
    let t = unique_topic("cli-scram");
    // SCRAM-SHA-512, the password from the environment.
    let env = [
        ("KAFKIT_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKIT_SASL_USERNAME", alice),
        ("KAFKIT_SASL_PASSWORD", alice_pw),
    ];
    ok(&kafkit_env(&sasl, &["topics", "create", &t, "--partitions", "1"], &env, b""));
    assert!(ok(&kafkit_env(&sasl, &["topics", "list"], &env, b"")).lines().any(|l| l == t));
    // SCRAM-SHA-256, the password from a file, the rest from flags.
    let dir = scratch("cli-pw");
    let pw = dir.join("password");
    std::fs::write(&pw, format!("{alice_pw}\n")).unwrap();
    let flags = ["--sasl-mechanism", "SCRAM-SHA-256", "--username", alice, "--password-file", path(&pw)];
    let with = |rest: &[&str]| -> Vec<String> { flags.iter().chain(rest).map(|s| s.to_string()).collect() };
    let args = with(&["produce", &t]);
    ok(&kafkit(&sasl, &args.iter().map(String::as_str).collect::<Vec<_>>(), b"scram\n"));
    // PLAIN, from the environment, with the password file named there too.
    let pw_file = path(&pw);
    let env =
        [("KAFKIT_SASL_MECHANISM", "PLAIN"), ("KAFKIT_SASL_USERNAME", alice), ("KAFKIT_SASL_PASSWORD_FILE", pw_file)];
    ok(&kafkit_env(&sasl, &["produce", &t], &env, b"plain\n"));
    // SCRAM over TLS on SASL_SSL.
    let sasl_ssl = kafka().bootstrap_on(Listener::SaslSsl);
    let args = with(&["--ca", path(&kafka().tls().ca), "consume", &t, "-e"]);
    assert_eq!(ok(&kafkit(&sasl_ssl, &args.iter().map(String::as_str).collect::<Vec<_>>(), b"")), "scram\nplain\n");
    // A wrong password: one line, an authentication error, no secret, no hang.
    std::fs::write(&pw, "not-the-s3cr3t\n").unwrap();
    let started = Instant::now();
    let args = with(&["topics", "list"]);
    let err = one_line_error(&kafkit(&sasl, &args.iter().map(String::as_str).collect::<Vec<_>>(), b""));
    assert!(err.contains("SASL SCRAM-SHA-256 authentication") && err.contains("invalid credentials"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An unsecured JWT (what Kafka's built-in OAUTHBEARER validator takes) for `sub`, expiring
/// `exp_in` seconds from now.
fn unsecured_jwt(sub: &str, exp_in: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = format!(r#"{{"sub":"{sub}","iat":{},"exp":{}}}"#, now - 60, now + exp_in);
    format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&claims))
}

#[test]
fn oauthbearer_from_a_token_file_or_the_environment() {
    let sasl = kafka().bootstrap_on(Listener::SaslPlaintext);
    let dir = scratch("cli-token");
    let token = dir.join("token");
    std::fs::write(&token, format!("{}\n", unsecured_jwt("alice", 3600))).unwrap();
    let t = unique_topic("cli-oauth");
    let flags = ["--sasl-mechanism", "OAUTHBEARER", "--token-file", path(&token)];
    let run = |rest: &[&str], stdin: &[u8]| {
        let args: Vec<&str> = flags.iter().chain(rest).copied().collect();
        kafkit(&sasl, &args, stdin)
    };
    ok(&run(&["topics", "create", &t, "--partitions", "1"], b""));
    ok(&run(&["produce", &t], b"bearer\n"));
    // The token itself from the environment.
    let fresh = unsecured_jwt("alice", 3600);
    let env = [("KAFKIT_SASL_MECHANISM", "OAUTHBEARER"), ("KAFKIT_SASL_TOKEN", fresh.as_str())];
    assert_eq!(ok(&kafkit_env(&sasl, &["consume", &t, "-e"], &env, b"")), "bearer\n");
    // An expired token in the file: refused, in one line that does not quote it.
    let expired = unsecured_jwt("alice", -600);
    std::fs::write(&token, format!("{expired}\n")).unwrap();
    let started = Instant::now();
    let err = one_line_error(&run(&["topics", "list"], b""));
    assert!(err.contains("refused the token") && err.contains("invalid_token"), "{err}");
    assert!(!err.contains(&expired), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // OAUTHBEARER without a token is refused before connecting.
    let err = one_line_error(&kafkit(&sasl, &["--sasl-mechanism", "OAUTHBEARER", "topics", "list"], b""));
    assert!(err.contains("needs a token"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
