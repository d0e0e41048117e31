//! The value types settings are written in: sizes, secrets, lists, and kafkit's enums by
//! name.

use bytesize::ByteSize;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A byte count written as `"1MiB"`, `"512 KiB"`, `"64kB"` or a plain number of bytes
/// (`bytesize`'s syntax: `KiB`/`MiB`/`GiB` are powers of 1024, `kB`/`MB`/`GB` of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Size(pub ByteSize);

impl Size {
    /// `n` bytes.
    pub const fn bytes(n: u64) -> Size {
        Size(ByteSize::b(n))
    }
    /// The count, in bytes.
    pub fn get(self) -> u64 {
        self.0.as_u64()
    }
    /// As a `usize`, or the key's error when it does not fit.
    pub(crate) fn to_usize(self, key: &str) -> Result<usize, String> {
        usize::try_from(self.get()).map_err(|_| format!("{key}: {} is too large", self.0))
    }
    /// As an `i32` (the protocol's byte counts), or the key's error when it does not fit.
    pub(crate) fn to_i32(self, key: &str) -> Result<i32, String> {
        i32::try_from(self.get()).map_err(|_| format!("{key}: {} is more than 2 GiB - 1 byte", self.0))
    }
}

/// A password or token: read from a string, never shown (`Debug`, `Display` and
/// serialization all give `<redacted>`).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString)
    }
}

/// A list written as a sequence or as one comma-separated string (how an environment
/// variable carries it: `KAFKIT_BROKERS=a:9092,b:9092`).
pub(crate) mod list {
    use super::*;
    use serde::de::IntoDeserializer;
    use std::marker::PhantomData;

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list, or one comma-separated string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|piece| T::deserialize(piece.to_string().into_deserializer()))
                    .collect()
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<T>()? {
                    out.push(v);
                }
                Ok(out)
            }
        }
        d.deserialize_any(V(PhantomData))
    }

    pub fn serialize<S: Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
}

/// Deserializes a value that may be written as a string or as an integer (`acks = -1` or
/// `acks = "all"`), through `parse`.
fn str_or_int<'de, D, T>(d: D, expecting: &'static str, parse: fn(&str) -> Option<T>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Option<T>,
    }
    impl<'de, T> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.parse)(s.trim()).ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
            (self.parse)(&n.to_string()).ok_or_else(|| E::invalid_value(de::Unexpected::Signed(n), &self))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
            (self.parse)(&n.to_string()).ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(n), &self))
        }
    }
    d.deserialize_any(V { expecting, parse })
}

/// Producer acknowledgements (Java `acks`): `"all"` (or -1), `"leader"` (1), `"none"` (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcksSetting(pub kafkit::Acks);

impl Serialize for AcksSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self.0 {
            kafkit::Acks::All => "all",
            kafkit::Acks::Leader => "leader",
            kafkit::Acks::None => "none",
        })
    }
}

impl<'de> Deserialize<'de> for AcksSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        str_or_int(d, "acks: \"all\" (-1), \"leader\" (1) or \"none\" (0)", |s| {
            Some(AcksSetting(match s {
                "all" | "-1" => kafkit::Acks::All,
                "leader" | "1" => kafkit::Acks::Leader,
                "none" | "0" => kafkit::Acks::None,
                _ => return None,
            }))
        })
    }
}

/// Where a reader starts: `"first"`, `"last"`, or an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartSetting(pub kafkit::StartOffset);

impl Serialize for StartSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            kafkit::StartOffset::First => s.serialize_str("first"),
            kafkit::StartOffset::Last => s.serialize_str("last"),
            kafkit::StartOffset::At(o) => s.serialize_i64(o),
        }
    }
}

impl<'de> Deserialize<'de> for StartSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        str_or_int(d, "\"first\", \"last\" or an offset", |s| {
            Some(StartSetting(match s {
                "first" => kafkit::StartOffset::First,
                "last" => kafkit::StartOffset::Last,
                n => kafkit::StartOffset::At(n.parse().ok().filter(|o: &i64| *o >= 0)?),
            }))
        })
    }
}

/// When a plain group reader commits: `"on-read"`, or an interval such as `"5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSetting(pub kafkit::CommitMode);

