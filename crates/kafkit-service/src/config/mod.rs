//! Layered configuration: built-in defaults, then configuration files (TOML or YAML), then
//! `KAFKIT_*` environment variables, then code; the last layer that sets a key wins
//! (kafkax: embedded YAML defaults, `KAFKAX_*` variables, functional options).
//!
//! The layering is [figment](https://docs.rs/figment)'s, which also remembers where each
//! value came from: [`Config::entries`] lists every setting with its source (what
//! `kafkit config show` prints) and a bad value's [`ConfigError`] names its key, its source
//! (the file and line, or the variable) and what was expected.
//!
//! ```toml
//! brokers = ["localhost:9092"]          # KAFKIT_BROKERS=a:9092,b:9092
//!
//! [cluster]
//! client_id = "billing"
//! request_timeout = "30s"
//!
//! [sasl]
//! mechanism = "SCRAM-SHA-512"
//! username = "billing"
//! password_file = "/run/secrets/kafka" # or KAFKIT_SASL_PASSWORD; never the password here
//!
//! [reader]
//! group_id = "billing"
//! session_timeout = "10s"
//!
//! [writer]
//! linger = "10ms"                      # KAFKIT_WRITER__LINGER=10ms
//! batch_bytes = "1MiB"
//!
//! [consumer.retry]
//! max_attempts = 5
//! backoff = { min = "200ms", max = "10s", jitter = 0.2 }
//! ```
//!
//! Durations are `humantime`'s (`"250ms"`, `"5s"`, `"1m 30s"`); sizes `bytesize`'s
//! (`"1MiB"`, `"64 KiB"`, or a number of bytes). Unknown keys are errors, in files and in
//! `KAFKIT_*__*` variables alike. The variables are listed in [`mod@env`].
//!
//! **Why mirror structs.** kafkit's own config structs ([`kafkit::WriterConfig`],
//! [`kafkit::ReaderConfig`], [`kafkit::ClusterConfig`]) hold things that are not settings
//! (a balancer object, assignor objects, a completion callback, a dialer with TLS
//! material), and the client crate stays free of serde. So each section here is a plain
//! serde struct that mirrors kafkit's field by field and converts into it with a struct
//! literal that names every field: a field added to kafkit's structs fails to compile here
//! until it is mapped (and the defaults are read from kafkit's own `Default`s, destructured
//! the same way).

pub(crate) mod client;
pub mod env;
pub(crate) mod reader;
pub(crate) mod service;
mod source;
pub(crate) mod types;
pub(crate) mod writer;

pub use client::{BackoffSettings, ClusterSettings, SaslSettings, TlsSettings, SECRET_KEYS};
pub use reader::ReaderSettings;
pub use service::{
    BatchScope, BatchSettings, ConsumerSettings, DeadLetterSettings, HealthSettings, Ordering, RetryMode,
    RetrySettings, RevokeMode, ShutdownSettings, TopicSettings,
};
pub use source::ValueSource;
pub use types::{
    AcksSetting, AssignorSetting, BalancerSetting, CommitSetting, CompressionSetting, IsolationSetting, ResetSetting,
    SecretString, Size, StartSetting,
};
pub use writer::WriterSettings;

use figment::providers::{Format, Serialized, Toml, Yaml};
use figment::value::Value;
use figment::{Figment, Metadata, Provider};
use serde::{Deserialize, Serialize};
use source::{source_of, Text, CODE_NAME, DEFAULT_NAME, EMBEDDED_PREFIX};
use std::fmt;
use std::path::Path;

/// Every setting: the client's (cluster, TLS, SASL, reader, writer) and this layer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Bootstrap brokers, `host:port` each. Default `["localhost:9092"]`.
    #[serde(with = "types::list")]
    pub brokers: Vec<String>,
    /// The cluster client and its connections.
    pub cluster: ClusterSettings,
    /// TLS.
    pub tls: TlsSettings,
    /// SASL.
    pub sasl: SaslSettings,
    /// The Reader (the service's group members).
    pub reader: ReaderSettings,
    /// The Writer (dead-letter and retry topics, outputs).
    pub writer: WriterSettings,
    /// The consumer runtime.
    pub consumer: ConsumerSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// Health.
    pub health: HealthSettings,
    /// The application's own section, not checked here: read it, typed, with
    /// [`Config::app`] (`KAFKIT_APP__ORDERS_TOPIC=orders` sets `app.orders_topic`).
    pub app: figment::value::Dict,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            brokers: vec!["localhost:9092".into()],
            cluster: ClusterSettings::default(),
            tls: TlsSettings::default(),
            sasl: SaslSettings::default(),
            reader: ReaderSettings::default(),
            writer: WriterSettings::default(),
            consumer: ConsumerSettings::default(),
            shutdown: ShutdownSettings::default(),
            health: HealthSettings::default(),
            app: figment::value::Dict::new(),
        }
    }
}

