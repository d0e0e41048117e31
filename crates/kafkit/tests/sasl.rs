//! SASL PLAIN and OAUTHBEARER at the wire level, against a server in this file: neither test
//! broker serves them (Tansu 0.6.0 authenticates SCRAM only). The server speaks ApiVersions,
//! SaslHandshake, SaslAuthenticate and Metadata over real TCP, checks the exact bytes each
//! mechanism sends, grants a short session, and records every exchange, so
//! re-authentication (KIP-368) can be watched.

use bytes::BytesMut;
use kafkit::cluster::{Cluster, ClusterConfig};
use kafkit::protocol::frame::{decode_request, encode_response, split_frame};
use kafkit::protocol::messages::*;
use kafkit::protocol::messages::{RequestKind, ResponseKind};
use kafkit::protocol::{ApiKey, ApiVersion, ErrorCode};
use kafkit::{Dialer, Error, OAuthToken, Sasl, Secret};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Seen {
    /// (connection number, what, when).
    events: Mutex<Vec<(usize, String, Instant)>>,
    connections: AtomicUsize,
}

impl Seen {
    fn of(&self, what: &str) -> Vec<(usize, Instant)> {
        self.events.lock().unwrap().iter().filter(|e| e.1 == what).map(|e| (e.0, e.2)).collect()
    }
}

struct Server {
    addr: String,
    seen: Arc<Seen>,
}

