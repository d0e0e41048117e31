//! TLS for connections, with rustls (no OpenSSL): system roots or a CA bundle, client
//! certificates (mutual TLS), hostname verification and SNI, and an explicit opt-out of
//! verification for tests.

use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, OnceLock};

#[derive(Clone)]
enum Roots {
    System,
    Pem(Vec<CertificateDer<'static>>),
}

/// TLS settings of a [`Dialer`](crate::Dialer) (Java `security.protocol=SSL` with
/// `ssl.truststore.*` / `ssl.keystore.*`; librdkafka `ssl.ca.location`,
/// `ssl.certificate.location`, `ssl.key.location`; kafka-go's `Dialer.TLS`).
///
/// By default the server's certificate must chain to the system's roots and name the host
/// dialed (hostname verification, `ssl.endpoint.identification.algorithm=https`), and the
/// host name is sent as SNI. A connection that fails any of this fails with
/// [`Error::Tls`]; nothing falls back to plaintext.
///
/// `Debug` never shows the private key.
#[derive(Clone)]
#[must_use]
pub struct TlsConfig {
    roots: Roots,
    client: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    server_name: Option<String>,
    verify: bool,
    built: Arc<OnceLock<std::result::Result<Arc<ClientConfig>, String>>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field(
                "roots",
                &match &self.roots {
                    Roots::System => "system".to_string(),
                    Roots::Pem(c) => format!("{} certificates", c.len()),
                },
            )
            .field(
                "client_certificate",
                &self.client.as_ref().map(|(c, _)| format!("{} certificates, key <redacted>", c.len())),
            )
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::new()
    }
}

fn pem_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("TLS: {what}: {e}"))
}

impl TlsConfig {
    /// Verify against the system's root certificates (read with `rustls-native-certs`).
    pub fn new() -> Self {
        TlsConfig { roots: Roots::System, client: None, server_name: None, verify: true, built: Arc::default() }
    }

    /// Verify against these CA certificates (PEM) instead of the system's.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the PEM holds no certificate or does not parse.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| pem_error("reading the CA certificates", e))?;
        if certs.is_empty() {
            return Err(Error::InvalidArgument("TLS: no certificate in the CA bundle".into()));
        }
        self.roots = Roots::Pem(certs);
        self.built = Arc::default();
        Ok(self)
    }

    /// As [`TlsConfig::with_ca_pem`], from a file.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the file cannot be read or holds no certificate.
    pub fn with_ca_file(self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| pem_error(&format!("reading {}", path.display()), e))?;
        self.with_ca_pem(&pem)
    }

    /// Present this certificate chain and private key (both PEM) to the broker: mutual TLS
    /// (Java `ssl.keystore.*`, librdkafka `ssl.certificate.location` / `ssl.key.location`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when either does not parse (the message never quotes the
    /// key).
    pub fn with_client_cert_pem(mut self, cert_chain: &[u8], key: &[u8]) -> Result<Self> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| pem_error("reading the client certificate", e))?;
        if certs.is_empty() {
            return Err(Error::InvalidArgument("TLS: no certificate in the client certificate file".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
            Error::InvalidArgument("TLS: the client key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)".into())
        })?;
        self.client = Some((certs, Arc::new(key)));
        self.built = Arc::default();
        Ok(self)
    }

    /// As [`TlsConfig::with_client_cert_pem`], from files.
    ///
    /// # Errors
    /// As [`TlsConfig::with_client_cert_pem`]; a file that cannot be read.
    pub fn with_client_cert_files(
        self,
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self> {
        let (c, k) = (cert_chain.as_ref(), key.as_ref());
        let cert = std::fs::read(c).map_err(|e| pem_error(&format!("reading {}", c.display()), e))?;
        let key = std::fs::read(k).map_err(|e| pem_error(&format!("reading {}", k.display()), e))?;
        self.with_client_cert_pem(&cert, &key)
    }

    /// The name to verify the certificate against and send as SNI, instead of the host of
    /// the address dialed.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Turns certificate and hostname verification off.** Anyone on the network path can
    /// then read and change everything, credentials included. For tests against brokers
    /// with throwaway certificates only; kafkit logs a warning on every connection made so
    /// (kafka-go `InsecureSkipVerify`, librdkafka `enable.ssl.certificate.verification=false`).
    pub fn dangerous_skip_verification(mut self) -> Self {
        self.verify = false;
        self.built = Arc::default();
        self
    }

    /// Whether certificates are verified.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    fn config(&self) -> Result<Arc<ClientConfig>> {
        self.built
            .get_or_init(|| self.build().map(Arc::new))
            .clone()
            .map_err(|reason| Error::InvalidArgument(format!("TLS: {reason}")))
    }

    fn build(&self) -> std::result::Result<ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = if self.verify {
            let mut roots = RootCertStore::empty();
            match &self.roots {
                Roots::Pem(certs) => {
                    for c in certs {
                        roots.add(c.clone()).map_err(|e| format!("a CA certificate: {e}"))?;
                    }
                }
                Roots::System => {
                    let found = rustls_native_certs::load_native_certs();
                    for c in found.certs {
                        let _ = roots.add(c);
                    }
                    if roots.is_empty() {
                        return Err("no system root certificates found; give a CA bundle".into());
                    }
                }
            }
            builder.with_root_certificates(roots)
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        };
        match &self.client {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(|e| format!("the client certificate and key do not go together: {e}")),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// Runs the TLS handshake over `tcp` to `addr` (`host:port`).
    pub(crate) async fn connect(
        &self,
        addr: &str,
        tcp: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let config = self.config()?;
        let host = self.server_name.clone().unwrap_or_else(|| host_of(addr).to_string());
        let name = ServerName::try_from(host.clone())
            .map_err(|_| Error::InvalidArgument(format!("TLS: {host:?} is not a valid server name")))?;
        if !self.verify {
            tracing::warn!(addr, "TLS certificate verification is OFF for this connection");
        }
        let sends_cert = self.client.is_some();
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls { addr: addr.to_string(), reason: describe_handshake_error(&e, sends_cert) })
    }

    /// Whether a client certificate is configured.
    pub(crate) fn sends_client_cert(&self) -> bool {
        self.client.is_some()
    }
}

