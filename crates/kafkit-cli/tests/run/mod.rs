//! Running the `kafkit` binary in the CLI tests: its output, a success's stdout, a failure's
//! one line.

#![allow(dead_code)] // each test file uses some of these

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `kafkit --brokers BROKER ARGS`, not started yet: add environment to it, then [`run`] it.
pub fn command(broker: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafkit"));
    cmd.args(["--brokers", broker]).args(args);
    cmd
}

/// Runs `cmd` with `stdin` as its input and waits for its output. kafkit may exit before it
/// has read all of its input (an error it meets first): the pipe it closed is then not this
/// function's failure, and the output it returns says what happened.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run kafkit");
    match child.stdin.take().expect("stdin").write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.expect("write stdin"),
    }
    child.wait_with_output().expect("kafkit output")
}

/// Runs `kafkit --brokers BROKER ARGS`, feeding it `stdin`.
pub fn kafkit(broker: &str, args: &[&str], stdin: &[u8]) -> Output {
    run(&mut command(broker, args), stdin)
}

/// A success's stdout.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "kafkit failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// A failure: exit code 1 and one line on stderr.
pub fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout {:?}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("kafkit: error: "), "{err}");
    err
}
