//! The schemas, read from JSON into a small model.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// An inclusive version range; empty when `min > max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: i16,
    pub max: i16,
}

impl Range {
    pub const NONE: Range = Range { min: 0, max: -1 };

    pub fn parse(s: &str) -> Result<Range, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Range::NONE);
        }
        let num = |x: &str| x.trim().parse::<i16>().map_err(|e| format!("version {x:?}: {e}"));
        if let Some(lo) = s.strip_suffix('+') {
            return Ok(Range { min: num(lo)?, max: i16::MAX });
        }
        if let Some((lo, hi)) = s.split_once('-') {
            return Ok(Range { min: num(lo)?, max: num(hi)? });
        }
        let v = num(s)?;
        Ok(Range { min: v, max: v })
    }
    pub fn is_empty(self) -> bool {
        self.min > self.max
    }
    pub fn contains(self, v: i16) -> bool {
        v >= self.min && v <= self.max
    }
    pub fn intersect(self, o: Range) -> Range {
        Range { min: self.min.max(o.min), max: self.max.min(o.max) }
    }
    /// A Rust boolean expression over `v` that is true for versions in `self`, simplified for
    /// versions inside `within` (the message's valid versions).
    pub fn cond(self, within: Range) -> String {
        let r = self.intersect(within);
        if r.is_empty() {
            return "false".into();
        }
        match (r.min <= within.min, r.max >= within.max) {
            (true, true) => "true".into(),
            (false, true) => format!("v >= {}", r.min),
            (true, false) => format!("v <= {}", r.max),
            (false, false) => format!("(v >= {} && v <= {})", r.min, r.max),
        }
    }
    /// `VersionRange::new(min, max)` (or `VersionRange::NONE`).
    pub fn rust(self) -> String {
        if self.is_empty() {
            "VersionRange::NONE".into()
        } else {
            format!("VersionRange::new({}, {})", self.min, self.max)
        }
    }
    pub fn text(self) -> String {
        if self.is_empty() {
            "none".into()
        } else if self.max == i16::MAX {
            format!("{}+", self.min)
        } else if self.min == self.max {
            format!("{}", self.min)
        } else {
            format!("{}-{}", self.min, self.max)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U16,
    F64,
    Str,
    Bytes,
    Records,
    Uuid,
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    fn parse(s: &str) -> Ty {
        if let Some(e) = s.strip_prefix("[]") {
            return Ty::Array(Box::new(Ty::parse(e)));
        }
        match s {
            "bool" => Ty::Bool,
            "int8" => Ty::I8,
            "int16" => Ty::I16,
            "int32" => Ty::I32,
            "int64" => Ty::I64,
            "uint16" => Ty::U16,
            "float64" => Ty::F64,
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            "uuid" => Ty::Uuid,
            other => Ty::Struct(other.to_string()),
        }
    }
    /// The Rust type of a non-null value.
    pub fn rust(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "i8".into(),
            Ty::I16 => "i16".into(),
            Ty::I32 => "i32".into(),
            Ty::I64 => "i64".into(),
            Ty::U16 => "u16".into(),
            Ty::F64 => "f64".into(),
            Ty::Str => "String".into(),
            Ty::Bytes | Ty::Records => "Bytes".into(),
            Ty::Uuid => "Uuid".into(),
            Ty::Struct(n) => n.clone(),
            Ty::Array(e) => format!("Vec<{}>", e.rust()),
        }
    }
    /// The schema's spelling.
    pub fn schema(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "int8".into(),
            Ty::I16 => "int16".into(),
            Ty::I32 => "int32".into(),
            Ty::I64 => "int64".into(),
            Ty::U16 => "uint16".into(),
            Ty::F64 => "float64".into(),
            Ty::Str => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Records => "records".into(),
            Ty::Uuid => "uuid".into(),
            Ty::Struct(n) => n.clone(),
            Ty::Array(e) => format!("[]{}", e.schema()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub rust: String,
    pub ty: Ty,
    pub versions: Range,
    pub nullable: Range,
    pub tagged: Range,
    pub tag: Option<u32>,
    pub default: Option<String>,
    pub ignorable: bool,
    pub flexible: Option<Range>,
    pub entity: Option<String>,
    pub map_key: bool,
    /// The schema's `about` text (becomes the field's doc comment).
    pub about: Option<String>,
}

impl Field {
    /// Whether the Rust type is an `Option`.
    pub fn is_option(&self) -> bool {
        !self.nullable.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
    /// The versions of the field holding this struct (the message's own for the top level).
    pub versions: Range,
    pub common: bool,
}

#[derive(Clone, Debug)]
pub struct Msg {
    pub name: String,
    pub module: String,
    pub kind: String,
    pub api_key: Option<i16>,
    pub valid: Range,
    pub flexible: Range,
    pub deprecated: Range,
    pub unstable: bool,
    /// Behind kafkit-protocol's `broker-internal` feature (see `internal.rs`).
    pub internal: bool,
    /// The top-level struct first, then nested and common structs in schema order.
    pub structs: Vec<StructDef>,
}

impl Msg {
    /// The versions a client may negotiate: all valid versions but the latest when the schema
    /// marks it unstable (`latestVersionUnstable`, as the Java client's
    /// `ApiKeys.latestVersion(false)`).
    pub fn stable(&self) -> Range {
        if self.unstable {
            Range { min: self.valid.min, max: self.valid.max - 1 }
        } else {
            self.valid
        }
    }
    pub fn find(&self, name: &str) -> Option<&StructDef> {
        self.structs.iter().find(|s| s.name == name)
    }
}

/// The schemas of `dir`, and the names of those whose `validVersions` is `none` (the APIs
/// Kafka 4.0 removed with ZooKeeper: LeaderAndIsr, StopReplica, UpdateMetadata,
/// ControlledShutdown), which are left out: no version of them can be sent or read.
pub fn load(dir: &Path) -> Result<(Vec<Msg>, Vec<String>), String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err("no *.json schemas".into());
    }
    let mut out = Vec::new();
    let mut removed = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        let m = parse_msg(&v).map_err(|e| format!("{}: {e}", p.display()))?;
        if m.valid.is_empty() {
            removed.push(m.name);
        } else {
            out.push(m);
        }
    }
    // A request's `latestVersionUnstable` holds for its response too.
    let unstable: Vec<i16> =
        out.iter().filter(|m| m.unstable && m.kind == "request").filter_map(|m| m.api_key).collect();
    for m in &mut out {
        if m.api_key.is_some_and(|k| unstable.contains(&k)) {
            m.unstable = true;
        }
    }
    for m in &mut out {
        m.internal = crate::internal::is_internal(m);
    }
    if let Some(name) = crate::internal::unknown_names(&out).first() {
        return Err(format!("internal.rs names {name}, which no schema defines"));
    }
    Ok((out, removed))
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn parse_msg(v: &Value) -> Result<Msg, String> {
    let name = s(v, "name").ok_or("no name")?.to_string();
    let valid = Range::parse(s(v, "validVersions").ok_or("no validVersions")?)?;
    let mut structs = Vec::new();
    let fields = parse_fields(v.get("fields"), &mut structs, valid)?;
    structs.insert(0, StructDef { name: name.clone(), fields, versions: valid, common: false });
    if let Some(cs) = v.get("commonStructs").and_then(Value::as_array) {
        for c in cs {
            let cname = s(c, "name").ok_or("common struct without name")?.to_string();
            let cv = s(c, "versions").map(Range::parse).transpose()?.unwrap_or(valid);
            let fields = parse_fields(c.get("fields"), &mut structs, cv)?;
            structs.push(StructDef { name: cname, fields, versions: cv, common: true });
        }
    }
    let mut seen = HashMap::new();
    for st in &structs {
        if seen.insert(st.name.clone(), ()).is_some() {
            return Err(format!("struct {} defined twice", st.name));
        }
    }
    Ok(Msg {
        module: snake(&name),
        name,
        kind: s(v, "type").unwrap_or("data").to_string(),
        api_key: v.get("apiKey").and_then(Value::as_i64).map(|k| k as i16),
        valid,
        flexible: Range::parse(s(v, "flexibleVersions").unwrap_or("none"))?,
        deprecated: s(v, "deprecatedVersions").map(Range::parse).transpose()?.unwrap_or(Range::NONE),
        unstable: v.get("latestVersionUnstable").and_then(Value::as_bool).unwrap_or(false),
        internal: false,
        structs,
    })
}

fn parse_fields(v: Option<&Value>, structs: &mut Vec<StructDef>, parent: Range) -> Result<Vec<Field>, String> {
    let Some(arr) = v.and_then(Value::as_array) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for f in arr {
        let name = s(f, "name").ok_or("field without name")?.to_string();
        let ty = Ty::parse(s(f, "type").ok_or("field without type")?);
        let versions = Range::parse(s(f, "versions").ok_or_else(|| format!("{name}: no versions"))?)?;
        let tagged = s(f, "taggedVersions").map(Range::parse).transpose()?.unwrap_or(Range::NONE);
        let tag = match f.get("tag") {
            None => None,
            Some(Value::Number(n)) => n.as_u64().map(|t| t as u32),
            Some(Value::String(t)) => Some(t.parse::<u32>().map_err(|e| format!("{name}: tag {t:?}: {e}"))?),
            Some(other) => return Err(format!("{name}: tag {other}")),
        };
        if tag.is_some() == tagged.is_empty() {
            return Err(format!("{name}: tag and taggedVersions disagree"));
        }
        let default = match f.get("default") {
            None => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(other) => Some(other.to_string()),
        };
        if let Some(sub) = f.get("fields") {
            let sname = match &ty {
                Ty::Struct(n) => n.clone(),
                Ty::Array(e) => match &**e {
                    Ty::Struct(n) => n.clone(),
                    _ => return Err(format!("{name}: fields on a non-struct array")),
                },
                _ => return Err(format!("{name}: fields on a primitive")),
            };
            let sv = versions.intersect(parent);
            let fields = parse_fields(Some(sub), structs, sv)?;
            structs.push(StructDef { name: sname, fields, versions: sv, common: false });
        }
        out.push(Field {
            rust: rust_ident(&snake(&name)),
            name,
            ty,
            versions,
            nullable: s(f, "nullableVersions").map(Range::parse).transpose()?.unwrap_or(Range::NONE),
            tagged,
            tag,
            default,
            ignorable: f.get("ignorable").and_then(Value::as_bool).unwrap_or(false),
            flexible: s(f, "flexibleVersions").map(Range::parse).transpose()?,
            entity: s(f, "entityType").map(String::from),
            map_key: f.get("mapKey").and_then(Value::as_bool).unwrap_or(false),
            about: s(f, "about").map(String::from).filter(|a| !a.trim().is_empty()),
        });
    }
    Ok(out)
}

/// `ThrottleTimeMs` -> `throttle_time_ms`.
pub fn snake(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for i in 0..c.len() {
        let ch = c[i];
        if ch.is_uppercase() && i > 0 {
            let prev = c[i - 1];
            let next_lower = c.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.extend(ch.to_lowercase());
    }
    out
}

pub fn rust_ident(s: &str) -> String {
    const KW: &[&str] = &[
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl",
        "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static", "struct",
        "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract",
        "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
    ];
    if KW.contains(&s) {
        format!("r#{s}")
    } else {
        s.to_string()
    }
}
