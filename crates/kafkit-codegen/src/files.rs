//! Rust source for the files that cover every schema: `messages/mod.rs` (`ApiKey`,
//! `RequestKind`/`ResponseKind`), `error_code.rs` and `tests/roundtrip.rs`.

use crate::emit::{api_variant, doc_text, HEADER};
use crate::model::Msg;
use std::fmt::Write;

const INTERNAL: &str = "#[cfg(feature = \"broker-internal\")]";

/// The `#[cfg]` line (with its indent and newline) for a message behind `broker-internal`.
fn gate(m: &Msg, indent: &str) -> String {
    if m.internal {
        format!("{indent}{INTERNAL}\n")
    } else {
        String::new()
    }
}

pub fn mod_file(all: &[Msg], removed: &[String]) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("//! Every message of the Kafka protocol, one module per schema, generated from Apache Kafka\n//! 4.4.0's JSON message schemas; [`ApiKey`]; and [`RequestKind`] / [`ResponseKind`] for code\n//! that handles any API chosen at run time.\n//!\n");
    out.push_str("//! The APIs that only brokers and controllers send to one another, and the record schemas only\n//! they write, are built with the non-default `broker-internal` feature:\n");
    let mut apis: Vec<&Msg> = all.iter().filter(|m| m.internal && m.kind == "request").collect();
    apis.sort_by_key(|m| m.api_key);
    for m in apis {
        let api = m.name.trim_end_matches("Request");
        let _ = writeln!(out, "//! {api} ({}),", crate::internal::reason(api).unwrap_or("internal"));
    }
    let data: Vec<&str> = all.iter().filter(|m| m.internal && m.api_key.is_none()).map(|m| m.name.as_str()).collect();
    let _ = writeln!(out, "//! and {}.", data.join(", "));
    if !removed.is_empty() {
        let mut names: Vec<&str> = removed.iter().filter_map(|n| n.strip_suffix("Request")).collect();
        names.sort();
        let _ = writeln!(
            out,
            "//!\n//! Not here: {}, whose schemas have no valid version since Kafka 4.0 removed ZooKeeper.",
            names.join(", ")
        );
    }
    out.push('\n');
    for m in all {
        let _ = writeln!(out, "{}pub mod {};", gate(m, ""), m.module);
    }
    out.push('\n');
    for m in all {
        let _ = writeln!(out, "{}pub use {}::{};", gate(m, ""), m.module, m.name);
    }
    out.push_str("\nuse crate::message::Message;\nuse crate::{ApiVersion, DecodeError, DecodeErrorKind, EncodeError, VersionRange};\nuse bytes::{Bytes, BytesMut};\n\n");
    let mut reqs: Vec<&Msg> = all.iter().filter(|m| m.kind == "request" && m.api_key.is_some()).collect();
    reqs.sort_by_key(|m| m.api_key);
    let resp = |k: i16| all.iter().find(|m| m.kind == "response" && m.api_key == Some(k)).expect("response");

    out.push_str("/// A Kafka API, by its key (the request header's `request_api_key`).\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\n#[repr(i16)]\npub enum ApiKey {\n");
    for m in &reqs {
        let k = m.api_key.unwrap_or(0);
        let doc = if m.internal {
            format!("`{}` / `{}` (feature `broker-internal`)", m.name, resp(k).name)
        } else {
            format!("[`{}`] / [`{}`]", m.name, resp(k).name)
        };
        let _ = writeln!(out, "    /// API key {k}: {doc}.\n    {} = {k},", api_variant(all, k));
    }
    out.push_str("}\n\nimpl ApiKey {\n    /// Every API, by key.\n    pub const ALL: &'static [ApiKey] = &[");
    for m in &reqs {
        let _ = write!(out, "ApiKey::{}, ", api_variant(all, m.api_key.unwrap_or(0)));
    }
    out.push_str("];\n\n    /// The API with this key, if any.\n    pub fn from_key(key: i16) -> Option<ApiKey> {\n        match key {\n");
    for m in &reqs {
        let k = m.api_key.unwrap_or(0);
        let _ = writeln!(out, "            {k} => Some(ApiKey::{}),", api_variant(all, k));
    }
    out.push_str("            _ => None,\n        }\n    }\n\n    /// The key.\n    pub const fn key(self) -> i16 { self as i16 }\n\n    /// The API's name, as in the protocol guide (`Produce`, `Fetch`, ...).\n    pub const fn name(self) -> &'static str {\n        match self {\n");
    for m in &reqs {
        let v = api_variant(all, m.api_key.unwrap_or(0));
        let _ = writeln!(out, "            ApiKey::{v} => \"{v}\",");
    }
    out.push_str("        }\n    }\n\n    /// The request's valid versions (what this crate can encode and decode).\n    pub const fn versions(self) -> VersionRange {\n        match self {\n");
    for m in &reqs {
        let _ =
            writeln!(out, "            ApiKey::{} => {},", api_variant(all, m.api_key.unwrap_or(0)), m.valid.rust());
    }
    out.push_str("        }\n    }\n\n    /// The versions a client negotiates: [`ApiKey::versions`] without a latest version the\n    /// schema marks unstable (`latestVersionUnstable`), which brokers serve only when configured\n    /// to and the Java client never uses.\n    pub const fn stable_versions(self) -> VersionRange {\n        match self {\n");
    for m in &reqs {
        let _ =
            writeln!(out, "            ApiKey::{} => {},", api_variant(all, m.api_key.unwrap_or(0)), m.stable().rust());
    }
    out.push_str("        }\n    }\n\n    /// The request's flexible versions (KIP-482).\n    pub const fn flexible_versions(self) -> VersionRange {\n        match self {\n");
    for m in &reqs {
        let _ = writeln!(
            out,
            "            ApiKey::{} => {},",
            api_variant(all, m.api_key.unwrap_or(0)),
            m.flexible.intersect(m.valid).rust()
        );
    }
    out.push_str("        }\n    }\n\n    /// The response's flexible versions (KIP-482).\n    pub const fn response_flexible_versions(self) -> VersionRange {\n        match self {\n");
    for m in &reqs {
        let r = resp(m.api_key.unwrap_or(0));
        let _ = writeln!(
            out,
            "            ApiKey::{} => {},",
            api_variant(all, m.api_key.unwrap_or(0)),
            r.flexible.intersect(r.valid).rust()
        );
    }
    out.push_str("        }\n    }\n}\n\n");

    for (kind, suffix) in [("Request", "request"), ("Response", "response")] {
        let _ = writeln!(out, "/// Any {suffix}, for code that picks the API at run time.\n#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\npub enum {kind}Kind {{");
        for m in &reqs {
            let k = m.api_key.unwrap_or(0);
            let name = if kind == "Request" { m.name.clone() } else { resp(k).name.clone() };
            let _ = writeln!(out, "    /// [`{name}`].\n{}    {}({name}),", gate(m, "    "), api_variant(all, k));
        }
        let _ = writeln!(out, "}}\n\nimpl {kind}Kind {{\n    /// The API key.\n    pub fn api_key(&self) -> ApiKey {{\n        match self {{");
        for m in &reqs {
            let v = api_variant(all, m.api_key.unwrap_or(0));
            let _ = writeln!(out, "{}            {kind}Kind::{v}(_) => ApiKey::{v},", gate(m, "            "));
        }
        let _ = writeln!(out, "        }}\n    }}\n\n    /// Appends the body encoded at `version`.\n    ///\n    /// # Errors\n    /// As [`Message::encode`].\n    #[inline]\n    pub fn encode(&self, buf: &mut BytesMut, version: ApiVersion) -> Result<(), EncodeError> {{\n        match self {{");
        for m in &reqs {
            let v = api_variant(all, m.api_key.unwrap_or(0));
            let _ =
                writeln!(out, "{}            {kind}Kind::{v}(m) => m.encode(buf, version),", gate(m, "            "));
        }
        let _ = writeln!(out, "        }}\n    }}\n\n    /// Reads the body of API `key`'s {suffix} at `version`.\n    ///\n    /// # Errors\n    /// [`DecodeErrorKind::UnknownApiKey`] for a key no API has,\n    /// [`DecodeErrorKind::BrokerInternalApi`] for one this build leaves out (feature\n    /// `broker-internal`); otherwise as [`Message::decode`].\n    #[inline]\n    pub fn decode(key: i16, buf: &mut Bytes, version: ApiVersion) -> Result<Self, DecodeError> {{\n        match key {{");
        for m in &reqs {
            let k = m.api_key.unwrap_or(0);
            let name = if kind == "Request" { m.name.clone() } else { resp(k).name.clone() };
            let _ = writeln!(
                out,
                "{}            {k} => Ok({kind}Kind::{}({name}::decode(buf, version)?)),",
                gate(m, "            "),
                api_variant(all, k)
            );
        }
        let internal: Vec<String> =
            reqs.iter().filter(|m| m.internal).map(|m| m.api_key.unwrap_or(0).to_string()).collect();
        if !internal.is_empty() {
            let _ = writeln!(
                out,
                "            #[cfg(not(feature = \"broker-internal\"))]\n            {} => Err(DecodeError::new(DecodeErrorKind::BrokerInternalApi(key))),",
                internal.join(" | ")
            );
        }
        out.push_str(
            "            _ => Err(DecodeError::new(DecodeErrorKind::UnknownApiKey(key))),\n        }\n    }\n}\n\n",
        );
    }
    out
}

