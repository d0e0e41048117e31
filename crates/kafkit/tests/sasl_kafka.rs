//! SASL against Apache Kafka: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (Kafka's
//! built-in validator of unsecured JWTs) on the SASL_PLAINTEXT listener, PLAIN and SCRAM over
//! TLS on SASL_SSL, each producing, fetching and consuming in a group; wrong credentials and
//! refused tokens fail fast with `Error::Auth`; and KIP-368 re-authentication on the REAUTH
//! listener (sessions of `connections.max.reauth.ms` = 3 s) while producing and consuming,
//! watched on the wire through a proxy that reads every SaslHandshake and SaslAuthenticate.

mod common;

use base64::Engine as _;
use bytes::Bytes;
use common::{kafka, unique_topic, users, Listener};
use kafkit::admin::{Client, ScramCredential, ScramMechanism};
use kafkit::cluster::{Cluster, ClusterConfig, Workload};
use kafkit::{
    CommitMode, Dialer, Error, Message, OAuthToken, Reader, ReaderConfig, Sasl, Secret, TlsConfig, TopicConfig,
    TopicPartition, Writer, WriterConfig,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn config(sasl: Sasl, tls: Option<TlsConfig>) -> ClusterConfig {
    let mut dialer = Dialer::new().with_sasl(sasl);
    if let Some(t) = tls {
        dialer = dialer.with_tls(t);
    }
    ClusterConfig { dialer, ..ClusterConfig::default() }
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An unsecured JWT (RFC 7519 §6) as Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler`
/// takes it: header `{"alg":"none"}`, the claims, an empty signature.
fn unsecured_jwt(claims: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims))
}

/// A token for `sub`, issued now, valid for an hour.
fn token_for(sub: &str) -> String {
    let now = now_secs();
    unsecured_jwt(&format!(r#"{{"sub":"{sub}","iat":{now},"exp":{}}}"#, now + 3600))
}

/// OAUTHBEARER with a fresh token for `sub` at every authentication (the application's
/// `TokenProvider`: kafkit makes no tokens), with a SASL extension (KIP-342), which Kafka's
/// unsecured validator accepts.
fn oauth(sub: &'static str) -> Sasl {
    Sasl::oauthbearer(move || {
        let token =
            OAuthToken { value: Secret::new(token_for(sub)), extensions: vec![("tenant".into(), "blue".into())] };
        async move { Ok(token) }
    })
}

/// OAUTHBEARER with this one token.
fn oauth_fixed(token: String) -> Sasl {
    Sasl::oauthbearer(move || {
        let token = OAuthToken { value: Secret::new(token.clone()), extensions: Vec::new() };
        async move { Ok(token) }
    })
}

/// alice (a super user) with each mechanism.
fn alice_with_every_mechanism() -> Vec<Sasl> {
    let (user, pw) = users::ALICE;
    vec![
        Sasl::plain(user, pw),
        Sasl::scram(ScramMechanism::Sha256, user, pw),
        Sasl::scram(ScramMechanism::Sha512, user, pw),
        oauth("alice"),
    ]
}

/// Over `listener`: the admin client creates a topic, one connection authenticates once, a
/// `Writer` writes 100 records, a `Reader` fetches them from partition 0 and a group member
/// consumes them all.
async fn produce_fetch_and_consume_in_a_group(listener: Listener, sasl: Sasl, tls: Option<TlsConfig>) {
    let mechanism = sasl.mechanism();
    let addr = kafka().bootstrap_on(listener);
    let cfg = config(sasl.clone(), tls.clone());
    let topic = unique_topic("sasl");
    let admin = Client::new(&[&addr], cfg.clone()).await.unwrap();
    admin.create_topics(&[TopicConfig::new(&topic, 1)], false).await.unwrap()[&topic].as_ref().unwrap();
    common::wait_ready(&kafka().addr(), &topic, 1).await;
    let conn = cfg.dialer.dial(&addr).await.unwrap();
    assert_eq!(conn.authentications(), 1, "{mechanism}");

    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic).with_cluster(cfg.clone())).await.unwrap();
    let msgs: Vec<Message> =
        (0..100).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    w.close().await.unwrap();
    let mut r = Reader::new(&[&addr], ReaderConfig::new(&topic, 0).with_cluster(cfg.clone())).await.unwrap();
    for i in 0..100 {
        let m = tokio::time::timeout(Duration::from_secs(20), r.read_message()).await.expect("a record").unwrap();
        assert_eq!(m.value.as_deref(), Some(format!("v{i}").as_bytes()), "{mechanism}");
    }
    let group = unique_topic("sasl-g");
    let gc = ReaderConfig::group(&group, [topic.clone()])
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_millis(500))
        .with_commit(CommitMode::OnRead)
        .with_cluster(cfg);
    let mut g = Reader::new(&[&addr], gc).await.unwrap();
    for i in 0..100 {
        let m = tokio::time::timeout(Duration::from_secs(30), g.read_message()).await.expect("a group record").unwrap();
        assert_eq!(m.value.as_deref(), Some(format!("v{i}").as_bytes()), "{mechanism}");
    }
    g.close().await.unwrap();
    // What the member committed is there for the group.
    let committed = admin.fetch_offsets(&group, None).await.unwrap();
    assert_eq!(committed.get(&TopicPartition::new(&topic, 0)), Some(&100), "{mechanism}");
}

#[tokio::test]
async fn plain_produces_fetches_and_consumes_in_a_group() {
    produce_fetch_and_consume_in_a_group(Listener::SaslPlaintext, alice_with_every_mechanism().remove(0), None).await;
}

#[tokio::test]
async fn scram_sha_256_produces_fetches_and_consumes_in_a_group() {
    produce_fetch_and_consume_in_a_group(Listener::SaslPlaintext, alice_with_every_mechanism().remove(1), None).await;
}

#[tokio::test]
async fn scram_sha_512_produces_fetches_and_consumes_in_a_group() {
    produce_fetch_and_consume_in_a_group(Listener::SaslPlaintext, alice_with_every_mechanism().remove(2), None).await;
}

#[tokio::test]
async fn oauthbearer_produces_fetches_and_consumes_in_a_group() {
    produce_fetch_and_consume_in_a_group(Listener::SaslPlaintext, oauth("alice"), None).await;
}

#[tokio::test]
async fn plain_and_scram_over_tls() {
    let tls = TlsConfig::new().with_ca_file(kafka().tls().ca).unwrap();
    let (user, pw) = users::ALICE;
    produce_fetch_and_consume_in_a_group(Listener::SaslSsl, Sasl::plain(user, pw), Some(tls.clone())).await;
    produce_fetch_and_consume_in_a_group(Listener::SaslSsl, Sasl::scram(ScramMechanism::Sha512, user, pw), Some(tls))
        .await;
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

/// Connects with `sasl` and expects `Error::Auth` within 3 s, not retriable, naming no
/// secret; returns its message and how long it took.
async fn refused(addr: &str, sasl: Sasl, secret: &str) -> (String, Duration) {
    let mechanism = sasl.mechanism();
    let started = Instant::now();
    let e = Cluster::connect(&[addr], config(sasl, None)).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{mechanism}: {e} after {took:?}");
    assert!(!e.is_retriable(), "{e:?}");
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains(secret), "{shown}");
    }
    match e {
        Error::Auth { mechanism: m, message, .. } => {
            assert_eq!(m, mechanism);
            (message, took)
        }
        other => panic!("{mechanism}: expected Error::Auth, got {other:?}"),
    }
}

/// Creates `user` with only a SCRAM-SHA-256 credential (AlterUserScramCredentials, KIP-554)
/// and waits until the broker authenticates it.
async fn scram_256_only_user(user: &str, password: &str) {
    let admin = Client::new(&[&kafka().addr()], ClusterConfig::default()).await.unwrap();
    let cred = ScramCredential {
        user: user.into(),
        mechanism: ScramMechanism::Sha256,
        iterations: 4096,
        password: password.into(),
    };
    admin.alter_user_scram_credentials(&[cred], &[]).await.unwrap()[user].as_ref().unwrap();
    let addr = kafka().bootstrap_on(Listener::SaslPlaintext);
    let altered = Instant::now();
    let deadline = altered + Duration::from_secs(15);
    loop {
        match Dialer::new().with_sasl(Sasl::scram(ScramMechanism::Sha256, user, password)).dial(&addr).await {
            Ok(_) => {
                eprintln!(
                    "a new SCRAM credential authenticated {:?} after AlterUserScramCredentials",
                    altered.elapsed()
                );
                return;
            }
            Err(e) if Instant::now() < deadline => {
                assert!(matches!(e, Error::Auth { .. }), "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the new user never authenticated: {e}"),
        }
    }
}

#[tokio::test]
async fn wrong_credentials_fail_fast_once_and_name_no_secret() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let addr = kafka().bootstrap_on(Listener::SaslPlaintext);
    let carol = unique_topic("carol");
    scram_256_only_user(&carol, "carol-s3cr3t-pw").await;
    let (alice, _) = users::ALICE;
    let cases: Vec<(&str, Sasl, &str)> = vec![
        ("PLAIN, a wrong password", Sasl::plain(alice, "wrong-s3cr3t"), "Invalid username or password"),
        ("PLAIN, an unknown user", Sasl::plain("mallory", "mallory-s3cr3t"), "Invalid username or password"),
        ("PLAIN, a SCRAM-only user", Sasl::plain(&carol, "carol-s3cr3t-pw"), "Invalid username or password"),
        (
            "SCRAM-SHA-512, a wrong password",
            Sasl::scram(ScramMechanism::Sha512, alice, "wrong-s3cr3t"),
            "invalid credentials with SASL mechanism SCRAM-SHA-512",
        ),
        (
            "SCRAM-SHA-256, an unknown user",
            Sasl::scram(ScramMechanism::Sha256, "mallory", "mallory-s3cr3t"),
            "invalid credentials with SASL mechanism SCRAM-SHA-256",
        ),
        (
            "SCRAM-SHA-512, a user with only a SCRAM-SHA-256 credential",
            Sasl::scram(ScramMechanism::Sha512, &carol, "carol-s3cr3t-pw"),
            "invalid credentials with SASL mechanism SCRAM-SHA-512",
        ),
    ];
    for (what, sasl, says) in cases {
        let (message, took) = refused(&addr, sasl, "s3cr3t").await;
        assert!(message.contains("SASL_AUTHENTICATION_FAILED") && message.contains(says), "{what}: {message}");
        eprintln!("{what}: refused in {took:?}: {message}");
    }
    // A Writer and a Reader fail the same way, at once.
    let bad = Sasl::scram(ScramMechanism::Sha256, alice, "wrong-s3cr3t");
    let started = Instant::now();
    let e = Writer::new(&[&addr], WriterConfig::default().with_topic("t").with_cluster(config(bad.clone(), None)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    let e = Reader::new(&[&addr], ReaderConfig::new("t", 0).with_cluster(config(bad, None))).await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // SASL to the PLAINTEXT listener, which does not authenticate: Kafka answers SaslHandshake
    // with ILLEGAL_SASL_STATE.
    let (message, _) = refused(&kafka().addr(), Sasl::plain(alice, "any-s3cr3t"), "s3cr3t").await;
    assert!(message.contains("does not authenticate with SASL"), "{message}");
    // Secrets in no log line either, at any level (the lines are there: failures are logged).
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("SASL_AUTHENTICATION_FAILED"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    let admin = Client::new(&[&kafka().addr()], ClusterConfig::default()).await.unwrap();
    admin.alter_user_scram_credentials(&[], &[(&carol, ScramMechanism::Sha256)]).await.unwrap();
}

#[tokio::test]
async fn expired_and_malformed_tokens_are_refused() {
    let addr = kafka().bootstrap_on(Listener::SaslPlaintext);
    let now = now_secs();
    let cases = [
        ("expired", unsecured_jwt(&format!(r#"{{"sub":"alice","iat":{},"exp":{}}}"#, now - 7200, now - 3600))),
        ("not a JWT", "not-a-jwt".to_string()),
        ("no expiry", unsecured_jwt(r#"{"sub":"alice"}"#)),
        ("no subject", unsecured_jwt(&format!(r#"{{"iat":{now},"exp":{}}}"#, now + 3600))),
        ("signed", format!("{}sig", token_for("alice").replace("eyJhbGciOiJub25lIn0", "eyJhbGciOiJIUzI1NiJ9"))),
    ];
    for (what, token) in cases {
        let secret = token.clone();
        let (message, took) = refused(&addr, oauth_fixed(token), &secret).await;
        assert!(
            message.contains("the broker refused the token") && message.contains("invalid_token"),
            "{what}: {message}"
        );
        eprintln!("OAUTHBEARER, {what}: refused in {took:?}: {message}");
    }
}

/// A mechanism the listener does not enable: a cluster of its own that enables only
/// SCRAM-SHA-512.
#[tokio::test]
async fn a_mechanism_the_broker_does_not_enable_is_named() {
    let c = common::Cluster::start(common::ClusterOptions::default().set("sasl.enabled.mechanisms", "SCRAM-SHA-512"));
    let addr = c.bootstrap_on(Listener::SaslPlaintext);
    let (alice, pw) = users::ALICE;
    for sasl in [Sasl::plain(alice, pw), Sasl::scram(ScramMechanism::Sha256, alice, pw), oauth("alice")] {
        let started = Instant::now();
        let e = Dialer::new().with_sasl(sasl).dial(&addr).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        let shown = e.to_string();
        assert!(matches!(e, Error::Auth { .. }) && !e.is_retriable(), "{e:?}");
        assert!(shown.contains("does not enable it; it enables SCRAM-SHA-512"), "{shown}");
    }
    Dialer::new().with_sasl(Sasl::scram(ScramMechanism::Sha512, alice, pw)).dial(&addr).await.unwrap();
}

/// What a proxy saw of the SASL frames on one connection.
#[derive(Debug, Default)]
struct Wire {
    /// When (since the connection began) each SaslHandshake request went through.
    handshakes: Vec<Duration>,
    /// When each successful SaslAuthenticate response that granted a session went through,
    /// and the session lifetime it granted, in milliseconds.
    sessions: Vec<(Duration, i64)>,
    /// The broker closed the connection (before the client did).
    closed_by_broker: bool,
}

/// A TCP proxy from a port of its own to `upstream` that reads every frame: requests for
/// SaslHandshake (API key 17) and SaslAuthenticate (36), and the responses to the latter.
async fn sasl_proxy(upstream: String) -> (String, Arc<Mutex<Vec<Wire>>>) {
    use kafkit::protocol::messages::{ResponseHeader, SaslAuthenticateResponse};
    use kafkit::protocol::{ApiVersion, Message as _};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Arc<Mutex<Vec<Wire>>> = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
            let began = Instant::now();
            let n = {
                let mut v = s.lock().unwrap();
                v.push(Wire::default());
                v.len() - 1
            };
            // Correlation id and version of each SaslAuthenticate request, in order.
            let auths: Arc<Mutex<std::collections::VecDeque<(i32, i16)>>> = Arc::default();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let (s1, a1) = (s.clone(), auths.clone());
            tokio::spawn(async move {
                let mut buf = bytes::BytesMut::new();
                loop {
                    if cr.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    while let Ok(Some(frame)) = kafkit::protocol::frame::split_frame(&mut buf, 1 << 30) {
                        let key = i16::from_be_bytes([frame[0], frame[1]]);
                        let version = i16::from_be_bytes([frame[2], frame[3]]);
                        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                        match key {
                            17 => s1.lock().unwrap()[n].handshakes.push(began.elapsed()),
                            36 => a1.lock().unwrap().push_back((corr, version)),
                            _ => {}
                        }
                        let size = (frame.len() as i32).to_be_bytes();
                        if sw.write_all(&size).await.is_err() || sw.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                }
            });
            let s2 = s.clone();
            tokio::spawn(async move {
                let mut buf = bytes::BytesMut::new();
                loop {
                    if sr.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        s2.lock().unwrap()[n].closed_by_broker = true;
                        return;
                    }
                    while let Ok(Some(frame)) = kafkit::protocol::frame::split_frame(&mut buf, 1 << 30) {
                        let corr = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                        let auth = {
                            let mut a = auths.lock().unwrap();
                            if a.front().map(|f| f.0) == Some(corr) {
                                a.pop_front()
                            } else {
                                None
                            }
                        };
                        if let Some((_, v)) = auth {
                            let mut body = frame.clone();
                            let hv = if v >= 2 { 1 } else { 0 };
                            ResponseHeader::decode(&mut body, ApiVersion(hv)).unwrap();
                            let r = SaslAuthenticateResponse::decode(&mut body, ApiVersion(v)).unwrap();
                            if r.error_code == 0 && r.session_lifetime_ms > 0 {
                                s2.lock().unwrap()[n].sessions.push((began.elapsed(), r.session_lifetime_ms));
                            }
                        }
                        let size = (frame.len() as i32).to_be_bytes();
                        if cw.write_all(&size).await.is_err() || cw.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The connections of `cluster` for these workloads to broker 1, as they are (asking for one
/// that is not open would dial it: call this after reading `dials`).
async fn conns(cluster: &Cluster, workloads: &[Workload]) -> Vec<(Workload, kafkit::Conn)> {
    let mut out = Vec::new();
    for w in workloads {
        out.push((*w, cluster.broker(1, *w).await.unwrap()));
    }
    out
}

/// KIP-368 on the REAUTH listener (sessions of 3 s): for ~15 s a `Writer` produces and a
/// group member consumes, while a bare connection sends a request every 20 ms through a
/// proxy that watches its SASL frames. Every session is renewed at 85-95% of the 3 s the
/// broker grants, over the same connections, with requests in flight: nothing lost, nothing
/// duplicated, nothing retried, no connection closed.
async fn reauthenticates_while_producing_and_consuming(sasl: Sasl) {
    // kafkit logs every connection it closes, with the reason, and every re-authentication.
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("kafkit=debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mechanism = sasl.mechanism();
    let addr = kafka().bootstrap_on(Listener::Reauth);
    let cfg = config(sasl.clone(), None);
    let topic = unique_topic("reauth");
    common::create_topics(&kafka().addr(), &[TopicConfig::new(&topic, 3)]).await;

    let (proxy, wire) = sasl_proxy(addr.clone()).await;
    let bare = cfg.dialer.dial(&proxy).await.unwrap();
    let pinger = {
        let bare = bare.clone();
        tokio::spawn(async move {
            let mut sent = 0u32;
            loop {
                // Two at a time, so a request is always queued when a re-authentication begins.
                let (a, b) = tokio::join!(bare.metadata(None), bare.metadata(None));
                a.unwrap();
                b.unwrap();
                sent += 2;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if sent >= 100_000 {
                    return sent;
                }
            }
        })
    };

    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic).with_cluster(cfg.clone())).await.unwrap();
    let rc = Cluster::connect(&[&addr], cfg.clone()).await.unwrap();
    let group = unique_topic("reauth-g");
    let gc = ReaderConfig::group(&group, [topic.clone()])
        .with_session_timeout(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_millis(500))
        .with_commit(CommitMode::Interval(Duration::from_millis(700)));
    let mut r = Reader::with_cluster(rc.clone(), gc).await.unwrap();
    let got: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let consumer = {
        let got = got.clone();
        tokio::spawn(async move {
            loop {
                match r.read_message().await {
                    Ok(m) => {
                        let v = String::from_utf8(m.value.unwrap().to_vec()).unwrap();
                        *got.lock().unwrap().entry(v).or_default() += 1;
                    }
                    Err(e) => return e,
                }
            }
        })
    };

    let started = Instant::now();
    let mut written = 0usize;
    while started.elapsed() < Duration::from_secs(15) {
        let batch: Vec<Message> = (written..written + 20)
            .map(|i| Message::new(Some(Bytes::from(format!("k{}", i % 7))), Some(Bytes::from(format!("v{i}")))))
            .collect();
        w.write_messages(batch).await.unwrap();
        written += 20;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().len() < written {
        assert!(!consumer.is_finished(), "{mechanism}: the reader failed: {:?}", consumer.await);
        assert!(Instant::now() < deadline, "{mechanism}: read {} of {written}", got.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = started.elapsed();
    // No connection was closed (by the broker or by kafkit) and no re-authentication failed.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let closed: Vec<&str> =
        text.lines().filter(|l| l.contains("closing connection") || l.contains("refused")).collect();
    assert!(closed.is_empty(), "{mechanism}: {closed:#?}");
    let reauths = text.lines().filter(|l| l.contains("re-authenticated")).count();
    let dials = (w.cluster().dials(), rc.dials());

    // Nothing lost, nothing duplicated, nothing retried.
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), written, "{mechanism}");
    assert!(got.values().all(|&n| n == 1), "{mechanism}: a record was read twice");
    assert!((0..written).all(|i| got.contains_key(&format!("v{i}"))));
    let ws = w.stats();
    assert_eq!((ws.errors, ws.retries), (0, 0), "{mechanism}: {ws:?}");

    // Every connection re-authenticated, again and again, and is still open.
    let writer_conns = conns(w.cluster(), &[Workload::Produce, Workload::ProduceLane(1)]).await;
    let reader_conns = conns(&rc, &[Workload::Fetch, Workload::Group]).await;
    let mut counts = Vec::new();
    for (workload, c) in writer_conns.iter().chain(&reader_conns) {
        assert!(!c.is_closed(), "{mechanism}: {workload:?}");
        assert!(c.authentications() >= 4, "{mechanism}: {workload:?} authenticated {} times", c.authentications());
        counts.push((*workload, c.authentications()));
    }
    assert_eq!((w.cluster().dials(), rc.dials()), dials, "those were the connections in use");

    // On the wire: the broker granted 3 s each time, the client began each renewal at 85-95%
    // of the session (2.55-2.85 s after the broker's answer), and the broker never closed the
    // connection.
    pinger.abort();
    let wire = wire.lock().unwrap();
    assert_eq!(wire.len(), 1);
    let one = &wire[0];
    assert!(!one.closed_by_broker, "{mechanism}: the broker closed the connection: {one:?}");
    assert!(!bare.is_closed());
    assert!(one.sessions.iter().all(|s| s.1 == 3000), "{mechanism}: {one:?}");
    assert!(one.handshakes.len() >= 6, "{mechanism}: {one:?}");
    // (The last handshake's exchange may still be under way.)
    assert!(one.sessions.len() + 1 >= one.handshakes.len(), "{mechanism}: every renewal succeeded: {one:?}");
    let into_session: Vec<Duration> = one.handshakes[1..].iter().zip(&one.sessions).map(|(h, s)| *h - s.0).collect();
    assert!(
        into_session.iter().all(|d| *d >= Duration::from_millis(2540) && *d < Duration::from_millis(2950)),
        "{mechanism}: renewals began {into_session:?} into their sessions"
    );
    assert!(bare.authentications() as usize >= one.sessions.len());
    assert!(!consumer.is_finished());
    consumer.abort();
    eprintln!(
        "{mechanism}: {written} records in {elapsed:?}, each read once; {reauths} re-authentications on {} connections \
         (writer's, reader's: {dials:?}); authentications per connection {counts:?}; \
         bare connection: {} sessions of 3000 ms, each renewal begun {into_session:?} into its session",
        dials.0 + dials.1 + 1,
        one.sessions.len()
    );
}

#[tokio::test]
async fn plain_reauthenticates_while_producing_and_consuming() {
    let (user, pw) = users::ALICE;
    reauthenticates_while_producing_and_consuming(Sasl::plain(user, pw)).await;
}

#[tokio::test]
async fn scram_reauthenticates_while_producing_and_consuming() {
    let (user, pw) = users::ALICE;
    reauthenticates_while_producing_and_consuming(Sasl::scram(ScramMechanism::Sha512, user, pw)).await;
}

#[tokio::test]
async fn oauthbearer_reauthenticates_while_producing_and_consuming() {
    reauthenticates_while_producing_and_consuming(oauth("alice")).await;
}
