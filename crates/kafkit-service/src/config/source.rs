//! Where a value came from: the built-in defaults, a file (and its line), an environment
//! variable, or code.

use figment::Metadata;
use std::fmt;
use std::path::{Path, PathBuf};

/// The layer a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// The built-in default.
    Default,
    /// A configuration file; `line` is where the key is written (1-based), when found.
    File {
        /// The file.
        path: PathBuf,
        /// The key's line.
        line: Option<usize>,
    },
    /// A TOML or YAML string given to [`ConfigBuilder`](super::ConfigBuilder) (embedded
    /// defaults, kafkax-style).
    Embedded {
        /// The name it was given.
        name: String,
        /// The key's line in it.
        line: Option<usize>,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// Code ([`ConfigBuilder::set`](super::ConfigBuilder::set)).
    Code,
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Default => f.write_str("default"),
            ValueSource::File { path, line: Some(l) } => write!(f, "{}:{l}", path.display()),
            ValueSource::File { path, line: None } => write!(f, "{}", path.display()),
            ValueSource::Embedded { name, line: Some(l) } => write!(f, "{name}:{l}"),
            ValueSource::Embedded { name, line: None } => f.write_str(name),
            ValueSource::Env { var } => write!(f, "env {var}"),
            ValueSource::Code => f.write_str("code"),
        }
    }
}

/// The names the builder gives its providers' metadata.
pub(crate) const DEFAULT_NAME: &str = "default";
pub(crate) const CODE_NAME: &str = "code";
pub(crate) const EMBEDDED_PREFIX: &str = "embedded ";

/// A text the builder read, to find lines in.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub name: String,
    pub yaml: bool,
    pub text: String,
}

/// The source of the value at `path` that the provider of `md` gave.
pub(crate) fn source_of(md: Option<&Metadata>, path: &[String], texts: &[Text]) -> ValueSource {
    let Some(md) = md else { return ValueSource::Default };
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    if md.name == super::env::NAME {
        return ValueSource::Env { var: md.interpolate(&figment::Profile::Default, &keys) };
    }
    if md.name == CODE_NAME {
        return ValueSource::Code;
    }
    if md.name == DEFAULT_NAME {
        return ValueSource::Default;
    }
    if let Some(name) = md.name.strip_prefix(EMBEDDED_PREFIX) {
        let line = texts.iter().find(|t| t.name == name).and_then(|t| locate(&t.text, t.yaml, &keys));
        return ValueSource::Embedded { name: name.to_string(), line };
    }
    if let Some(p) = md.source.as_ref().and_then(|s| s.file_path()) {
        let line = texts.iter().find(|t| Path::new(&t.name) == p).and_then(|t| locate(&t.text, t.yaml, &keys));
        return ValueSource::File { path: p.to_path_buf(), line };
    }
    ValueSource::Embedded { name: md.name.to_string(), line: None }
}

/// The 1-based line where `path` (or the deepest part of it that is there) is written.
pub(crate) fn locate(text: &str, yaml: bool, path: &[&str]) -> Option<usize> {
    if yaml {
        locate_yaml(text, path)
    } else {
        locate_toml(text, path)
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn locate_toml(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut found = None;
    for seg in path {
        let Some((key, item)) = table.get_key_value(seg) else { break };
        if let Some(span) = key.span().or_else(|| item.span()) {
            found = Some(line_at(text, span.start));
        }
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    found
}

/// Block-style YAML: each key on a line of its own, nested keys indented deeper.
fn locate_yaml(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut start, mut floor, mut found) = (0usize, -1isize, None);
    for seg in path {
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(start) {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let indent = (l.len() - t.len()) as isize;
            if indent <= floor {
                break;
            }
            let key = t.trim_start_matches("- ");
            let named = [format!("{seg}:"), format!("\"{seg}\":"), format!("'{seg}':")];
            if named.iter().any(|n| key.starts_with(n.as_str())) {
                hit = Some((i, indent));
                break;
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i + 1);
                start = i + 1;
                floor = indent;
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_toml_and_yaml() {
        let toml = "brokers = [\"a:1\"]\n\n[writer]\nlinger = \"5ms\"\n\n[consumer.retry]\nmax_attempts = 4\n";
        assert_eq!(locate(toml, false, &["writer", "linger"]), Some(4));
        assert_eq!(locate(toml, false, &["consumer", "retry", "max_attempts"]), Some(7));
        assert_eq!(locate(toml, false, &["brokers"]), Some(1));
        let yaml = "writer:\n  linger: 5ms\nconsumer:\n  retry:\n    # note\n    max_attempts: 4\n";
        assert_eq!(locate(yaml, true, &["writer", "linger"]), Some(2));
        assert_eq!(locate(yaml, true, &["consumer", "retry", "max_attempts"]), Some(6));
        assert_eq!(locate(yaml, true, &["consumer", "linger"]), Some(3), "the deepest part that is there");
    }
}
