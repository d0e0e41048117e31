//! SASL behaviours no Kafka broker shows, against a wire-level server in this file (every
//! mechanism, failure and KIP-368 re-authentication that Apache Kafka shows is tested against
//! it in `sasl_kafka.rs`): a SCRAM server whose signature does not verify (one that does not
//! know the user's credentials) is refused; a broker that closes the connection instead of
//! answering a wrong password is an authentication error; a broker that grants sessions but
//! refuses re-authentication has its connections replaced before the sessions end. The
//! server speaks ApiVersions, SaslHandshake, SaslAuthenticate and Metadata over real TCP and
//! records every request.

use base64::Engine as _;
use bytes::BytesMut;
use kafkit::admin::ScramMechanism;
use kafkit::cluster::{Cluster, ClusterConfig, Workload};
use kafkit::protocol::frame::encode_response;
use kafkit::protocol::messages::*;
use kafkit::protocol::messages::{RequestKind, ResponseKind};
use kafkit::protocol::{ApiKey, ApiVersion, ErrorCode};
use kafkit::{Dialer, Error, Sasl};
use kafkit_testbed::wire::next_request;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// How the server answers a SASL step.
#[derive(Clone, Copy)]
enum Behaviour {
    /// SCRAM-SHA-512 whose server-final signature is made without the user's credentials.
    ForgedScram,
    /// PLAIN that closes the connection on any SaslAuthenticate, with no answer.
    CloseOnAuthenticate,
    /// PLAIN that accepts once per connection and grants `lifetime`, answers a second
    /// SaslHandshake with UNSUPPORTED_SASL_MECHANISM, and closes a connection whose session
    /// has ended on its next request (as Tansu 0.6.0 does).
    NoReauthentication { lifetime: Duration },
}

#[derive(Default)]
struct Seen {
    /// (connection number, request).
    requests: Mutex<Vec<(usize, String)>>,
    connections: AtomicUsize,
}

impl Seen {
    fn count(&self, what: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.1 == what).count()
    }
}

struct Server {
    addr: String,
    seen: Arc<Seen>,
}

async fn server(behaviour: Behaviour) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let (seen2, addr2) = (seen.clone(), addr.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let n = seen2.connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(serve(sock, n, seen2.clone(), addr2.clone(), behaviour));
        }
    });
    Server { addr, seen }
}