/// How a connection's reader reports a TLS alert from the broker ([`read_failure`]); the
/// dialer turns it into [`Error::Tls`] with [`refusal`].
const ALERT: &str = "the broker sent TLS alert ";

/// The reason a connection's read failed, naming a TLS alert the broker sent.
pub(crate) fn read_failure(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(a)) => format!("read failed: {ALERT}{}", alert_name(*a)),
        _ => format!("read failed: {e}"),
    }
}

/// The IANA name of a TLS alert (RFC 8446 §6, RFC 5246 §7.2).
fn alert_name(a: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let name = match a {
        A::HandshakeFailure => "handshake_failure",
        A::NoCertificate => "no_certificate",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::CertificateRequired => "certificate_required",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::DecryptError => "decrypt_error",
        A::DecodeError => "decode_error",
        A::IllegalParameter => "illegal_parameter",
        A::UnrecognisedName => "unrecognized_name",
        other => return format!("{other:?}"),
    };
    name.to_string()
}

/// What an alert means for this client, in words.
fn alert_meaning(alert: &str, sends_cert: bool) -> String {
    match alert {
        // A JDK broker (Apache Kafka) that requires a client certificate answers an empty one
        // with bad_certificate; RFC 8446 names certificate_required for it.
        "bad_certificate" | "certificate_required" | "no_certificate" | "handshake_failure" if !sends_cert => format!(
            "the broker requires a client certificate and none is configured (TLS alert {alert}); give one (mutual TLS)"
        ),
        "bad_certificate" | "certificate_unknown" | "unknown_ca" | "unsupported_certificate" | "certificate_expired"
        | "certificate_revoked" | "access_denied" | "handshake_failure" => format!(
            "the broker refused this client's certificate (TLS alert {alert}): is it signed by a CA the broker trusts, valid now, and meant for client authentication?"
        ),
        "certificate_required" => format!("the broker requires a client certificate (TLS alert {alert})"),
        other => format!("the broker ended the TLS session with alert {other}"),
    }
}