impl Settings {
    /// The brokers as `&str`s.
    pub fn brokers(&self) -> Vec<&str> {
        self.brokers.iter().map(String::as_str).collect()
    }
    /// kafkit's [`ClusterConfig`](kafkit::ClusterConfig), TLS and SASL included.
    ///
    /// # Errors
    /// A bad TLS file, SASL without its credentials, a secret file that cannot be read.
    pub fn cluster_config(&self) -> Result<kafkit::ClusterConfig, String> {
        self.cluster.cluster_config(&self.tls, &self.sasl)
    }
    /// kafkit's [`WriterConfig`](kafkit::WriterConfig).
    ///
    /// # Errors
    /// As [`Settings::cluster_config`]; a size that does not fit.
    pub fn writer_config(&self) -> Result<kafkit::WriterConfig, String> {
        self.writer.to_config(self.cluster_config()?)
    }
    /// kafkit's [`ReaderConfig`](kafkit::ReaderConfig).
    ///
    /// # Errors
    /// As [`Settings::cluster_config`]; a bad partition or size.
    pub fn reader_config(&self) -> Result<kafkit::ReaderConfig, String> {
        self.reader.to_config(self.cluster_config()?)
    }
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The key, dotted (`writer.linger`); empty for a file that does not parse.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// Where the value came from.
    pub source: ValueSource,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), &self.source) {
            (true, s) => write!(f, "{s}: {}", self.message),
            (false, ValueSource::Default) => write!(f, "{}: {}", self.key, self.message),
            (false, s) => write!(f, "{} (from {s}): {}", self.key, self.message),
        }
    }
}

/// The configuration could not be loaded: every problem found, each with its key and
/// source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, at least one.
    pub issues: Vec<ConfigIssue>,
}

impl ConfigError {
    fn one(key: &str, message: impl Into<String>, source: ValueSource) -> ConfigError {
        ConfigError { issues: vec![ConfigIssue { key: key.into(), message: message.into(), source }] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// One effective setting, for `kafkit config show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The dotted key.
    pub key: String,
    /// The value as TOML would write it; secrets are `"<redacted>"`, unset values `unset`.
    pub value: String,
    /// Where it came from.
    pub source: ValueSource,
}

/// Builds a [`Config`] layer by layer; later layers win. The built-in defaults are always
/// the first.
#[derive(Debug)]
#[must_use]
pub struct ConfigBuilder {
    figment: Figment,
    texts: Vec<Text>,
    problems: Vec<ConfigIssue>,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder::new()
    }
}

/// A provider under a name of the builder's choosing.
struct Named<P> {
    inner: P,
    name: String,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }
    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.inner.data()
    }
}

impl ConfigBuilder {
    /// The built-in defaults alone.
    pub fn new() -> Self {
        let defaults = Named { inner: Serialized::defaults(Settings::default()), name: DEFAULT_NAME.into() };
        ConfigBuilder { figment: Figment::from(defaults), texts: Vec::new(), problems: Vec::new() }
    }