async fn serve(mut sock: tokio::net::TcpStream, n: usize, seen: Arc<Seen>, addr: String, behaviour: Behaviour) {
    let mut buf = BytesMut::new();
    let mut handshakes = 0;
    let mut session_ends: Option<Instant> = None;
    let mut scram_nonce = String::new();
    loop {
        let Some((header, req)) = next_request(&mut sock, &mut buf).await else { return };
        let version = ApiVersion(header.request_api_version);
        let mechanism = if matches!(behaviour, Behaviour::ForgedScram) { "SCRAM-SHA-512" } else { "PLAIN" };
        let what = match &req {
            RequestKind::ApiVersions(_) => "api_versions",
            RequestKind::SaslHandshake(_) => "handshake",
            RequestKind::SaslAuthenticate(_) => "authenticate",
            RequestKind::Metadata(_) => "metadata",
            _ => "other",
        };
        seen.requests.lock().unwrap().push((n, what.to_string()));
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
            RequestKind::SaslHandshake(_) => {
                handshakes += 1;
                let code = if handshakes > 1 { ErrorCode::UnsupportedSaslMechanism.code() } else { 0 };
                ResponseKind::SaslHandshake(
                    SaslHandshakeResponse::default().with_error_code(code).with_mechanisms(vec![mechanism.into()]),
                )
            }
            RequestKind::SaslAuthenticate(a) => match behaviour {
                Behaviour::CloseOnAuthenticate => return,
                Behaviour::NoReauthentication { lifetime } => {
                    session_ends = Some(Instant::now() + lifetime);
                    ResponseKind::SaslAuthenticate(
                        SaslAuthenticateResponse::default().with_session_lifetime_ms(lifetime.as_millis() as i64),
                    )
                }
                Behaviour::ForgedScram => {
                    let text = String::from_utf8_lossy(&a.auth_bytes).into_owned();
                    let reply = if let Some(first) = text.strip_prefix("n,,") {
                        // server-first: our nonce extends the client's; any salt and count.
                        let client_nonce = first.split(",r=").nth(1).unwrap_or_default();
                        scram_nonce = format!("{client_nonce}server-part");
                        let salt = base64::engine::general_purpose::STANDARD.encode(b"some salt");
                        format!("r={scram_nonce},s={salt},i=4096")
                    } else {
                        // server-final: a signature made without the salted password.
                        assert!(text.contains(&format!("r={scram_nonce}")), "{text}");
                        format!("v={}", base64::engine::general_purpose::STANDARD.encode([7u8; 64]))
                    };
                    ResponseKind::SaslAuthenticate(
                        SaslAuthenticateResponse::default()
                            .with_auth_bytes(reply.into_bytes().into())
                            .with_session_lifetime_ms(60_000),
                    )
                }
            },
            RequestKind::Metadata(_) => {
                if session_ends.is_some_and(|end| Instant::now() > end) {
                    return; // the session ended: close
                }
                let (host, port) = addr.rsplit_once(':').unwrap();
                ResponseKind::Metadata(MetadataResponse::default().with_brokers(vec![
                    metadata_response::MetadataResponseBroker::default()
                        .with_node_id(1)
                        .with_host(host.to_string())
                        .with_port(port.parse().unwrap()),
                ]))
            }
            _ => return,
        };
        let mut out = BytesMut::new();
        encode_response(&mut out, header.correlation_id, &resp, version).unwrap();
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_scram_signature_that_does_not_verify_is_refused() {
    let s = server(Behaviour::ForgedScram).await;
    let started = Instant::now();
    let config = ClusterConfig {
        dialer: Dialer::new().with_sasl(Sasl::scram(ScramMechanism::Sha512, "alice", "alice-s3cr3t")),
        ..ClusterConfig::default()
    };
    let e = Cluster::connect(&[&s.addr], config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(!e.is_retriable(), "{e:?}");
    match &e {
        Error::Auth { mechanism, message, .. } => {
            assert_eq!(mechanism, "SCRAM-SHA-512");
            assert!(message.contains("signature does not verify"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{e} {e:?}").contains("s3cr3t"));
    // Both SCRAM rounds went, then nothing: no request reaches a server that did not prove it
    // knows the credentials, and the failure is not retried on a new connection.
    assert_eq!(s.seen.count("authenticate"), 2);
    assert_eq!(s.seen.count("metadata"), 0);
    assert_eq!(s.seen.connections.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_broker_that_closes_instead_of_answering_is_an_authentication_error() {
    let s = server(Behaviour::CloseOnAuthenticate).await;
    let e = Dialer::new().with_sasl(Sasl::plain("alice", "wrong-s3cr3t")).dial(&s.addr).await.unwrap_err();
    assert!(!e.is_retriable(), "{e:?}");
    match &e {
        Error::Auth { message, .. } => {
            assert!(message.contains("closed the connection during authentication"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// Sessions of 1 s that cannot be renewed: each connection is retired when its renewal is
/// refused (at 85-95% of the session), before the broker would close it, so requests made
/// all along never fail; they move to fresh connections.
#[tokio::test]
async fn a_broker_that_refuses_reauthentication_gets_fresh_connections_in_time() {
    let s = server(Behaviour::NoReauthentication { lifetime: Duration::from_secs(1) }).await;
    let config = ClusterConfig {
        dialer: Dialer::new().with_sasl(Sasl::plain("alice", "alice-secret")),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::connect(&[&s.addr], config).await.unwrap();
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < Duration::from_millis(3500) {
        let conn = cluster.any_broker(Workload::Admin).await.unwrap();
        conn.metadata(None).await.unwrap();
        requests += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A renewal was tried on each connection that lived long enough, and refused.
    let handshakes = s.seen.count("handshake");
    let connections = s.seen.connections.load(Ordering::Relaxed);
    assert!(connections >= 4, "{connections} connections");
    assert!(handshakes > connections, "{handshakes} handshakes on {connections} connections");
    assert!(requests > 50, "{requests}");
}
