//! TLS against Apache Kafka's SSL listener (the broker's certificate, the cluster's CA) and
//! mutual TLS on its MTLS listener (a client certificate required): the `Conn`, a `Writer`,
//! a `Reader` and the admin `Client` work over it; a wrong CA, a host name the certificate does
//! not carry, plaintext to the TLS port and TLS to the plaintext port, a client certificate the
//! broker refuses and no client certificate each fail fast with a clear `Error::Tls` (nothing
//! falls back to plaintext). An expired certificate and SNI are checked against an in-process
//! rustls server with certificates made here (rcgen): that is TLS verification, not Kafka.

mod common;

use bytes::Bytes;
use common::{kafka, unique_topic, Listener};
use kafkit::admin::Client;
use kafkit::{
    ClusterConfig, Dialer, Error, Message, Reader, ReaderConfig, TlsConfig, TopicConfig, Writer, WriterConfig,
};
use std::time::{Duration, Instant};

/// Verifies against the cluster's CA.
fn trusting_the_cluster() -> TlsConfig {
    TlsConfig::new().with_ca_file(kafka().tls().ca).unwrap()
}

/// As [`trusting_the_cluster`], presenting the client certificate the MTLS listener accepts.
fn with_client_cert() -> TlsConfig {
    let f = kafka().tls();
    trusting_the_cluster().with_client_cert_files(f.client_cert, f.client_key).unwrap()
}

fn cluster(tls: TlsConfig) -> ClusterConfig {
    ClusterConfig { dialer: Dialer::new().with_tls(tls), ..ClusterConfig::default() }
}

/// The reason of an `Error::Tls`, and that it came within `within`.
async fn tls_error<T: std::fmt::Debug>(
    within: Duration,
    f: impl std::future::Future<Output = kafkit::Result<T>>,
) -> String {
    let started = Instant::now();
    let e = f.await.unwrap_err();
    let took = started.elapsed();
    assert!(took < within, "{e} took {took:?}");
    assert!(!e.is_retriable(), "{e:?}");
    match e {
        Error::Tls { reason, .. } => {
            eprintln!("refused in {took:?}: {reason}");
            reason
        }
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

/// Writes `n` records through a `Writer` and reads them back with a `Reader`, both over `tls`
/// to `listener`; the admin `Client` creates the topic there and sees the brokers' addresses on
/// that listener.
async fn writer_reader_and_admin_over(listener: Listener, tls: TlsConfig, n: usize) {
    let addr = kafka().bootstrap_on(listener);
    let topic = unique_topic("tls");
    let admin = Client::new(&[&addr], cluster(tls.clone())).await.unwrap();
    let created = admin.create_topics(&[TopicConfig::new(&topic, 2)], false).await.unwrap();
    created[&topic].as_ref().unwrap();
    let described = admin.describe_cluster().await.unwrap();
    let advertised: Vec<String> = described.brokers.iter().map(|b| format!("{}:{}", b.host, b.port)).collect();
    assert_eq!(advertised, kafka().addrs_on(listener), "metadata over {listener:?} names that listener");
    common::wait_ready(&kafka().addr(), &topic, 2).await;

    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic).with_cluster(cluster(tls.clone())))
        .await
        .unwrap();
    let msgs: Vec<Message> =
        (0..n).map(|i| Message::new(Some(Bytes::from(format!("k{i}"))), Some(Bytes::from(format!("v{i}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    w.close().await.unwrap();
    let parts = (0..2).map(|p| kafkit::TopicPartition::new(&topic, p));
    let mut r = Reader::new(&[&addr], ReaderConfig::assign(parts).with_cluster(cluster(tls))).await.unwrap();
    let mut got = std::collections::BTreeSet::new();
    while got.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), r.read_message()).await.expect("a record").unwrap();
        let v = String::from_utf8(m.value.unwrap().to_vec()).unwrap();
        assert!(got.insert(v.clone()), "{v} read twice");
    }
    assert_eq!(got, (0..n).map(|i| format!("v{i}")).collect());
    r.close().await.unwrap();
    admin.delete_topics(&[&topic]).await.unwrap()[&topic].as_ref().unwrap();
}

#[tokio::test]
async fn tls_carries_produce_fetch_a_writer_a_reader_and_the_admin_client() {
    let addr = kafka().bootstrap_on(Listener::Ssl);
    // One connection: produce a batch, fetch it back.
    let topic = unique_topic("tls-conn");
    common::create_topics(&kafka().addr(), &[TopicConfig::new(&topic, 1)]).await;
    let mut pc = Dialer::new().with_tls(trusting_the_cluster()).dial_leader(&addr, &topic, 0).await.unwrap();
    let sent: Vec<Message> = (0..50).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("c{i}"))))).collect();
    pc.write_messages(&sent).await.unwrap();
    let mut read = Vec::new();
    while read.len() < 50 {
        let batch = pc.read_batch(1, 1 << 20).await.unwrap();
        read.extend(batch.messages.into_iter().map(|m| m.value.unwrap()));
    }
    assert_eq!(read, sent.iter().map(|m| m.value.clone().unwrap()).collect::<Vec<_>>());

    writer_reader_and_admin_over(Listener::Ssl, trusting_the_cluster(), 500).await;
}