    /// A configuration file: TOML for `.toml`, YAML for `.yaml`/`.yml`. A file that does not
    /// exist is an error at [`ConfigBuilder::build`].
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        let yaml = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => false,
            Some("yaml" | "yml") => true,
            _ => {
                self.problems.push(ConfigIssue {
                    key: String::new(),
                    message: "a configuration file must end in .toml, .yaml or .yml".into(),
                    source: ValueSource::File { path, line: None },
                });
                return self;
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                self.texts.push(Text { name: path.display().to_string(), yaml, text });
                self.figment = if yaml {
                    self.figment.merge(Yaml::file_exact(&path))
                } else {
                    self.figment.merge(Toml::file_exact(&path))
                };
            }
            Err(e) => self.problems.push(ConfigIssue {
                key: String::new(),
                message: format!("cannot be read: {e}"),
                source: ValueSource::File { path, line: None },
            }),
        }
        self
    }

    /// A TOML text, named `name` in sources (for defaults compiled into the program).
    pub fn toml_str(mut self, name: &str, text: &str) -> Self {
        self.texts.push(Text { name: name.into(), yaml: false, text: text.into() });
        self.figment =
            self.figment.merge(Named { inner: Toml::string(text), name: format!("{EMBEDDED_PREFIX}{name}") });
        self
    }

    /// A YAML text, named `name` in sources.
    pub fn yaml_str(mut self, name: &str, text: &str) -> Self {
        self.texts.push(Text { name: name.into(), yaml: true, text: text.into() });
        self.figment =
            self.figment.merge(Named { inner: Yaml::string(text), name: format!("{EMBEDDED_PREFIX}{name}") });
        self
    }

    /// The process's `KAFKIT_*` environment variables (see [`mod@env`]).
    pub fn env(self) -> Self {
        self.env_from(std::env::vars())
    }

    /// These variables, as if they were the environment (for tests and for programs that
    /// read their environment elsewhere).
    pub fn env_from(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.figment = self.figment.merge(env::EnvProvider::new(vars));
        self
    }

    /// Sets `key` (dotted, `writer.linger`) from code: `set("writer.linger", "10ms")`,
    /// `set("consumer.retry.max_attempts", 5)`.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Self {
        self.figment = self.figment.merge(Named { inner: Serialized::global(key, value), name: CODE_NAME.into() });
        self
    }

    /// Merges the layers and checks the result.
    ///
    /// # Errors
    /// [`ConfigError`] with every problem: files that cannot be read or parsed, unknown keys,
    /// values of the wrong type or out of range, a secret in a file; each naming its key and
    /// where it came from.
    pub fn build(self) -> Result<Config, ConfigError> {
        if !self.problems.is_empty() {
            return Err(ConfigError { issues: self.problems });
        }
        let settings: Settings = match self.figment.extract_lossy() {
            Ok(s) => s,
            Err(e) => return Err(ConfigError { issues: e.into_iter().map(|e| issue(e, &self.texts)).collect() }),
        };
        let config = Config { settings, figment: self.figment, texts: self.texts };
        config.check()?;
        Ok(config)
    }
}

fn issue(e: figment::Error, texts: &[Text]) -> ConfigIssue {
    use figment::error::Kind;
    let mut path = e.path.clone();
    let message = match &e.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            format!("unknown key `{field}`; expected one of: {}", expected.join(", "))
        }
        Kind::MissingField(field) => {
            if path.last().map(String::as_str) != Some(field) {
                path.push(field.to_string());
            }
            "missing".to_string()
        }
        Kind::InvalidType(actual, expected) => format!("expected {expected}, found {actual}"),
        Kind::InvalidValue(actual, expected) => format!("expected {expected}, found {actual}"),
        Kind::UnknownVariant(v, expected) => format!("unknown value `{v}`; expected one of: {}", expected.join(", ")),
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    };
    let source = source_of(e.metadata.as_ref(), &path, texts);
    ConfigIssue { key: path.join("."), message, source }
}

/// The effective configuration: the [`Settings`] and where each value came from.
#[derive(Debug, Clone)]
pub struct Config {
    settings: Settings,
    figment: Figment,
    texts: Vec<Text>,
}

