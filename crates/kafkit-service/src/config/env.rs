//! The `KAFKIT_*` environment variables as a figment provider.
//!
//! | variable | key |
//! |---|---|
//! | `KAFKIT_<SECTION>__<KEY>` (`__` between levels) | `section.key`, lower-cased: `KAFKIT_WRITER__LINGER=10ms` is `writer.linger`, `KAFKIT_CONSUMER__RETRY__MAX_ATTEMPTS=5` is `consumer.retry.max_attempts`, `KAFKIT_CONSUMER__TOPICS__ORDERS__MAX_ATTEMPTS=1` is `consumer.topics.orders.max_attempts` |
//! | `KAFKIT_BROKERS` | `brokers` (comma-separated) |
//! | `KAFKIT_TLS` | `tls.enabled` |
//! | `KAFKIT_TLS_CA`, `KAFKIT_TLS_CERT`, `KAFKIT_TLS_KEY` | `tls.ca_file`, `tls.cert_file`, `tls.key_file` |
//! | `KAFKIT_SASL_MECHANISM`, `KAFKIT_SASL_USERNAME` | `sasl.mechanism`, `sasl.username` |
//! | `KAFKIT_SASL_PASSWORD`, `KAFKIT_SASL_PASSWORD_FILE` | `sasl.password`, `sasl.password_file` |
//! | `KAFKIT_SASL_TOKEN`, `KAFKIT_SASL_TOKEN_FILE` | `sasl.token`, `sasl.token_file` |
//!
//! The single-underscore names are the `kafkit` command's (`SecurityOptions::from_env`), with
//! the same meaning. Every variable with a `__` is a setting of this layer, and one that names
//! no key is an error; other `KAFKIT_` variables without one (`KAFKIT_CACHE`, ...) belong to
//! other tools and are not read. Empty values count as unset. Lists are comma-separated.

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The prefix of every variable.
pub const PREFIX: &str = "KAFKIT_";

/// The variables without `__` that are read, and their keys.
pub const ALIASES: &[(&str, &str)] = &[
    ("KAFKIT_BROKERS", "brokers"),
    ("KAFKIT_TLS", "tls.enabled"),
    ("KAFKIT_TLS_CA", "tls.ca_file"),
    ("KAFKIT_TLS_CERT", "tls.cert_file"),
    ("KAFKIT_TLS_KEY", "tls.key_file"),
    ("KAFKIT_SASL_MECHANISM", "sasl.mechanism"),
    ("KAFKIT_SASL_USERNAME", "sasl.username"),
    ("KAFKIT_SASL_PASSWORD", "sasl.password"),
    ("KAFKIT_SASL_PASSWORD_FILE", "sasl.password_file"),
    ("KAFKIT_SASL_TOKEN", "sasl.token"),
    ("KAFKIT_SASL_TOKEN_FILE", "sasl.token_file"),
];

/// The name figment's metadata gives this provider.
pub(crate) const NAME: &str = "environment variable";

/// The key a variable sets, if it is one of this layer's.
pub fn key_of(var: &str) -> Option<String> {
    if let Some((_, key)) = ALIASES.iter().find(|(v, _)| v.eq_ignore_ascii_case(var)) {
        return Some(key.to_string());
    }
    let rest = var.get(..PREFIX.len()).filter(|p| p.eq_ignore_ascii_case(PREFIX)).map(|_| &var[PREFIX.len()..])?;
    rest.contains("__").then(|| rest.split("__").map(str::to_ascii_lowercase).collect::<Vec<_>>().join("."))
}

/// The variable that sets `key` (its alias when it has one).
pub fn var_of(key: &str) -> String {
    match ALIASES.iter().find(|(_, k)| *k == key) {
        Some((v, _)) => v.to_string(),
        None => format!("{PREFIX}{}", key.split('.').map(str::to_ascii_uppercase).collect::<Vec<_>>().join("__")),
    }
}

/// The variables, read once.
#[derive(Clone, Debug)]
pub(crate) struct EnvProvider {
    /// key -> (variable, value)
    vars: Arc<BTreeMap<String, (String, String)>>,
}

impl EnvProvider {
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut map = BTreeMap::new();
        for (name, value) in vars {
            if value.trim().is_empty() {
                continue;
            }
            if let Some(key) = key_of(&name) {
                map.insert(key, (name, value));
            }
        }
        EnvProvider { vars: Arc::new(map) }
    }
}

impl Provider for EnvProvider {
    fn metadata(&self) -> Metadata {
        let vars = self.vars.clone();
        Metadata::named(NAME).interpolater(move |_: &Profile, keys: &[&str]| {
            let key = keys.join(".");
            let prefix = format!("{key}.");
            vars.get(&key)
                .or_else(|| vars.iter().find(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v))
                .map(|(v, _)| v.clone())
                .unwrap_or_else(|| var_of(&key))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, (_, value)) in self.vars.iter() {
            let nested = figment::util::nest(key, Value::from(value.trim().to_string()));
            if let Some(d) = nested.into_dict() {
                dict = merge(dict, d);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Deep merge of two dictionaries (`b` wins).
fn merge(mut a: Dict, b: Dict) -> Dict {
    for (k, v) in b {
        let merged = match (a.remove(&k), v) {
            (Some(Value::Dict(_, x)), Value::Dict(tag, y)) => Value::Dict(tag, merge(x, y)),
            (_, v) => v,
        };
        a.insert(k, merged);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_keys_and_back() {
        assert_eq!(key_of("KAFKIT_WRITER__LINGER").as_deref(), Some("writer.linger"));
        assert_eq!(key_of("KAFKIT_CONSUMER__RETRY__MAX_ATTEMPTS").as_deref(), Some("consumer.retry.max_attempts"));
        assert_eq!(key_of("KAFKIT_SASL_PASSWORD").as_deref(), Some("sasl.password"));
        assert_eq!(key_of("KAFKIT_CACHE"), None);
        assert_eq!(key_of("KAFKIT_TEST_CLUSTER"), None);
        assert_eq!(key_of("OTHER__X"), None);
        assert_eq!(var_of("writer.linger"), "KAFKIT_WRITER__LINGER");
        assert_eq!(var_of("tls.ca_file"), "KAFKIT_TLS_CA");
    }
}
