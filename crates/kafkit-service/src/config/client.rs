//! Settings of the cluster client, its dialer, TLS and SASL, and how they become kafkit's
//! [`ClusterConfig`] and [`Dialer`].

use super::types::{SecretString, Size};
use kafkit::cluster::{Backoff, ClusterConfig};
use kafkit::{Dialer, Secret, SecurityOptions, TlsConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Exponential backoff with jitter (KIP-580): waits double from `min` to `max`, each moved by
/// up to ±`jitter` of itself. Mirrors [`kafkit::cluster::Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffSettings {
    /// The first wait. `cluster.backoff`: 100 ms (Java `retry.backoff.ms`).
    #[serde(with = "humantime_serde")]
    pub min: Duration,
    /// The longest wait. `cluster.backoff`: 1 s (Java `retry.backoff.max.ms`).
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// The fraction (0 to 1) each wait may move either way. Default 0.2.
    pub jitter: f64,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        BackoffSettings::from(Backoff::default())
    }
}

impl From<Backoff> for BackoffSettings {
    fn from(b: Backoff) -> Self {
        let Backoff { min, max, jitter } = b;
        BackoffSettings { min, max, jitter }
    }
}

impl BackoffSettings {
    /// kafkit's [`Backoff`]. Every field of it is set here: a field added to `Backoff` fails
    /// to compile until it is mapped.
    pub fn to_backoff(&self) -> Backoff {
        Backoff { min: self.min, max: self.max, jitter: self.jitter }
    }
    pub(crate) fn check(&self, key: &str) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!("{key}.jitter: {} is not between 0 and 1", self.jitter));
        }
        if self.min > self.max {
            return Err(format!("{key}: min ({:?}) is above max ({:?})", self.min, self.max));
        }
        Ok(())
    }
}

/// The cluster client ([`kafkit::Cluster`]) and its dialer ([`kafkit::Dialer`]). Section
/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// The client id of every request (Java `client.id`). Default `kafkit`.
    pub client_id: String,
    /// How long the TCP connect (and the TLS handshake) may take (Java
    /// `socket.connection.setup.timeout.ms`). Default 10 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a request waits for its response (Java `request.timeout.ms`). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// The largest response frame accepted. Default 100 MiB.
    pub max_response_bytes: Size,
    /// Highest versions to use per API, by the API's name (`JoinGroup = 5`): a way around a
    /// broker that advertises a version it parses wrongly. Default none.
    pub max_versions: BTreeMap<String, i16>,
    /// Metadata is refreshed at least this often (Java `metadata.max.age.ms`). Default 5 min.
    #[serde(with = "humantime_serde")]
    pub metadata_max_age: Duration,
    /// Backoff between retries (Java `retry.backoff.ms`, `retry.backoff.max.ms`).
    pub backoff: BackoffSettings,
    /// How long the cluster client retries a request (Java `default.api.timeout.ms`). Default
    /// 60 s.
    #[serde(with = "humantime_serde")]
    pub retry_timeout: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        let ClusterConfig { dialer, metadata_max_age, backoff, retry_timeout } = ClusterConfig::default();
        ClusterSettings {
            client_id: dialer.client_id().unwrap_or(kafkit::net::DEFAULT_CLIENT_ID).to_string(),
            connect_timeout: dialer.connect_timeout(),
            request_timeout: dialer.request_timeout(),
            max_response_bytes: Size::bytes(dialer.max_response_bytes() as u64),
            max_versions: BTreeMap::new(),
            metadata_max_age,
            backoff: backoff.into(),
            retry_timeout,
        }
    }
}

/// TLS (Java `security.protocol=SSL`, `ssl.*`). Section `[tls]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// Connect with TLS. Implied by `ca_file`, `cert_file` and `key_file`. Default false.
    pub enabled: bool,
    /// CA bundle (PEM) to verify brokers against (Java `ssl.truststore.location`); the
    /// system's roots when unset.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for mutual TLS (Java `ssl.keystore.location`).
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM), for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// The name to verify and send as SNI instead of the host dialed.
    pub server_name: Option<String>,
    /// Accept any certificate (tests only; Java
    /// `ssl.endpoint.identification.algorithm=` does less). Default false.
    pub insecure_skip_verify: bool,
}

