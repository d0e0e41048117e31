//! kafkit-codegen: writes `kafkit-protocol`'s generated Rust from Apache Kafka 4.4.0's
//! message schemas and error codes.
//!
//! ```text
//! scripts/protocol-spec.sh                    # once: the schemas, from the pinned kafka-clients jar
//! cargo run -p kafkit-codegen                 # regenerate
//! cargo run -p kafkit-codegen -- --check      # fail if the committed code differs
//! cargo run -p kafkit-codegen -- --spec DIR   # another spec directory
//! ```
//!
//! The spec directory (`messages/*.json`, `error_codes.tsv`) is `--spec DIR`, else
//! `$KAFKIT_PROTOCOL_SPEC`, else `$KAFKIT_CACHE/kafka-protocol-4.4.0` (`KAFKIT_CACHE`
//! defaulting to `~/.cache/kafkit`), which `scripts/protocol-spec.sh` (run by
//! `scripts/setup.sh`) builds from the kafka-clients jar; nothing of it is committed.
//!
//! Output: `crates/kafkit-protocol/src/messages/*.rs` (one file per schema, plus `mod.rs`
//! with `ApiKey` and the request/response enums), `src/error_code.rs` and
//! `tests/roundtrip.rs` (a property test per message). Every file is formatted with rustfmt.

mod emit;
mod files;
mod internal;
mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let mut check = false;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut spec = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--spec" => match args.next() {
                Some(d) => spec = Some(PathBuf::from(d)),
                None => return fail("--spec needs a directory"),
            },
            "-h" | "--help" => {
                println!("usage: kafkit-codegen [--check] [--spec DIR]");
                return ExitCode::SUCCESS;
            }
            other => return fail(&format!("unknown argument {other}")),
        }
    }
    let spec = match spec {
        Some(s) => s,
        None => match default_spec() {
            Ok(s) => s,
            Err(e) => return fail(&e),
        },
    };
    let (msgs, removed) = match model::load(&spec.join("messages")) {
        Ok(m) => m,
        Err(e) => return fail(&format!("reading schemas in {}: {e}", spec.join("messages").display())),
    };
    let errors = match std::fs::read_to_string(spec.join("error_codes.tsv")) {
        Ok(s) => s,
        Err(e) => return fail(&format!("reading {}: {e}", spec.join("error_codes.tsv").display())),
    };
    let proto = root.join("crates/kafkit-protocol");
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    for m in &msgs {
        files.insert(proto.join(format!("src/messages/{}.rs", m.module)), emit::message_file(m, &msgs));
    }
    files.insert(proto.join("src/messages/mod.rs"), files::mod_file(&msgs, &removed));
    let error_codes = match files::error_code_file(&errors) {
        Ok(s) => s,
        Err(e) => return fail(&format!("{}: {e}", spec.join("error_codes.tsv").display())),
    };
    files.insert(proto.join("src/error_code.rs"), error_codes);
    files.insert(proto.join("tests/roundtrip.rs"), files::roundtrip_file(&msgs));

    let mut differ = Vec::new();
    for (path, src) in &files {
        let formatted = match rustfmt(src, &root.join("rustfmt.toml")) {
            Ok(s) => s,
            Err(e) => return fail(&format!("rustfmt on {} (is rustfmt installed?): {e}", path.display())),
        };
        let current = std::fs::read_to_string(path).ok();
        if current.as_deref() == Some(formatted.as_str()) {
            continue;
        }
        if check {
            differ.push(path.clone());
        } else if let Err(e) = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .and_then(|_| std::fs::write(path, formatted))
        {
            return fail(&format!("writing {}: {e}", path.display()));
        }
    }
    // Generated message files that no schema produces any more.
    if let Ok(rd) = std::fs::read_dir(proto.join("src/messages")) {
        for e in rd.flatten() {
            let p = e.path();
            if !files.contains_key(&p) {
                if check {
                    differ.push(p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
    if check && !differ.is_empty() {
        eprintln!("generated code is out of date; run `cargo run -p kafkit-codegen`:");
        for p in differ {
            eprintln!("  {}", p.display());
        }
        return ExitCode::FAILURE;
    }
    println!("{} files {}", files.len(), if check { "up to date" } else { "generated" });
    ExitCode::SUCCESS
}

/// `$KAFKIT_PROTOCOL_SPEC`, else `$KAFKIT_CACHE/kafka-protocol-4.4.0` (`~/.cache/kafkit` when
/// `KAFKIT_CACHE` is unset), which must exist.
fn default_spec() -> Result<PathBuf, String> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let dir = if let Some(d) = nonempty("KAFKIT_PROTOCOL_SPEC") {
        PathBuf::from(d)
    } else {
        let cache = match (nonempty("KAFKIT_CACHE"), nonempty("HOME")) {
            (Some(c), _) => PathBuf::from(c),
            (None, Some(h)) => PathBuf::from(h).join(".cache/kafkit"),
            (None, None) => return Err("neither KAFKIT_PROTOCOL_SPEC, KAFKIT_CACHE nor HOME is set".into()),
        };
        cache.join("kafka-protocol-4.4.0")
    };
    if dir.join("messages").is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "no protocol schemas in {}: run scripts/setup.sh (or scripts/protocol-spec.sh), which builds them \
             from Apache Kafka 4.4.0's kafka-clients jar, or pass --spec DIR",
            dir.display()
        ))
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("kafkit-codegen: {msg}");
    ExitCode::FAILURE
}

fn rustfmt(src: &str, config: &Path) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--quiet", "--config-path"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let owned = src.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(owned.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer.join().map_err(|_| "writer thread")?.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}