impl Serialize for CommitSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            kafkit::CommitMode::OnRead => s.serialize_str("on-read"),
            kafkit::CommitMode::Interval(d) => s.serialize_str(&humantime::format_duration(d).to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for CommitSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "on-read" => Ok(CommitSetting(kafkit::CommitMode::OnRead)),
            other => {
                humantime::parse_duration(other).map(|d| CommitSetting(kafkit::CommitMode::Interval(d))).map_err(|_| {
                    de::Error::invalid_value(de::Unexpected::Str(other), &"\"on-read\" or an interval such as \"5s\"")
                })
            }
        }
    }
}

/// Batch compression: `none`, `gzip`, `snappy`, `lz4`, `zstd` (Java `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum CompressionSetting {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionSetting> for kafkit::Compression {
    fn from(c: CompressionSetting) -> Self {
        match c {
            CompressionSetting::None => kafkit::Compression::None,
            CompressionSetting::Gzip => kafkit::Compression::Gzip,
            CompressionSetting::Snappy => kafkit::Compression::Snappy,
            CompressionSetting::Lz4 => kafkit::Compression::Lz4,
            CompressionSetting::Zstd => kafkit::Compression::Zstd,
        }
    }
}

/// Which records a reader returns: `read-uncommitted` or `read-committed` (Java
/// `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum IsolationSetting {
    ReadUncommitted,
    ReadCommitted,
}

impl From<IsolationSetting> for kafkit::IsolationLevel {
    fn from(i: IsolationSetting) -> Self {
        match i {
            IsolationSetting::ReadUncommitted => kafkit::IsolationLevel::ReadUncommitted,
            IsolationSetting::ReadCommitted => kafkit::IsolationLevel::ReadCommitted,
        }
    }
}

/// What OFFSET_OUT_OF_RANGE does: `earliest`, `latest`, `fail` (Java `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum ResetSetting {
    Earliest,
    Latest,
    Fail,
}

impl From<ResetSetting> for kafkit::OffsetReset {
    fn from(r: ResetSetting) -> Self {
        match r {
            ResetSetting::Earliest => kafkit::OffsetReset::Earliest,
            ResetSetting::Latest => kafkit::OffsetReset::Latest,
            ResetSetting::Fail => kafkit::OffsetReset::Fail,
        }
    }
}

/// A group assignor by its protocol name: `range`, `roundrobin`, `cooperative-sticky`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum AssignorSetting {
    Range,
    #[serde(alias = "round-robin")]
    Roundrobin,
    CooperativeSticky,
}

impl AssignorSetting {
    pub(crate) fn build(self) -> std::sync::Arc<dyn kafkit::consumer::Assignor> {
        match self {
            AssignorSetting::Range => std::sync::Arc::new(kafkit::RangeAssignor),
            AssignorSetting::Roundrobin => std::sync::Arc::new(kafkit::RoundRobinAssignor),
            AssignorSetting::CooperativeSticky => std::sync::Arc::new(kafkit::CooperativeStickyAssignor),
        }
    }
}

/// A writer's balancer by name: `round-robin` (kafka-go's default), `least-bytes`, `hash`
/// (kafka-go's FNV-1a), `reference-hash` (Sarama's), `crc32` (librdkafka's `consistent`),
/// `murmur2` (the Java client's default for keyed records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum BalancerSetting {
    RoundRobin,
    LeastBytes,
    Hash,
    ReferenceHash,
    Crc32,
    Murmur2,
}

impl BalancerSetting {
    pub(crate) fn build(self) -> std::sync::Arc<dyn kafkit::Balancer> {
        match self {
            BalancerSetting::RoundRobin => std::sync::Arc::new(kafkit::RoundRobin::new()),
            BalancerSetting::LeastBytes => std::sync::Arc::new(kafkit::LeastBytes::new()),
            BalancerSetting::Hash => std::sync::Arc::new(kafkit::Hash::new()),
            BalancerSetting::ReferenceHash => std::sync::Arc::new(kafkit::ReferenceHash::new()),
            BalancerSetting::Crc32 => std::sync::Arc::new(kafkit::Crc32Balancer::new()),
            BalancerSetting::Murmur2 => std::sync::Arc::new(kafkit::Murmur2Balancer::new()),
        }
    }
}
