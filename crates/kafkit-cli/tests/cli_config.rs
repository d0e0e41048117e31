//! `kafkit config show`: the effective configuration of a kafkit service, each value with
//! its source, secrets redacted; bad values named with their file and line or variable. No
//! broker is needed.

use std::process::Command;

fn show(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafkit"));
    cmd.arg("config").arg("show").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to `name` in `dir`, a directory of the test's own that is removed when the
/// test drops it.
fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn line_of<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("no {key} in:\n{out}"))
}

#[test]
fn show_prints_each_value_with_its_source_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        &dir,
        "svc.yaml",
        "writer:\n  linger: 20ms\n  batch_size: 3\nsasl:\n  mechanism: PLAIN\n  username: bob\n",
    );
    let f_s = f.to_str().unwrap();
    let (code, out, err) =
        show(&["--file", f_s], &[("KAFKIT_WRITER__BATCH_SIZE", "7"), ("KAFKIT_SASL_PASSWORD", "bob-secret")]);
    assert_eq!(code, 0, "{err}");
    let linger = line_of(&out, "writer.linger");
    assert!(linger.starts_with("writer.linger = \"20ms\" ") && linger.ends_with(&format!("# {f_s}:2")), "{linger}");
    let batch = line_of(&out, "writer.batch_size");
    assert!(
        batch.starts_with("writer.batch_size = 7 ") && batch.ends_with("# env KAFKIT_WRITER__BATCH_SIZE"),
        "{batch}"
    );
    let pw = line_of(&out, "sasl.password");
    assert!(pw.contains("\"<redacted>\"") && pw.ends_with("# env KAFKIT_SASL_PASSWORD"), "{pw}");
    assert!(!out.contains("bob-secret"));
    assert!(line_of(&out, "writer.batch_bytes").ends_with("# default"));
    assert!(line_of(&out, "consumer.dead_letter.topic_pattern").contains("\"{topic}.DLT\""));

    let (_, only, _) = show(&["--file", f_s, "--set-only"], &[("KAFKIT_WRITER__BATCH_SIZE", "7")]);
    let keys: Vec<&str> = only.lines().map(|l| l.split(" = ").next().unwrap()).collect();
    assert_eq!(keys, ["sasl.mechanism", "sasl.username", "writer.batch_size", "writer.linger"], "{only}");
}

#[test]
fn show_refuses_bad_values_naming_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, "bad.toml", "[consumer]\nordering = \"key\"\n\n[consumer.retry]\nmax_attempts = \"often\"\n");
    let (code, out, err) = show(&["--file", f.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains(&format!("consumer.retry.max_attempts (from {}:5)", f.display())), "{err}");

    let (code, _, err) = show(&[], &[("KAFKIT_CONSUMER__ORDERING", "random")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("consumer.ordering (from env KAFKIT_CONSUMER__ORDERING)") && err.contains("partition, key"),
        "{err}"
    );

    let f = file(&dir, "secret.toml", "[sasl]\ntoken = \"eyJ...\"\n");
    let (code, _, err) = show(&["--file", f.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("sasl.token") && err.contains("KAFKIT_SASL_TOKEN") && !err.contains("eyJ"), "{err}");

    let (code, _, err) = show(&["--file", "/nonexistent/svc.toml"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/svc.toml") && err.contains("cannot be read"), "{err}");
}