#[tokio::test]
async fn every_tls_mistake_fails_fast_with_a_clear_tls_error() {
    let ssl = kafka().bootstrap_on(Listener::Ssl);
    let fast = Duration::from_secs(3);
    // A CA that signed neither the broker's certificate nor anything in its chain.
    let wrong_ca = TlsConfig::new().with_ca_file(kafka().tls().other_ca).unwrap();
    let e = tls_error(fast, Dialer::new().with_tls(wrong_ca.clone()).dial(&ssl)).await;
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    // The same through a Writer: refused at once, not retried until a timeout.
    let started = Instant::now();
    let w = Writer::new(&[&ssl], WriterConfig::default().with_topic("any").with_cluster(cluster(wrong_ca))).await;
    assert!(matches!(w, Err(Error::Tls { .. })), "{:?}", w.err());
    assert!(started.elapsed() < fast, "{:?}", started.elapsed());

    // A name the certificate does not carry (it names localhost and 127.0.0.1).
    let renamed = trusting_the_cluster().with_server_name("kafka.example.com");
    let e = tls_error(fast, Dialer::new().with_tls(renamed).dial(&ssl)).await;
    assert!(e.contains("does not name this host"), "{e}");
    // And the names it does carry both verify: the IP address advertised, and localhost.
    let port = ssl.rsplit_once(':').unwrap().1;
    for host in ["127.0.0.1", "localhost"] {
        let conn = Dialer::new().with_tls(trusting_the_cluster()).dial(&format!("{host}:{port}")).await.unwrap();
        assert!(!conn.metadata(None).await.unwrap().brokers.is_empty());
    }

    // TLS to the plaintext listener: the broker reads the ClientHello as a request frame far
    // over its size limit and closes.
    let plain = kafka().bootstrap_on(Listener::Plaintext);
    let e = tls_error(fast, Dialer::new().with_tls(trusting_the_cluster()).dial(&plain)).await;
    assert!(e.contains("does this port speak TLS"), "{e}");
    // Plaintext to the TLS listener: the broker answers with a TLS alert record, never a
    // Kafka response; no request goes through.
    let e = tls_error(fast, Dialer::new().dial(&ssl)).await;
    assert!(e.contains("speaks TLS"), "{e}");
}

#[tokio::test]
async fn mutual_tls_works_with_the_client_certificate_and_refusals_are_named() {
    writer_reader_and_admin_over(Listener::Mtls, with_client_cert(), 200).await;
    let mtls = kafka().bootstrap_on(Listener::Mtls);
    let fast = Duration::from_secs(3);
    // A certificate signed by a CA the broker does not trust.
    let f = kafka().tls();
    let stranger = trusting_the_cluster().with_client_cert_files(f.stranger_cert, f.stranger_key).unwrap();
    let e = tls_error(fast, Dialer::new().with_tls(stranger).dial(&mtls)).await;
    assert!(e.contains("refused this client's certificate"), "{e}");
    // No certificate at all.
    let e = tls_error(fast, Dialer::new().with_tls(trusting_the_cluster()).dial(&mtls)).await;
    assert!(e.contains("requires a client certificate"), "{e}");
    // The SSL listener does not ask for one: the client certificate is simply not sent.
    let conn = Dialer::new().with_tls(with_client_cert()).dial(&kafka().bootstrap_on(Listener::Ssl)).await.unwrap();
    assert!(!conn.metadata(None).await.unwrap().brokers.is_empty());
}