/// SASL (Java `sasl.mechanism`, `sasl.jaas.config`). Section `[sasl]`. The password and the
/// token are secrets: only the environment (`KAFKIT_SASL_PASSWORD`, `KAFKIT_SASL_TOKEN`),
/// a file (`password_file`, `token_file`) or code may give them; a config file that holds
/// one is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaslSettings {
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`; no SASL when unset.
    pub mechanism: Option<String>,
    /// The user (PLAIN, SCRAM).
    pub username: Option<String>,
    /// The password (PLAIN, SCRAM): environment or code only.
    pub password: Option<SecretString>,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// A fixed OAUTHBEARER token: environment or code only.
    pub token: Option<SecretString>,
    /// A file holding the OAUTHBEARER token, read again at every authentication.
    pub token_file: Option<PathBuf>,
}

/// The keys that hold secrets: redacted by `kafkit config show`, refused from files.
pub const SECRET_KEYS: &[&str] = &["sasl.password", "sasl.token"];

impl ClusterSettings {
    /// kafkit's [`Dialer`] with these settings, TLS and SASL.
    ///
    /// # Errors
    /// A message naming the key: an unknown API name in `max_versions`, TLS files that do not
    /// parse, a mechanism without its credentials, a secret file that cannot be read.
    pub fn dialer(&self, tls: &TlsSettings, sasl: &SaslSettings) -> Result<Dialer, String> {
        let mut d = Dialer::new()
            .with_client_id(self.client_id.clone())
            .with_connect_timeout(self.connect_timeout)
            .with_request_timeout(self.request_timeout)
            .with_max_response_bytes(self.max_response_bytes.to_usize("cluster.max_response_bytes")?);
        for (name, v) in &self.max_versions {
            let api = kafkit::protocol::ApiKey::ALL.iter().find(|k| format!("{k:?}").eq_ignore_ascii_case(name));
            let Some(api) = api else {
                return Err(format!("cluster.max_versions: {name:?} is not a Kafka API name (such as JoinGroup)"));
            };
            d = d.with_max_version(*api, *v);
        }
        if tls.enabled || tls.ca_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some() {
            let mut t = TlsConfig::new();
            if let Some(ca) = &tls.ca_file {
                t = t.with_ca_file(ca).map_err(|e| format!("tls.ca_file: {e}"))?;
            }
            t = match (&tls.cert_file, &tls.key_file) {
                (Some(c), Some(k)) => t.with_client_cert_files(c, k).map_err(|e| format!("tls.cert_file: {e}"))?,
                (None, None) => t,
                _ => return Err("tls: a client certificate needs both cert_file and key_file".into()),
            };
            if let Some(n) = &tls.server_name {
                t = t.with_server_name(n.clone());
            }
            if tls.insecure_skip_verify {
                t = t.dangerous_skip_verification();
            }
            d = d.with_tls(t);
        }
        let password = match (&sasl.password, &sasl.password_file) {
            (Some(p), _) => Some(Secret::new(p.expose())),
            (None, Some(f)) => {
                Some(SecurityOptions::read_secret_file(f).map_err(|e| format!("sasl.password_file: {e}"))?)
            }
            (None, None) => None,
        };
        let o = SecurityOptions {
            sasl_mechanism: sasl.mechanism.clone(),
            username: sasl.username.clone(),
            password,
            token: sasl.token.as_ref().map(|t| Secret::new(t.expose())),
            token_file: sasl.token_file.clone(),
            ..SecurityOptions::default()
        };
        o.apply(d).map_err(|e| format!("sasl: {e}"))
    }

    /// kafkit's [`ClusterConfig`]. Every field is set here: a field added to `ClusterConfig`
    /// fails to compile until it is mapped.
    ///
    /// # Errors
    /// As [`ClusterSettings::dialer`].
    pub fn cluster_config(&self, tls: &TlsSettings, sasl: &SaslSettings) -> Result<ClusterConfig, String> {
        self.backoff.check("cluster.backoff")?;
        Ok(ClusterConfig {
            dialer: self.dialer(tls, sasl)?,
            metadata_max_age: self.metadata_max_age,
            backoff: self.backoff.to_backoff(),
            retry_timeout: self.retry_timeout,
        })
    }
}
