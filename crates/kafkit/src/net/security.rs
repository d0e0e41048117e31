//! TLS and SASL settings as plain values, the same from code, from the `kafkit` command's
//! flags and from environment variables.

use super::dialer::Dialer;
use super::sasl::{OAuthToken, Sasl, Secret};
use super::scram::ScramMechanism;
use super::tls::TlsConfig;
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Security settings by value (kafkit's answer to Java's `security.protocol`, `ssl.*` and
/// `sasl.*` properties). [`SecurityOptions::from_env`] reads them from the environment;
/// [`SecurityOptions::apply`] puts them on a [`Dialer`].
///
/// | field | environment variable | `kafkit` flag |
/// |---|---|---|
/// | `tls` | `KAFKIT_TLS` (`1`/`true`) | `--tls` |
/// | `ca_file` | `KAFKIT_TLS_CA` | `--ca FILE` |
/// | `cert_file` | `KAFKIT_TLS_CERT` | `--cert FILE` |
/// | `key_file` | `KAFKIT_TLS_KEY` | `--key FILE` |
/// | `sasl_mechanism` | `KAFKIT_SASL_MECHANISM` | `--sasl-mechanism` |
/// | `username` | `KAFKIT_SASL_USERNAME` | `--username` |
/// | `password` | `KAFKIT_SASL_PASSWORD`, or the file named by `KAFKIT_SASL_PASSWORD_FILE` | `--password-file FILE` |
/// | `token` | `KAFKIT_SASL_TOKEN`, or the file named by `KAFKIT_SASL_TOKEN_FILE` | `--token-file FILE` |
///
/// A password or token is never taken from a command-line flag's value (it would show in
/// `ps` and shell history). A token file is read again for every authentication, so an
/// agent can refresh it. `Debug` never shows secrets.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    /// Connect with TLS (implied by any of the file settings below).
    pub tls: bool,
    /// CA bundle (PEM) to verify brokers against; the system's roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM), for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`; no SASL when `None`.
    pub sasl_mechanism: Option<String>,
    /// The SASL user (PLAIN, SCRAM).
    pub username: Option<String>,
    /// The SASL password (PLAIN, SCRAM).
    pub password: Option<Secret>,
    /// A fixed OAUTHBEARER token (else `token_file`).
    pub token: Option<Secret>,
    /// A file holding the OAUTHBEARER token, read at every authentication.
    pub token_file: Option<PathBuf>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A secret from a file: its first line, without the line end.
pub(crate) fn read_secret(path: &std::path::Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::InvalidArgument(format!("reading the secret file {}: {e}", path.display())))?;
    Ok(Secret::new(text.lines().next().unwrap_or_default().to_string()))
}

impl SecurityOptions {
    /// A secret from a file: its first line, without the line end (for `--password-file`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the file cannot be read.
    pub fn read_secret_file(path: &std::path::Path) -> Result<Secret> {
        read_secret(path)
    }

    /// The settings the `KAFKIT_*` environment variables give (see the table above).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a password file that cannot be read.
    pub fn from_env() -> Result<SecurityOptions> {
        let password = match (var("KAFKIT_SASL_PASSWORD"), var("KAFKIT_SASL_PASSWORD_FILE")) {
            (Some(p), _) => Some(Secret::new(p)),
            (None, Some(f)) => Some(read_secret(f.as_ref())?),
            (None, None) => None,
        };
        Ok(SecurityOptions {
            tls: var("KAFKIT_TLS").is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
            ca_file: var("KAFKIT_TLS_CA").map(PathBuf::from),
            cert_file: var("KAFKIT_TLS_CERT").map(PathBuf::from),
            key_file: var("KAFKIT_TLS_KEY").map(PathBuf::from),
            sasl_mechanism: var("KAFKIT_SASL_MECHANISM"),
            username: var("KAFKIT_SASL_USERNAME"),
            password,
            token: var("KAFKIT_SASL_TOKEN").map(Secret::new),
            token_file: var("KAFKIT_SASL_TOKEN_FILE").map(PathBuf::from),
        })
    }

    /// Puts these settings on `dialer`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`]: a certificate file that does not parse, a certificate
    /// without its key, an unknown mechanism, a mechanism without its credentials.
    pub fn apply(&self, mut dialer: Dialer) -> Result<Dialer> {
        let tls = self.tls || self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some();
        if tls {
            let mut t = TlsConfig::new();
            if let Some(ca) = &self.ca_file {
                t = t.with_ca_file(ca)?;
            }
            t = match (&self.cert_file, &self.key_file) {
                (Some(c), Some(k)) => t.with_client_cert_files(c, k)?,
                (None, None) => t,
                _ => {
                    return Err(Error::InvalidArgument(
                        "a client certificate needs both its certificate and key files".into(),
                    ))
                }
            };
            dialer = dialer.with_tls(t);
        }
        let Some(mechanism) = &self.sasl_mechanism else { return Ok(dialer) };
        let need = |what: &str| Error::InvalidArgument(format!("SASL {mechanism} needs a {what}"));
        let sasl = match mechanism.to_ascii_uppercase().as_str() {
            m @ ("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") => {
                let user = self.username.clone().ok_or_else(|| need("username"))?;
                let password = self.password.clone().ok_or_else(|| need("password (environment variable or file)"))?;
                match m {
                    "PLAIN" => Sasl::plain(user, password),
                    "SCRAM-SHA-256" => Sasl::scram(ScramMechanism::Sha256, user, password),
                    _ => Sasl::scram(ScramMechanism::Sha512, user, password),
                }
            }
            "OAUTHBEARER" => match (&self.token, &self.token_file) {
                (Some(t), _) => {
                    let t = t.clone();
                    Sasl::oauthbearer(move || {
                        let token = OAuthToken { value: t.clone(), extensions: Vec::new() };
                        async move { Ok(token) }
                    })
                }
                (None, Some(f)) => {
                    let f = f.clone();
                    Sasl::oauthbearer(move || {
                        let token = read_secret(&f).map(|value| OAuthToken { value, extensions: Vec::new() });
                        async move { token }
                    })
                }
                (None, None) => return Err(need("token (environment variable or file)")),
            },
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown SASL mechanism {other:?} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)"
                )))
            }
        };
        Ok(dialer.with_sasl(sasl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pieces_are_named_and_secrets_never_shown() {
        let o = SecurityOptions { sasl_mechanism: Some("SCRAM-SHA-512".into()), ..Default::default() };
        assert!(o.apply(Dialer::new()).unwrap_err().to_string().contains("needs a username"));
        let o = SecurityOptions {
            sasl_mechanism: Some("scram-sha-512".into()),
            username: Some("alice".into()),
            password: Some(Secret::new("pw-s3cr3t")),
            ..Default::default()
        };
        let d = o.apply(Dialer::new()).unwrap();
        assert_eq!(d.sasl().unwrap().mechanism(), "SCRAM-SHA-512");
        for shown in [format!("{o:?}"), format!("{d:?}")] {
            assert!(!shown.contains("pw-s3cr3t"), "{shown}");
        }
        let o = SecurityOptions { sasl_mechanism: Some("GSSAPI".into()), ..Default::default() };
        assert!(o.apply(Dialer::new()).unwrap_err().to_string().contains("unknown SASL mechanism"));
        let o = SecurityOptions { cert_file: Some("c.pem".into()), ..Default::default() };
        assert!(o.apply(Dialer::new()).is_err());
    }
}