impl Config {
    /// A builder starting from the built-in defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// The usual layers: defaults, `file` if given, then the environment.
    ///
    /// # Errors
    /// As [`ConfigBuilder::build`].
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let b = ConfigBuilder::new();
        let b = match file {
            Some(f) => b.file(f),
            None => b,
        };
        b.env().build()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings, to change in code after loading (such changes show as the layer below
    /// them in [`Config::entries`]; prefer [`ConfigBuilder::set`]).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// The `[app]` section as the application's own type, with the same layering and the
    /// same errors (key, source, what was expected).
    ///
    /// # Errors
    /// [`ConfigError`] when the section does not deserialize into `T`.
    pub fn app<'de, T: Deserialize<'de>>(&self) -> Result<T, ConfigError> {
        let empty = Figment::from(Serialized::defaults(Empty {}));
        let fig = if self.figment.contains("app") { self.figment.focus("app") } else { empty };
        fig.extract_lossy().map_err(|e| ConfigError {
            issues: e
                .into_iter()
                .map(|mut e| {
                    e.path.insert(0, "app".into());
                    issue(e, &self.texts)
                })
                .collect(),
        })
    }

    /// Where the value of `key` (dotted) came from.
    pub fn source_of(&self, key: &str) -> ValueSource {
        let path: Vec<String> = key.split('.').map(String::from).collect();
        source_of(self.figment.find_metadata(key), &path, &self.texts)
    }

    /// Every setting, in key order, with its value (secrets redacted) and source.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        match Value::serialize(&self.settings) {
            Ok(v) => self.walk(&v, &mut Vec::new(), &mut out),
            Err(e) => out.push(Entry { key: String::new(), value: e.to_string(), source: ValueSource::Default }),
        }
        out
    }

    fn walk(&self, v: &Value, path: &mut Vec<String>, out: &mut Vec<Entry>) {
        match v {
            Value::Dict(_, d) if !d.is_empty() || path.is_empty() => {
                for (k, v) in d {
                    path.push(k.clone());
                    self.walk(v, path, out);
                    path.pop();
                }
            }
            leaf => {
                let key = path.join(".");
                let value = if SECRET_KEYS.contains(&key.as_str()) && !matches!(leaf, Value::Empty(..)) {
                    "\"<redacted>\"".to_string()
                } else {
                    render(leaf)
                };
                out.push(Entry { source: self.source_of(&key), key, value });
            }
        }
    }

    /// Checks what serde cannot: secrets only from the environment, files or code; ranges.
    fn check(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        for key in SECRET_KEYS {
            let set = match *key {
                "sasl.password" => s.sasl.password.is_some(),
                _ => s.sasl.token.is_some(),
            };
            let source = self.source_of(key);
            if set && matches!(source, ValueSource::File { .. } | ValueSource::Embedded { .. }) {
                let var = env::var_of(key);
                return Err(ConfigError::one(
                    key,
                    format!("a secret may not be written in a configuration file: set {var}, or name a file holding it with `{key}_file`"),
                    source,
                ));
            }
        }
        let checks: [(&str, Result<(), String>); 4] = [
            ("cluster.backoff", s.cluster.backoff.check("cluster.backoff")),
            ("consumer.retry.backoff", s.consumer.retry.backoff.check("consumer.retry.backoff")),
            (
                "consumer.dead_letter.retry_backoff",
                s.consumer.dead_letter.retry_backoff.check("consumer.dead_letter.retry_backoff"),
            ),
            (
                "consumer.retry.max_attempts",
                if s.consumer.retry.max_attempts == 0 { Err("at least 1 (the first call)".into()) } else { Ok(()) },
            ),
        ];
        let mut issues = Vec::new();
        for (key, r) in checks {
            if let Err(message) = r {
                issues.push(ConfigIssue { key: key.into(), message, source: self.source_of(key) });
            }
        }
        for (key, v) in [
            ("consumer.partition_concurrency", s.consumer.partition_concurrency),
            ("consumer.key_concurrency", s.consumer.key_concurrency),
            ("consumer.max_buffered", s.consumer.max_buffered),
            ("consumer.batch.max_records", s.consumer.batch.max_records),
        ] {
            if v == 0 {
                issues.push(ConfigIssue {
                    key: key.into(),
                    message: "must be at least 1".into(),
                    source: self.source_of(key),
                });
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { issues })
        }
    }
}

#[derive(Serialize)]
struct Empty {}

/// A value as TOML writes it.
fn render(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{:?}", c.to_string()),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n
            .to_u128()
            .map(|u| u.to_string())
            .or_else(|| n.to_i128().map(|i| i.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string()))
            .unwrap_or_default(),
        Value::Empty(..) => "unset".to_string(),
        Value::Array(_, items) => format!("[{}]", items.iter().map(render).collect::<Vec<_>>().join(", ")),
        Value::Dict(_, d) => {
            let inner: Vec<String> = d.iter().map(|(k, v)| format!("{k} = {}", render(v))).collect();
            format!("{{ {} }}", inner.join(", "))
        }
    }
}

#[cfg(test)]
mod tests;