/// Certificates made here (rcgen) for the in-process server.
mod pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    pub struct Pki {
        pub ca: String,
        pub server: (String, String),
        pub expired: (String, String),
    }

    fn issue(ca: &(rcgen::Certificate, KeyPair), expired: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        (p.signed_by(&key, &ca.0, &ca.1).unwrap().pem(), key.serialize_pem())
    }

    pub fn make() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "kafkit in-process test CA");
        let ca = (p.self_signed(&key).unwrap(), key);
        Pki { ca: ca.0.pem(), server: issue(&ca, false), expired: issue(&ca, true) }
    }
}

/// A rustls server on a loopback port presenting `cert`: it records the SNI of every
/// ClientHello, completes the handshake and hangs up.
async fn tls_server(cert: &(String, String)) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>) {
    use rustls::pki_types::pem::PemObject;
    use std::sync::{Arc, Mutex};
    #[derive(Debug)]
    struct Record(Arc<Mutex<Vec<Option<String>>>>, Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for Record {
        fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
            self.0.lock().unwrap().push(hello.server_name().map(str::to_string));
            Some(self.1.clone())
        }
    }
    let certs: Vec<_> =
        rustls::pki_types::CertificateDer::pem_slice_iter(cert.0.as_bytes()).map(|c| c.unwrap()).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).unwrap();
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Record(seen.clone(), Arc::new(rustls::sign::CertifiedKey::new(certs, signing)))));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = acceptor.accept(tcp).await;
        }
    });
    (port, seen)
}

/// SNI: the host dialed (or the configured server name) goes in the ClientHello; an IP
/// address sends none.
#[tokio::test]
async fn the_host_name_is_sent_as_sni() {
    let pki = pki::make();
    let (port, seen) = tls_server(&pki.server).await;
    let tls = TlsConfig::new().with_ca_pem(pki.ca.as_bytes()).unwrap();
    let quick = |t: TlsConfig| Dialer::new().with_tls(t).with_connect_timeout(Duration::from_secs(3));
    let _ = quick(tls.clone()).dial(&format!("localhost:{port}")).await;
    let _ = quick(tls.clone().with_server_name("kafka.internal")).dial(&format!("localhost:{port}")).await;
    let _ = quick(tls.with_server_name("127.0.0.1")).dial(&format!("localhost:{port}")).await;
    assert_eq!(*seen.lock().unwrap(), [Some("localhost".to_string()), Some("kafka.internal".to_string()), None]);
}

/// An expired certificate from a CA the client trusts fails as expired; the loud opt-out
/// (`dangerous_skip_verification`) completes the handshake anyway (the server then hangs up,
/// which is a closed connection, not a TLS error). The opt-out also dials Kafka's SSL listener
/// without any CA.
#[tokio::test]
async fn an_expired_certificate_fails_as_expired() {
    let pki = pki::make();
    let (port, _) = tls_server(&pki.expired).await;
    let addr = format!("localhost:{port}");
    let tls = TlsConfig::new().with_ca_pem(pki.ca.as_bytes()).unwrap();
    let e = tls_error(Duration::from_secs(3), Dialer::new().with_tls(tls).dial(&addr)).await;
    assert!(e.contains("has expired"), "{e}");
    let insecure = TlsConfig::new().dangerous_skip_verification();
    assert!(!insecure.verifies());
    let e = Dialer::new().with_tls(insecure.clone()).dial(&addr).await.unwrap_err();
    assert!(matches!(e, Error::ConnectionClosed { .. }), "the handshake passed, then the server hung up: {e:?}");
    let conn = Dialer::new().with_tls(insecure).dial(&kafka().bootstrap_on(Listener::Ssl)).await.unwrap();
    assert!(!conn.metadata(None).await.unwrap().brokers.is_empty());
}