/// `error_codes.tsv`: a header line, then code, name, retriable (`true`/`false`) and the
/// default message, tab-separated.
pub fn error_code_file(tsv: &str) -> Result<String, String> {
    let mut rows: Vec<(i16, String, bool, String)> = Vec::new();
    for (i, l) in tsv.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let c: Vec<&str> = l.split('\t').collect();
        let line = i + 1;
        let code = c[0].trim().parse().map_err(|e| format!("line {line}: code {:?}: {e}", c[0]))?;
        let name = c.get(1).map(|n| n.trim()).filter(|n| !n.is_empty()).ok_or(format!("line {line}: no name"))?;
        let retriable = match c.get(2).map(|r| r.trim()) {
            Some("true") => true,
            Some("false") => false,
            other => return Err(format!("line {line}: retriable {other:?} is neither true nor false")),
        };
        rows.push((code, name.to_string(), retriable, c.get(3).map(|m| m.trim().to_string()).unwrap_or_default()));
    }
    if rows.is_empty() {
        return Err("no error codes".into());
    }
    let pascal = |n: &str| -> String {
        n.split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
                    None => String::new(),
                }
            })
            .collect()
    };
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("//! Kafka's protocol error codes (protocol guide, \"Error Codes\"), with the standard name and\n//! whether the Java client treats each as retriable (its exception derives from\n//! `RetriableException`).\n\nuse std::fmt;\n\n");
    out.push_str("/// A protocol error code. [`ErrorCode::None`] (0) means success; a code this crate does not\n/// know is kept as [`ErrorCode::Unknown`].\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n#[non_exhaustive]\npub enum ErrorCode {\n");
    for (c, n, r, msg) in &rows {
        let _ = writeln!(out, "    /// `{n}` ({c}){}.", if *r { ", retriable" } else { "" });
        if !msg.is_empty() {
            let _ = writeln!(out, "    ///\n    /// {}", doc_text(msg));
        }
        let _ = writeln!(out, "    {},", pascal(n));
    }
    out.push_str("    /// A code this crate does not know.\n    Unknown(i16),\n}\n\nimpl ErrorCode {\n    /// The error with this code.\n    pub const fn from_code(code: i16) -> ErrorCode {\n        match code {\n");
    for (c, n, _, _) in &rows {
        let _ = writeln!(out, "            {c} => ErrorCode::{},", pascal(n));
    }
    out.push_str("            other => ErrorCode::Unknown(other),\n        }\n    }\n\n    /// The numeric code.\n    pub const fn code(self) -> i16 {\n        match self {\n");
    for (c, n, _, _) in &rows {
        let _ = writeln!(out, "            ErrorCode::{} => {c},", pascal(n));
    }
    out.push_str("            ErrorCode::Unknown(c) => c,\n        }\n    }\n\n    /// The standard name, such as `NOT_LEADER_OR_FOLLOWER` (`UNKNOWN` for an unknown code).\n    pub const fn name(self) -> &'static str {\n        match self {\n");
    for (_, n, _, _) in &rows {
        let _ = writeln!(out, "            ErrorCode::{} => \"{n}\",", pascal(n));
    }
    out.push_str("            ErrorCode::Unknown(_) => \"UNKNOWN\",\n        }\n    }\n\n    /// Whether the Java client retries this error (its exception is a `RetriableException`).\n    /// An unknown code is not retriable.\n    pub const fn is_retriable(self) -> bool {\n        matches!(self, ");
    let retriable: Vec<String> = rows.iter().filter(|r| r.2).map(|r| format!("ErrorCode::{}", pascal(&r.1))).collect();
    out.push_str(&retriable.join(" | "));
    out.push_str(")\n    }\n\n    /// Whether this is success ([`ErrorCode::None`]).\n    pub const fn is_ok(self) -> bool {\n        matches!(self, ErrorCode::None)\n    }\n\n    /// `Ok(())` for [`ErrorCode::None`], else `Err(self)`.\n    ///\n    /// # Errors\n    /// `self` when it is not success.\n    pub const fn into_result(self) -> Result<(), ErrorCode> {\n        if self.is_ok() { Ok(()) } else { Err(self) }\n    }\n\n    /// Every code this crate knows.\n    pub const ALL: &'static [ErrorCode] = &[");
    for (_, n, _, _) in &rows {
        let _ = write!(out, "ErrorCode::{}, ", pascal(n));
    }
    out.push_str("];\n\n    /// The Java client's default message for this error (empty for [`ErrorCode::None`] and an\n    /// unknown code).\n    pub const fn message(self) -> &'static str {\n        match self {\n");
    for (_, n, _, msg) in &rows {
        let _ = writeln!(out, "            ErrorCode::{} => {msg:?},", pascal(n));
    }
    out.push_str("            ErrorCode::Unknown(_) => \"\",\n        }\n    }\n}\n\nimpl From<i16> for ErrorCode {\n    fn from(c: i16) -> Self { ErrorCode::from_code(c) }\n}\n\nimpl fmt::Display for ErrorCode {\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n        write!(f, \"{} ({})\", self.name(), self.code())\n    }\n}\n\nimpl std::error::Error for ErrorCode {}\n");
    Ok(out)
}

