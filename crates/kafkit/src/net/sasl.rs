//! SASL authentication of a connection (KIP-43 SaslHandshake, KIP-152 SaslAuthenticate):
//! PLAIN, SCRAM-SHA-256/512 (RFC 5802, RFC 7677; KIP-84) and OAUTHBEARER (RFC 7628, KIP-255),
//! with re-authentication before the session the broker granted ends (KIP-368).

use super::conn::{Conn, Exclusive};
use super::scram::{SaltedCache, ScramClient, ScramMechanism};
use crate::error::{Error, Result};
use base64::Engine as _;
use bytes::Bytes;
use kafkit_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafkit_protocol::ErrorCode;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A secret (password or token): `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// An OAuth 2 bearer token for OAUTHBEARER (KIP-255).
#[derive(Debug, Clone)]
pub struct OAuthToken {
    /// The token (a JWT for most identity providers).
    pub value: Secret,
    /// SASL extensions sent with it (KIP-342), such as `logicalCluster`.
    pub extensions: Vec<(String, String)>,
}

/// The future a [`TokenProvider`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<OAuthToken>> + Send + 'a>>;

/// Supplies OAUTHBEARER tokens: called for every authentication and re-authentication, so
/// it can hand out a fresh token (Java `sasl.login.callback.handler.class`).
pub trait TokenProvider: Send + Sync {
    /// A token to authenticate with now.
    fn token(&self) -> TokenFuture<'_>;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<OAuthToken>> + Send + 'static,
{
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self())
    }
}

/// How a connection authenticates (Java `sasl.mechanism` with `sasl.jaas.config`; kafka-go
/// `Dialer.SASLMechanism`). `Debug` never shows a password or token.
///
/// Every connection a [`Dialer`](crate::Dialer) makes authenticates right after ApiVersions,
/// with SaslHandshake v1 then SaslAuthenticate (v0-2, negotiated); when the broker grants a
/// session lifetime (SaslAuthenticate v1+, KIP-368) the connection authenticates again at
/// 85-95% of it. A failure is [`Error::Auth`](crate::Error::Auth), never retried.
///
/// Tested against Apache Kafka 4.4: every mechanism over plaintext and TLS, producing,
/// fetching and consuming in a group, and re-authenticating every 2.6-2.9 s of its 3 s
/// sessions with requests in flight; SCRAM also against RFC 7677's published exchange and a
/// test server whose signature does not verify.
#[derive(Clone)]
pub enum Sasl {
    /// PLAIN: username and password in the clear (use it over TLS only).
    Plain {
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// SCRAM-SHA-256 or SCRAM-SHA-512: a salted challenge-response; the password never
    /// travels, and the broker's signature is verified.
    Scram {
        /// SHA-256 or SHA-512.
        mechanism: ScramMechanism,
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// OAUTHBEARER: a bearer token from the application's provider.
    OAuthBearer(Arc<dyn TokenProvider>),
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sasl::Plain { username, .. } => {
                f.debug_struct("Plain").field("username", username).field("password", &"<redacted>").finish()
            }
            Sasl::Scram { mechanism, username, .. } => f
                .debug_struct("Scram")
                .field("mechanism", mechanism)
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Sasl::OAuthBearer(_) => f.write_str("OAuthBearer(<token provider>)"),
        }
    }
}

impl Sasl {
    /// PLAIN with these credentials.
    pub fn plain(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Sasl::Plain { username: username.into(), password: password.into() }
    }
    /// SCRAM-SHA-256 or -512 with these credentials.
    pub fn scram(mechanism: ScramMechanism, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Sasl::Scram { mechanism, username: username.into(), password: password.into() }
    }
    /// OAUTHBEARER with tokens from `provider`.
    pub fn oauthbearer(provider: impl TokenProvider + 'static) -> Self {
        Sasl::OAuthBearer(Arc::new(provider))
    }

    /// The mechanism's name in SaslHandshake.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Plain { .. } => "PLAIN",
            Sasl::Scram { mechanism: ScramMechanism::Sha512, .. } => "SCRAM-SHA-512",
            Sasl::Scram { .. } => "SCRAM-SHA-256",
            Sasl::OAuthBearer(_) => "OAUTHBEARER",
        }
    }
}

fn auth_error(conn: &Conn, sasl: &Sasl, message: impl Into<String>) -> Error {
    Error::Auth { addr: conn.addr().to_string(), mechanism: sasl.mechanism().to_string(), message: message.into() }
}

/// Authenticates `conn` (SaslHandshake v1, then SaslAuthenticate rounds) in an exclusive
/// stretch of the connection ([`Conn::exclusive`]): a Kafka broker closes a connection that
/// sends any other request between SaslHandshake and the last SaslAuthenticate, and on a
/// re-authentication other tasks are using the connection. Returns the session lifetime the
/// broker granted (SaslAuthenticate v1+; `None` for none).
///
/// A broker that closes the connection instead of answering (some do on a wrong password)
/// is reported as an authentication failure, not a network error, so it is not retried.
pub(crate) async fn authenticate(conn: &Conn, sasl: &Sasl, cache: &mut SaltedCache) -> Result<Option<Duration>> {
    // A token is fetched before the stretch begins: the provider may take a while (a call to
    // an identity provider) and the connection's other requests would wait for it.
    let token = match sasl {
        Sasl::OAuthBearer(provider) => Some(provider.token().await?),
        _ => None,
    };
    let result = match conn.exclusive().await {
        Ok(lane) => authenticate_inner(&lane, sasl, token, cache).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(lifetime) => {
            conn.count_authentication();
            Ok(lifetime)
        }
        Err(Error::ConnectionClosed { reason, .. }) => Err(auth_error(
            conn,
            sasl,
            format!("the broker closed the connection during authentication ({reason}); are the credentials right?"),
        )),
        other => other,
    }
}

async fn authenticate_inner(
    lane: &Exclusive,
    sasl: &Sasl,
    token: Option<OAuthToken>,
    cache: &mut SaltedCache,
) -> Result<Option<Duration>> {
    let conn = lane.conn();
    let hv = conn.version_for::<SaslHandshakeRequest>()?;
    if hv.0 < 1 {
        return Err(auth_error(
            conn,
            sasl,
            "the broker serves only SaslHandshake v0 (unframed SASL), which kafkit does not speak",
        ));
    }
    let resp =
        lane.request_version(&SaslHandshakeRequest::default().with_mechanism(sasl.mechanism().into()), hv).await?;
    match ErrorCode::from_code(resp.error_code) {
        ErrorCode::None => {}
        ErrorCode::UnsupportedSaslMechanism => {
            return Err(auth_error(
                conn,
                sasl,
                format!("the broker does not enable it; it enables {}", resp.mechanisms.join(", ")),
            ))
        }
        // Kafka's answer on a listener without SASL (PLAINTEXT, SSL).
        ErrorCode::IllegalSaslState => {
            return Err(auth_error(
                conn,
                sasl,
                "the listener does not authenticate with SASL (SaslHandshake: ILLEGAL_SASL_STATE): is this a PLAINTEXT or SSL listener?",
            ))
        }
        code => return Err(auth_error(conn, sasl, format!("SaslHandshake: {code}"))),
    }
    match sasl {
        Sasl::Plain { username, password } => {
            let msg = format!("\0{username}\0{}", password.expose());
            let (_, lifetime) = round(lane, sasl, msg.into_bytes()).await?;
            Ok(lifetime)
        }
        Sasl::OAuthBearer(_) => {
            let token = token.ok_or_else(|| auth_error(conn, sasl, "no token"))?;
            let mut msg = format!("n,,\x01auth=Bearer {}", token.value.expose());
            for (k, v) in &token.extensions {
                msg.push_str(&format!("\x01{k}={v}"));
            }
            msg.push_str("\x01\x01");
            let (reply, lifetime) = round(lane, sasl, msg.into_bytes()).await?;
            if !reply.is_empty() && reply.first() == Some(&b'{') {
                // RFC 7628 §3.2.2: an error JSON (Kafka: {"status":"invalid_token"}); the
                // client must answer with 0x01, and the broker then fails the exchange.
                let _ = round(lane, sasl, vec![0x01]).await;
                return Err(auth_error(
                    conn,
                    sasl,
                    format!("the broker refused the token: {}", String::from_utf8_lossy(&reply)),
                ));
            }
            Ok(lifetime)
        }
        Sasl::Scram { mechanism, username, password } => {
            let mut nonce = [0u8; 24];
            getrandom::fill(&mut nonce)
                .map_err(|e| auth_error(conn, sasl, format!("no randomness for a nonce: {e}")))?;
            let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
            let mut client = ScramClient::new(*mechanism, username, &nonce);
            let (server_first, _) = round(lane, sasl, client.first().into_bytes()).await?;
            let (salt, iterations) = client.read_first(&server_first).map_err(|m| auth_error(conn, sasl, m))?;
            let salted = cache.salted(*mechanism, password.expose(), salt, iterations).await?;
            let client_final = client.final_message(salted);
            let (server_final, lifetime) = round(lane, sasl, client_final.into_bytes()).await?;
            client.verify_final(&server_final).map_err(|m| auth_error(conn, sasl, m))?;
            Ok(lifetime)
        }
    }
}

/// One SaslAuthenticate exchange: the broker's bytes and session lifetime.
async fn round(lane: &Exclusive, sasl: &Sasl, bytes: Vec<u8>) -> Result<(Bytes, Option<Duration>)> {
    let conn = lane.conn();
    let v = conn.version_for::<SaslAuthenticateRequest>()?;
    let resp = lane.request_version(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)), v).await?;
    if resp.error_code != 0 {
        let code = ErrorCode::from_code(resp.error_code);
        let msg = resp.error_message.unwrap_or_default();
        return Err(auth_error(
            conn,
            sasl,
            format!("{code}{}", if msg.is_empty() { String::new() } else { format!(": {msg}") }),
        ));
    }
    let lifetime =
        (v.0 >= 1 && resp.session_lifetime_ms > 0).then(|| Duration::from_millis(resp.session_lifetime_ms as u64));
    Ok((resp.auth_bytes, lifetime))
}

/// Re-authenticates `conn` before each session the broker grants ends (KIP-368), at 85-95%
/// of the lifetime (as the Java client does), until the connection closes. Kafka closes a
/// connection that sends any request but SaslHandshake once its session has expired, so the
/// renewal must begin in time; requests queued meanwhile wait for it ([`Conn::exclusive`]).
/// When the broker refuses (some brokers do not support re-authentication and answer the
/// second SaslHandshake with an error, then close the connection when the session ends), the
/// connection is retired: requests in flight finish, new ones go to a freshly dialed and
/// authenticated connection, so the session's end takes no request down with it.
pub(crate) fn keep_authenticated(conn: &Conn, sasl: Sasl, first: Duration, mut cache: SaltedCache) {
    let weak = conn.downgrade();
    tokio::spawn(async move {
        let mut lifetime = first;
        loop {
            let mut jitter = [0u8; 1];
            let _ = getrandom::fill(&mut jitter);
            let at = lifetime.mul_f64(0.85 + 0.10 * f64::from(jitter[0]) / 255.0);
            tokio::time::sleep(at).await;
            let Some(conn) = Conn::upgrade(&weak) else { return };
            if conn.is_closed() {
                return;
            }
            match authenticate(&conn, &sasl, &mut cache).await {
                Ok(Some(next)) => {
                    tracing::debug!(addr = conn.addr(), mechanism = sasl.mechanism(), ?next, "re-authenticated");
                    lifetime = next;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(
                        addr = conn.addr(),
                        error = %e,
                        "re-authentication refused; new requests go to a new connection"
                    );
                    conn.retire("the SASL session ends and the broker refused re-authentication");
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let s = Sasl::scram(ScramMechanism::Sha512, "alice", "s3cr3t-pw");
        let p = Sasl::plain("bob", "another-s3cr3t");
        for shown in [format!("{s:?}"), format!("{p:?}"), format!("{}", Secret::new("tok-s3cr3t"))] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }
}
