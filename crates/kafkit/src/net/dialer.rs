//! Making connections.

use super::conn::{Conn, ReadHalf, WriteHalf};
use super::sasl::Sasl;
use super::tls::TlsConfig;
use crate::error::{Error, Result};
use kafkit_protocol::ApiKey;
use std::time::Duration;
use tokio::net::TcpStream;

/// Default [`Dialer::connect_timeout`]: 10 s (Java `socket.connection.setup.timeout.ms`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Dialer::request_timeout`]: 30 s (Java `request.timeout.ms`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Dialer::client_id`]: `kafkit` (Java `client.id`, kafka-go `Dialer.ClientID`).
pub const DEFAULT_CLIENT_ID: &str = "kafkit";
/// Default [`Dialer::max_response_bytes`]: 100 MiB (franz-go `BrokerMaxReadBytes`); a
/// response frame claiming more closes the connection.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 100 << 20;

/// Opens connections to brokers (kafka-go's `Dialer`). TLS and SASL plug in here later.
///
/// ```no_run
/// # async fn run() -> kafkit::Result<()> {
/// use kafkit::Dialer;
/// use std::time::Duration;
///
/// let conn = Dialer::new().with_client_id("billing").with_connect_timeout(Duration::from_secs(3)).dial("localhost:9092").await?;
/// println!("broker serves Fetch {:?}", conn.broker_versions(kafkit_protocol::ApiKey::Fetch));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Dialer {
    client_id: Option<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_response_bytes: usize,
    max_versions: Vec<(ApiKey, i16)>,
    tls: Option<TlsConfig>,
    sasl: Option<Sasl>,
}

impl Default for Dialer {
    fn default() -> Self {
        Dialer::new()
    }
}

impl Dialer {
    /// A dialer with the defaults ([`DEFAULT_CLIENT_ID`], [`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_REQUEST_TIMEOUT`], [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn new() -> Self {
        Dialer {
            client_id: Some(DEFAULT_CLIENT_ID.to_string()),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_versions: Vec::new(),
            tls: None,
            sasl: None,
        }
    }
    /// Connects with TLS ([`TlsConfig`]). Default: plaintext.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Authenticates every connection with SASL ([`Sasl`]), over plaintext or TLS, and
    /// re-authenticates before the session the broker grants ends (KIP-368). Default: none.
    pub fn with_sasl(mut self, sasl: Sasl) -> Self {
        self.sasl = Some(sasl);
        self
    }
    /// The TLS settings, if any.
    pub fn tls(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }
    /// The SASL settings, if any.
    pub fn sasl(&self) -> Option<&Sasl> {
        self.sasl.as_ref()
    }
    /// Never uses a version of `api` above `max`, whatever the broker advertises: a way
    /// around a broker that advertises a version it does not parse correctly (librdkafka's
    /// mock cluster advertises JoinGroup v6 but reads its flexible arrays as v5's). The
    /// Java client has no such setting; librdkafka's nearest is
    /// `broker.version.fallback`. Default none.
    pub fn with_max_version(mut self, api: ApiKey, max: i16) -> Self {
        self.max_versions.retain(|(k, _)| *k != api);
        self.max_versions.push((api, max));
        self
    }
    /// The client id sent in every request header, shown in broker logs and quotas. Default
    /// [`DEFAULT_CLIENT_ID`].
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }
    /// How long the TCP connect may take. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    /// How long to wait for each response, from the moment the request is queued; a request
    /// not answered in time closes its connection (see [`Conn`]). Default
    /// [`DEFAULT_REQUEST_TIMEOUT`]. Requests that wait on the broker on purpose (a Fetch's
    /// `max_wait_ms`) need a longer timeout than their wait.
    pub fn with_request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }
    /// The largest response frame accepted, in bytes. Default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub fn with_max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }
    /// The client id.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
    /// The response size limit, in bytes.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Connects to `addr` (`host:port`) and negotiates API versions (ApiVersions, KIP-511).
    ///
    /// # Cancellation
    /// Dropping the future closes the half-made connection; nothing leaks.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::ConnectTimeout`], then anything
    /// [`Conn::request`] returns for the ApiVersions exchange.
    pub async fn dial(&self, addr: &str) -> Result<Conn> {
        let started = tokio::time::Instant::now();
        let tcp = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(Error::ConnectTimeout { addr: addr.to_string(), timeout: self.connect_timeout }),
            Ok(Err(source)) => return Err(Error::Connect { addr: addr.to_string(), source }),
            Ok(Ok(s)) => s,
        };
        let _ = tcp.set_nodelay(true);
        let halves: (ReadHalf, WriteHalf) = match &self.tls {
            None => {
                let (r, w) = tcp.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(tls) => {
                let left = self.connect_timeout.saturating_sub(started.elapsed());
                let stream = match tokio::time::timeout(left, tls.connect(addr, tcp)).await {
                    Err(_) => {
                        return Err(Error::Tls {
                            addr: addr.to_string(),
                            reason: format!(
                                "no TLS handshake within the connect timeout ({:?}): does this port speak TLS?",
                                self.connect_timeout
                            ),
                        })
                    }
                    Ok(r) => r?,
                };
                let (r, w) = tokio::io::split(stream);
                (Box::new(r), Box::new(w))
            }
        };
        let conn = Conn::start(
            halves,
            addr.to_string(),
            self.client_id.clone(),
            self.request_timeout,
            self.max_response_bytes,
        );
        if let Err(e) = conn.negotiate().await {
            conn.close();
            return Err(match (e, &self.tls) {
                // With TLS 1.3 a broker that refuses the client's certificate (or its absence)
                // says so with an alert after the handshake, on the first read: Kafka sends
                // certificate_unknown for an untrusted one, bad_certificate for none.
                (Error::ConnectionClosed { addr, reason }, Some(tls)) => {
                    match super::tls::refusal(&reason, tls.sends_client_cert()) {
                        Some(reason) => Error::Tls { addr, reason },
                        None => Error::ConnectionClosed { addr, reason },
                    }
                }
                // Plaintext to a TLS listener: its answer is a TLS alert record.
                (Error::ConnectionClosed { addr, reason }, None)
                    if reason.starts_with(super::tls::ANSWERED_WITH_TLS) =>
                {
                    Error::Tls { addr, reason }
                }
                (e, _) => e,
            });
        }
        for (api, max) in &self.max_versions {
            conn.cap_version(*api, *max);
        }
        if let Some(sasl) = &self.sasl {
            let mut cache = super::scram::SaltedCache::default();
            match super::sasl::authenticate(&conn, sasl, &mut cache).await {
                Ok(Some(lifetime)) => super::sasl::keep_authenticated(&conn, sasl.clone(), lifetime, cache),
                Ok(None) => {}
                Err(e) => {
                    conn.close();
                    return Err(e);
                }
            }
        }
        Ok(conn)
    }
}