/// A connection closed because of a TLS alert after the handshake (with TLS 1.3 the broker
/// judges the client's certificate after the client has finished its handshake, so its
/// refusal comes as an alert on the first read): the reason in words, for [`Error::Tls`].
pub(crate) fn refusal(reason: &str, sends_cert: bool) -> Option<String> {
    let alert = reason.split_once(ALERT)?.1;
    Some(alert_meaning(alert.split_whitespace().next().unwrap_or(alert), sends_cert))
}

/// The start of the reason a plaintext connection closes with when the broker's first bytes
/// are a TLS record: Kafka's SSL and SASL_SSL listeners answer a plaintext request with a
/// TLS alert (`15 03 03 00 02 02 50`, internal_error) and close.
pub(crate) const ANSWERED_WITH_TLS: &str = "the broker answered with a TLS record, not a Kafka response";

/// [`ANSWERED_WITH_TLS`] in full, when `buf` begins like a TLS record (RFC 8446 §5.1:
/// content type 20-24, legacy version 3.x).
pub(crate) fn answered_with_tls(buf: &[u8]) -> Option<String> {
    let tls = buf.len() >= 3 && (20..=24).contains(&buf[0]) && buf[1] == 3 && buf[2] <= 4;
    tls.then(|| format!("{ANSWERED_WITH_TLS}: this port speaks TLS; connect with TLS (Dialer::with_tls)"))
}

/// The host of `host:port` (brackets of an IPv6 literal removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A handshake failure in words: which check failed.
fn describe_handshake_error(e: &std::io::Error, sends_cert: bool) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            use rustls::CertificateError as C;
            let what = match c {
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "the broker's certificate does not name this host (hostname verification)".to_string()
                }
                C::UnknownIssuer => {
                    "the broker's certificate is not signed by a trusted CA (unknown issuer)".to_string()
                }
                C::Expired | C::ExpiredContext { .. } => "the broker's certificate has expired".to_string(),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "the broker's certificate is not valid yet".to_string()
                }
                C::Revoked => "the broker's certificate is revoked".to_string(),
                other => format!("the broker's certificate is invalid: {other:?}"),
            };
            format!("TLS handshake failed: {what}")
        }
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("TLS handshake failed: {}", alert_meaning(&alert_name(*alert), sends_cert))
        }
        Some(other) => format!("TLS handshake failed: {other}"),
        None if matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ) =>
        {
            format!(
                "TLS handshake failed: the broker closed the connection ({e}): does this port speak TLS? (a Kafka PLAINTEXT or SASL_PLAINTEXT listener reads a ClientHello as an oversized request and closes)"
            )
        }
        None => format!("TLS handshake failed: {e}"),
    }
}

/// The verifier of [`TlsConfig::dangerous_skip_verification`]: accepts any certificate, but
/// still checks the handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }

    #[test]
    fn tls_records_and_alerts_are_recognised() {
        // What Kafka's SSL listener answers a plaintext ApiVersions with: an internal_error alert.
        assert!(answered_with_tls(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50]).is_some());
        // A Kafka response frame of 300 bytes is not a TLS record.
        assert!(answered_with_tls(&[0x00, 0x00, 0x01, 0x2c, 0x00]).is_none());
        let refused = format!("read failed: {ALERT}certificate_unknown");
        assert!(refusal(&refused, true).unwrap().contains("refused this client's certificate"));
        let none = format!("read failed: {ALERT}bad_certificate");
        assert!(refusal(&none, false).unwrap().contains("requires a client certificate"));
        assert!(refusal(&none, true).unwrap().contains("refused this client's certificate"));
        assert!(refusal("the broker closed the connection", true).is_none());
    }

    #[test]
    fn bad_pem_is_a_clear_error_and_debug_shows_no_key() {
        let e = TlsConfig::new().with_ca_pem(b"not pem").unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let e = TlsConfig::new()
            .with_client_cert_pem(b"", b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n");
        assert!(e.is_err());
        let shown = format!("{:?}", TlsConfig::new().dangerous_skip_verification());
        assert!(shown.contains("verify: false"), "{shown}");
    }
}
