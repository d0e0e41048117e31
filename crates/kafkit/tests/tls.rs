//! TLS and mutual TLS through stunnel (Debian's stunnel4, installed by scripts/setup.sh) in
//! front of Tansu, with certificates made for each run (rcgen): produce and fetch work; a
//! wrong CA, a wrong host name, an expired certificate and a missing client certificate
//! each fail with a clear `Error::Tls`; nothing falls back to plaintext.

mod common;
mod tlsutil;

use bytes::Bytes;
use common::{free_port, unique_topic, TestBroker};
use kafkit::{
    ClusterConfig, Dialer, Error, Message, Reader, ReaderConfig, TlsConfig, TopicConfig, Writer, WriterConfig,
};
use std::time::Duration;
use tlsutil::{pki, stunnel};

fn cluster(tls: TlsConfig) -> ClusterConfig {
    ClusterConfig {
        dialer: Dialer::new().with_tls(tls).with_connect_timeout(Duration::from_secs(5)),
        ..ClusterConfig::default()
    }
}

fn tls_error(e: Error) -> String {
    match e {
        Error::Tls { reason, .. } => reason,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn mutual_tls_carries_produce_and_fetch_and_every_bad_certificate_fails_clearly() {
    let pki = pki();
    let ca_file = pki.write("ca.pem", &pki.ca);
    let client_cert = pki.write("client.pem", &pki.client.cert);
    let client_key = pki.write("client.key", &pki.client.key);
    let tls_port = free_port();
    let broker = TestBroker::start_advertised_as(free_port(), &format!("localhost:{tls_port}"));
    let broker_port: u16 = broker.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let tunnel = stunnel(&pki, &pki.server, tls_port, broker_port, Some(&ca_file));
    let addr = format!("localhost:{}", tunnel.port);
    let good =
        TlsConfig::new().with_ca_file(&ca_file).unwrap().with_client_cert_files(&client_cert, &client_key).unwrap();

    // Produce and fetch over mutual TLS.
    let topic = unique_topic("tls");
    let conn = good_dial(&good, &addr).await;
    conn.create_topics(&[TopicConfig::new(&topic, 1)]).await.unwrap();
    let w = Writer::new(&[&addr], WriterConfig::default().with_topic(&topic).with_cluster(cluster(good.clone())))
        .await
        .unwrap();
    let msgs: Vec<Message> =
        (0..200).map(|i| Message::new(None::<Bytes>, Some(Bytes::from(format!("v{i}"))))).collect();
    w.write_messages(msgs).await.unwrap();
    let mut r = Reader::new(&[&addr], ReaderConfig::new(&topic, 0).with_cluster(cluster(good.clone()))).await.unwrap();
    for i in 0..200 {
        let m = r.read_message().await.unwrap();
        assert_eq!(m.value.as_deref(), Some(format!("v{i}").as_bytes()));
    }

    // A CA that did not sign the broker's certificate.
    let wrong_ca = TlsConfig::new().with_ca_pem(pki.other_ca.as_bytes()).unwrap();
    let e = tls_error(Dialer::new().with_tls(wrong_ca).dial(&addr).await.unwrap_err());
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    // A name the certificate does not carry.
    let e = tls_error(
        Dialer::new().with_tls(good.clone().with_server_name("kafka.example.com")).dial(&addr).await.unwrap_err(),
    );
    assert!(e.contains("does not name this host"), "{e}");
    let e =
        tls_error(Dialer::new().with_tls(good.clone()).dial(&format!("127.0.0.1:{}", tunnel.port)).await.unwrap_err());
    assert!(e.contains("does not name this host"), "{e}");
    // No client certificate: the broker (stunnel, verify = 2) refuses.
    let no_cert = TlsConfig::new().with_ca_file(&ca_file).unwrap();
    let e = tls_error(Dialer::new().with_tls(no_cert).dial(&addr).await.unwrap_err());
    assert!(e.contains("client certificate"), "{e}");
    // Plaintext to the TLS port never works; TLS to the plaintext port fails as TLS.
    let e = Dialer::new().with_connect_timeout(Duration::from_secs(3)).dial(&addr).await.unwrap_err();
    assert!(!matches!(e, Error::Tls { .. }), "{e}");
    let plain_port = broker.addr.replace("127.0.0.1", "localhost");
    let quick = Dialer::new().with_tls(good.clone()).with_connect_timeout(Duration::from_secs(2));
    let e = tls_error(quick.dial(&plain_port).await.unwrap_err());
    assert!(e.contains("does this port speak TLS"), "{e}");

    // An expired certificate, from a second stunnel.
    let expired_port = free_port();
    let expired = stunnel(&pki, &pki.expired, expired_port, broker_port, None);
    let e =
        tls_error(Dialer::new().with_tls(good.clone()).dial(&format!("localhost:{}", expired.port)).await.unwrap_err());
    assert!(e.contains("expired"), "{e}");
    // The loud opt-out accepts it (and the wrong CA): for tests only.
    let insecure = TlsConfig::new().dangerous_skip_verification();
    assert!(!insecure.verifies());
    let conn = Dialer::new().with_tls(insecure).dial(&format!("localhost:{}", expired.port)).await.unwrap();
    assert!(!conn.metadata(None).await.unwrap().brokers.is_empty());
    let _ = std::fs::remove_dir_all(&pki.dir);
}

async fn good_dial(tls: &TlsConfig, addr: &str) -> kafkit::Conn {
    Dialer::new().with_tls(tls.clone()).dial(addr).await.unwrap()
}

/// SNI: the host dialed (or the configured server name) goes in the ClientHello; an IP
/// address sends none. Seen by a rustls server in this test that records it.
#[tokio::test]
async fn the_host_name_is_sent_as_sni() {
    use std::sync::{Arc, Mutex};
    #[derive(Debug)]
    struct Record(Arc<Mutex<Vec<Option<String>>>>, Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for Record {
        fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
            self.0.lock().unwrap().push(hello.server_name().map(str::to_string));
            Some(self.1.clone())
        }
    }
    use rustls::pki_types::pem::PemObject;
    let pki = pki();
    let certs: Vec<_> =
        rustls::pki_types::CertificateDer::pem_slice_iter(pki.server.cert.as_bytes()).map(|c| c.unwrap()).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.server.key.as_bytes()).unwrap();
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
            // Handshake, then hang up: the client only needs to have said hello.
            let _ = acceptor.accept(tcp).await;
        }
    });
    let tls = TlsConfig::new().with_ca_pem(pki.ca.as_bytes()).unwrap();
    let quick = |t: TlsConfig| Dialer::new().with_tls(t).with_connect_timeout(Duration::from_secs(3));
    let _ = quick(tls.clone()).dial(&format!("localhost:{port}")).await;
    let _ = quick(tls.clone().with_server_name("kafka.internal")).dial(&format!("localhost:{port}")).await;
    let _ = quick(tls.with_server_name("127.0.0.1")).dial(&format!("localhost:{port}")).await;
    assert_eq!(*seen.lock().unwrap(), [Some("localhost".to_string()), Some("kafka.internal".to_string()), None]);
    let _ = std::fs::remove_dir_all(&pki.dir);
}