pub fn roundtrip_file(all: &[Msg]) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str(
        r#"//! decode(encode(x)) == x for every message at every version it supports, for values
//! proptest draws from what each version can carry (including unknown tagged fields), and
//! `encoded_len` equals the bytes written. Each case checks every version of the message.

use bytes::BytesMut;
use kafkit_protocol::messages::*;
use kafkit_protocol::Message;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn all_versions<M: Message>() -> Vec<BoxedStrategy<M>> {
    M::VERSIONS.iter().map(M::arbitrary).collect()
}

fn check<M: Message>(values: &[M]) -> Result<(), TestCaseError> {
    for (m, v) in values.iter().zip(M::VERSIONS.iter()) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf, v).map_err(|e| TestCaseError::fail(format!("{} {v}: {e}", M::NAME)))?;
        prop_assert_eq!(buf.len(), m.encoded_len(v).unwrap(), "{} {}: encoded_len", M::NAME, v);
        let mut bytes = buf.freeze();
        let back = M::decode(&mut bytes, v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(bytes.is_empty(), "{} {}: {} bytes left over", M::NAME, v, bytes.len());
        prop_assert_eq!(&back, m, "{} {}", M::NAME, v);
    }
    Ok(())
}

/// 24 cases per message by default (each covers every version); `PROPTEST_CASES` raises it.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24);
    // Failures are saved beside this file and committed: they run first, every time.
    let persistence = proptest::test_runner::FileFailurePersistence::Direct(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/roundtrip.proptest-regressions"
    ));
    ProptestConfig { cases, failure_persistence: Some(Box::new(persistence)), ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]
"#,
    );
    for m in all {
        let _ = writeln!(
            out,
            "{}    #[test]\n    fn {}(values in all_versions::<{}>()) {{ check(&values)?; }}",
            gate(m, "    "),
            m.module,
            m.name
        );
    }
    out.push_str("}\n");
    out
}