/// A broker that enables `mechanism`, accepts auth bytes for which `accept` says yes, and
/// grants sessions of `lifetime`.
async fn server(mechanism: &'static str, lifetime: Duration, accept: fn(&[u8]) -> bool) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let (seen2, addr2) = (seen.clone(), addr.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let n = seen2.connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(serve(sock, n, seen2.clone(), addr2.clone(), mechanism, lifetime, accept));
        }
    });
    Server { addr, seen }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    n: usize,
    seen: Arc<Seen>,
    addr: String,
    mechanism: &'static str,
    lifetime: Duration,
    accept: fn(&[u8]) -> bool,
) {
    let mut buf = BytesMut::new();
    let mut authenticated = false;
    let record = |what: String| seen.events.lock().unwrap().push((n, what, Instant::now()));
    loop {
        let frame = loop {
            match split_frame(&mut buf, 1 << 20) {
                Ok(Some(f)) => break f,
                Ok(None) => {}
                Err(_) => return,
            }
            if sock.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        };
        let Ok((header, req)) = decode_request(frame) else { return };
        let version = ApiVersion(header.request_api_version);
        let resp = match req {
            RequestKind::ApiVersions(_) => {
                let key = |k: ApiKey, min: i16, max: i16| {
                    api_versions_response::ApiVersion::default()
                        .with_api_key(k.key())
                        .with_min_version(min)
                        .with_max_version(max)
                };
                ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(vec![
                    key(ApiKey::ApiVersions, 0, 3),
                    key(ApiKey::SaslHandshake, 0, 1),
                    key(ApiKey::SaslAuthenticate, 0, 2),
                    key(ApiKey::Metadata, 0, 12),
                ]))
            }
            RequestKind::SaslHandshake(h) => {
                record(format!("handshake {}", h.mechanism));
                let code = if h.mechanism == mechanism { 0 } else { ErrorCode::UnsupportedSaslMechanism.code() };
                ResponseKind::SaslHandshake(
                    SaslHandshakeResponse::default().with_error_code(code).with_mechanisms(vec![mechanism.to_string()]),
                )
            }
            RequestKind::SaslAuthenticate(a) => {
                record(format!("auth {}", String::from_utf8_lossy(&a.auth_bytes).replace('\0', "\\0")));
                let ok = accept(&a.auth_bytes);
                authenticated = ok;
                let r = if ok {
                    record("authenticated".into());
                    SaslAuthenticateResponse::default().with_session_lifetime_ms(lifetime.as_millis() as i64)
                } else {
                    SaslAuthenticateResponse::default()
                        .with_error_code(ErrorCode::SaslAuthenticationFailed.code())
                        .with_error_message(Some("Authentication failed: Invalid username or password".into()))
                };
                ResponseKind::SaslAuthenticate(r)
            }
            RequestKind::Metadata(_) if authenticated => {
                record("metadata".into());
                let (host, port) = addr.rsplit_once(':').unwrap();
                ResponseKind::Metadata(MetadataResponse::default().with_brokers(vec![
                    metadata_response::MetadataResponseBroker::default()
                        .with_node_id(1)
                        .with_host(host.to_string())
                        .with_port(port.parse().unwrap()),
                ]))
            }
            // Anything else before authentication: a Kafka broker closes the connection.
            _ => return,
        };
        let mut out = BytesMut::new();
        encode_response(&mut out, header.correlation_id, &resp, version).unwrap();
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn plain_ok(b: &[u8]) -> bool {
    b == b"\0alice\0alice-secret"
}

#[tokio::test]
async fn plain_sends_rfc_4616_bytes_and_reauthenticates_before_the_session_ends() {
    let s = server("PLAIN", Duration::from_millis(1500), plain_ok).await;
    let conn = Dialer::new().with_sasl(Sasl::plain("alice", "alice-secret")).dial(&s.addr).await.unwrap();
    assert_eq!(s.seen.of("auth \\0alice\\0alice-secret").len(), 1, "authzid empty, user, password (RFC 4616)");
    conn.metadata(None).await.unwrap();
    // The session lasts 1.5 s: the client re-authenticates on the same connection at 85-95%
    // of it, again and again, and requests keep working.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    conn.metadata(None).await.unwrap();
    assert!(conn.authentications() >= 3, "{}", conn.authentications());
    let auths = s.seen.of("authenticated");
    assert!(auths.len() >= 3, "{} authentications", auths.len());
    assert!(auths.iter().all(|(c, _)| *c == 0), "all on the one connection");
    for pair in auths.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap < Duration::from_millis(1500) && gap > Duration::from_millis(1100),
            "re-authenticated after {gap:?}"
        );
    }
    assert_eq!(s.seen.connections.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn oauthbearer_sends_each_fresh_token_with_its_extensions() {
    fn accept(b: &[u8]) -> bool {
        let s = String::from_utf8_lossy(b);
        s.starts_with("n,,\x01auth=Bearer tok-") && s.ends_with("\x01tenant=blue\x01\x01")
    }
    let s = server("OAUTHBEARER", Duration::from_millis(1000), accept).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let provider = move || {
        let n = c2.fetch_add(1, Ordering::Relaxed) + 1;
        async move {
            Ok(OAuthToken {
                value: Secret::new(format!("tok-{n}")),
                extensions: vec![("tenant".into(), "blue".into())],
            })
        }
    };
    let conn = Dialer::new().with_sasl(Sasl::oauthbearer(provider)).dial(&s.addr).await.unwrap();
    conn.metadata(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // KIP-255 framing: GS2 header, auth=Bearer, extensions, two ^A; a new token each time.
    assert_eq!(s.seen.of("auth n,,\x01auth=Bearer tok-1\x01tenant=blue\x01\x01").len(), 1);
    assert_eq!(
        s.seen.of("auth n,,\x01auth=Bearer tok-2\x01tenant=blue\x01\x01").len(),
        1,
        "re-authenticated with a fresh token"
    );
    assert!(calls.load(Ordering::Relaxed) >= 2);
    conn.metadata(None).await.unwrap();
}

/// Captures this test's log lines (at every level) into a buffer.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_wrong_password_fails_fast_once_and_names_no_secret() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = server("PLAIN", Duration::from_secs(60), plain_ok).await;
    let started = Instant::now();
    let config = ClusterConfig {
        dialer: Dialer::new().with_sasl(Sasl::plain("alice", "wrong-s3cr3t")),
        ..ClusterConfig::default()
    };
    let e = Cluster::connect(&[&s.addr], config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(!e.is_retriable());
    match &e {
        Error::Auth { mechanism, message, .. } => {
            assert_eq!(mechanism, "PLAIN");
            assert!(message.contains("Invalid username or password"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("wrong-s3cr3t"), "{shown}");
    }
    assert_eq!(s.seen.connections.load(Ordering::Relaxed), 1, "no retry storm");
    assert_eq!(s.seen.of("handshake PLAIN").len(), 1);
    // Secrets in no log line either, at any level (the lines are there: the failure is logged).
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("authentication"), "{text}");
    assert!(!text.contains("wrong-s3cr3t"), "{text}");
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_enable_is_named() {
    let s = server("OAUTHBEARER", Duration::from_secs(60), |_| true).await;
    let e = Dialer::new().with_sasl(Sasl::plain("alice", "x")).dial(&s.addr).await.unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("does not enable it") && shown.contains("OAUTHBEARER"), "{shown}");
}

#[tokio::test]
async fn without_sasl_the_broker_closes_and_the_error_says_so() {
    let s = server("PLAIN", Duration::from_secs(60), plain_ok).await;
    let conn = Dialer::new().dial(&s.addr).await.unwrap();
    let e = conn.metadata(None).await.unwrap_err();
    assert!(matches!(e, Error::ConnectionClosed { .. }), "{e:?}");
}
