//! SASL SCRAM-SHA-256 and SCRAM-SHA-512 against a real broker with authentication on:
//! Tansu 0.6.0 built from crates.io (`scripts/broker.sh path-auth`) on SQLite storage, with
//! users made by its own `tansu user create`. It grants 60 s sessions, so re-authentication
//! (KIP-368) is watched across one.

mod authbroker;
mod common;
mod tlsutil;

use authbroker::{auth_broker, auth_broker_advertising, auth_broker_advertising_host};
use bytes::Bytes;
use common::{free_port, unique_topic};
use kafkit::admin::ScramMechanism;
use kafkit::cluster::{Cluster, ClusterConfig};
use kafkit::{CommitMode, Dialer, Error, Message, Reader, ReaderConfig, Sasl, TopicConfig, Writer, WriterConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(sasl: Sasl) -> ClusterConfig {
    ClusterConfig { dialer: Dialer::new().with_sasl(sasl), ..ClusterConfig::default() }
}

#[tokio::test]
async fn scram_256_and_512_produce_fetch_and_consume_in_a_group() {
    let b = auth_broker();
    for sasl in [
        Sasl::scram(ScramMechanism::Sha256, "alice", "alice-pw-256"),
        Sasl::scram(ScramMechanism::Sha512, "bob", "bob-pw-512"),
    ] {
        let mechanism = sasl.mechanism();
        let topic = unique_topic("scram");
        let conn = Dialer::new().with_sasl(sasl.clone()).dial(&b.addr).await.unwrap();
        assert_eq!(conn.authentications(), 1);
        conn.create_topics(&[TopicConfig::new(&topic, 1)]).await.unwrap();
        let w = Writer::new(&[&b.addr], WriterConfig::default().with_topic(&topic).with_cluster(config(sasl.clone())))
            .await
            .unwrap();
        let msgs: Vec<Message> =
            (0..50).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}"))))).collect();
        w.write_messages(msgs).await.unwrap();
        w.close().await.unwrap();
        let mut r =
            Reader::new(&[&b.addr], ReaderConfig::new(&topic, 0).with_cluster(config(sasl.clone()))).await.unwrap();
        for i in 0..50 {
            assert_eq!(
                r.read_message().await.unwrap().value.as_deref(),
                Some(format!("v{i}").as_bytes()),
                "{mechanism}"
            );
        }
        // A consumer group over the authenticated connections.
        let group = unique_topic("scram-g");
        let gc = ReaderConfig::group(&group, [topic.clone()])
            .with_session_timeout(Duration::from_secs(6))
            .with_heartbeat_interval(Duration::from_millis(500))
            .with_commit(CommitMode::OnRead)
            .with_cluster(config(sasl.clone()));
        let mut g = Reader::new(&[&b.addr], gc).await.unwrap();
        for _ in 0..50 {
            tokio::time::timeout(Duration::from_secs(30), g.read_message()).await.expect("a group message").unwrap();
        }
        g.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_wrong_password_fails_fast_with_an_authentication_error() {
    let b = auth_broker();
    for sasl in [
        Sasl::scram(ScramMechanism::Sha512, "bob", "not-bobs-s3cr3t"),
        Sasl::scram(ScramMechanism::Sha256, "bob", "bob-pw-512"), // bob has no SHA-256 credential
        Sasl::scram(ScramMechanism::Sha512, "mallory", "whatever-s3cr3t"),
    ] {
        let started = Instant::now();
        let e = Cluster::connect(&[&b.addr], config(sasl.clone())).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert!(matches!(e, Error::Auth { .. }), "{e:?}");
        assert!(!e.is_retriable());
        assert!(!format!("{e} {e:?}").contains("s3cr3t"), "{e:?}");
        let e = Writer::new(&[&b.addr], WriterConfig::default().with_topic("t").with_cluster(config(sasl)))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    }
    // Without SASL the broker does not serve.
    assert!(Cluster::connect(&[&b.addr], ClusterConfig::default()).await.is_err());
}

/// A TCP proxy on `port` that records, per client connection, when (after the connection
/// began) each SaslHandshake request (API key 17) went through.
async fn handshake_proxy(port: u16, upstream: String) -> Arc<Mutex<Vec<Vec<Duration>>>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let seen: Arc<Mutex<Vec<Vec<Duration>>>> = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
            let began = Instant::now();
            let n = {
                let mut v = s.lock().unwrap();
                v.push(Vec::new());
                v.len() - 1
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = bytes::BytesMut::new();
                loop {
                    if cr.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    while buf.len() >= 6 {
                        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                        if buf.len() < 4 + size {
                            break;
                        }
                        if i16::from_be_bytes([buf[4], buf[5]]) == 17 {
                            s.lock().unwrap()[n].push(began.elapsed());
                        }
                        let frame = buf.split_to(4 + size);
                        if sw.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    seen
}

/// Tansu 0.6.0 grants 60 s sessions and closes a connection when its session ends, but
/// refuses a second SaslHandshake on a connection (its handshake runs only in the
/// connection's initial state), so re-authentication cannot succeed there. What this shows:
/// every connection starts re-authenticating at 85-95% of its session (seen on the wire);
/// when refused, the connection is retired and requests move to a fresh, authenticated
/// connection; a producer and a consumer working across two sessions lose nothing and see
/// no error. (Re-authentication that a broker accepts is checked at the wire level in
/// sasl.rs.)
#[tokio::test]
async fn sessions_end_after_60_seconds_and_nothing_fails() {
    let proxy_port = free_port();
    let b = auth_broker_advertising(Some(proxy_port));
    let handshakes = handshake_proxy(proxy_port, b.addr.clone()).await;
    let proxy = format!("127.0.0.1:{proxy_port}");
    let sasl = Sasl::scram(ScramMechanism::Sha512, "bob", "bob-pw-512");
    let topic = unique_topic("scram-long");
    Dialer::new()
        .with_sasl(sasl.clone())
        .dial(&proxy)
        .await
        .unwrap()
        .create_topics(&[TopicConfig::new(&topic, 1)])
        .await
        .unwrap();
    let w = Writer::new(&[&proxy], WriterConfig::default().with_topic(&topic).with_cluster(config(sasl.clone())))
        .await
        .unwrap();
    let mut r = Reader::new(&[&proxy], ReaderConfig::new(&topic, 0).with_cluster(config(sasl.clone()))).await.unwrap();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(70) {
        w.write_messages(vec![Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}"))))]).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(20), r.read_message()).await.expect("a message").unwrap();
        assert_eq!(m.value.as_deref(), Some(format!("v{i}").as_bytes()));
        i += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen = handshakes.lock().unwrap().clone();
    // Each long-lived connection tried to re-authenticate at 51-57 s of its 60 s session.
    let reauth: Vec<Duration> = seen.iter().filter_map(|c| c.get(1).copied()).collect();
    assert!(!reauth.is_empty(), "no re-authentication attempt: {seen:?}");
    assert!(reauth.iter().all(|t| *t > Duration::from_secs(50) && *t < Duration::from_secs(58)), "{seen:?}");
    // And new connections took over after the sessions ended.
    assert!(seen.iter().filter(|c| !c.is_empty()).count() > reauth.len(), "{seen:?}");
    eprintln!("{i} records across {} connections; handshakes: {seen:?}", seen.len());
}

/// SCRAM over TLS: stunnel in front of the authenticating broker.
#[tokio::test]
async fn scram_over_tls() {
    let tls_port = free_port();
    let b = auth_broker_advertising_host(&format!("localhost:{tls_port}"));
    let broker_port: u16 = b.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let pki = tlsutil::pki();
    let _tunnel = tlsutil::stunnel(&pki, &pki.server, tls_port, broker_port, None);
    let tls = kafkit::TlsConfig::new().with_ca_pem(pki.ca.as_bytes()).unwrap();
    let sasl = Sasl::scram(ScramMechanism::Sha256, "alice", "alice-pw-256");
    let addr = format!("localhost:{tls_port}");
    let dialer = Dialer::new().with_tls(tls).with_sasl(sasl);
    let conn = dialer.dial(&addr).await.unwrap();
    assert_eq!(conn.authentications(), 1);
    let topic = unique_topic("scram-tls");
    conn.create_topics(&[TopicConfig::new(&topic, 1)]).await.unwrap();
    let cluster = ClusterConfig { dialer, ..ClusterConfig::default() };
    let w =
        Writer::new(&[&addr], WriterConfig::default().with_topic(&topic).with_cluster(cluster.clone())).await.unwrap();
    w.write_messages(vec![Message::new(None::<Bytes>, Some(Bytes::from_static(b"sealed")))]).await.unwrap();
    let mut r = Reader::new(&[&addr], ReaderConfig::new(&topic, 0).with_cluster(cluster)).await.unwrap();
    assert_eq!(r.read_message().await.unwrap().value.as_deref(), Some(&b"sealed"[..]));
    let _ = std::fs::remove_dir_all(&pki.dir);
}
