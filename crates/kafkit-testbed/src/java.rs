//! The Apache Kafka Java client (kafka-clients, the version of the test broker) as a test
//! peer: `scripts/java-peer/Peer.java`, built by `scripts/java-peer.sh` into
//! `$KAFKIT_CACHE/java-peer-HASH/` when missing (javac, a few seconds, once per change of its
//! sources). Its header lists the commands: produce (every codec, acks, idempotent or
//! transactional, the Java partitioner), consume (assign or subscribe, either isolation
//! level), and producers kept open across commands (transactions begun, written to, left open,
//! committed or aborted at the test's pace).
//!
//! A JVM answers its first command 0.15-0.3 s after it starts (with the class-data archive
//! the build makes), and a Java producer takes about 0.5 s from creation to its first
//! acknowledgement: a test should run one [`JavaSession`] and send it all its commands rather
//! than start a JVM per command.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The command that runs the Java peer (`java`, its flags, the classpath, the main class),
/// building it first when missing (`scripts/java-peer.sh command`). Add a command and its
/// `--option value` pairs to run it once.
pub fn java_peer() -> Vec<String> {
    static CMD: OnceLock<Vec<String>> = OnceLock::new();
    CMD.get_or_init(|| {
        let script = crate::repo_root().join("scripts/java-peer.sh");
        let version = std::env::var("KAFKIT_KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".to_string());
        let out = Command::new(&script)
            .args(["command", &version])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(out.status.success(), "scripts/java-peer.sh command failed ({})", out.status);
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    })
    .clone()
}

/// One Java peer JVM running `Peer session`: it takes commands (JSON objects) one at a time
/// and answers each with the lines it printed, ending with its `{"done": ...}` line. Dropping
/// the session closes its stdin (the peer closes its producers and exits) and, should it not
/// exit within 15 s, kills it.
pub struct JavaSession {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// How long one command may take (default 120 s).
    pub timeout: Duration,
}

impl JavaSession {
    /// Starts a session whose commands default to `bootstrap` (their `"bootstrap"` field).
    pub fn start(bootstrap: &str) -> JavaSession {
        let cmd = java_peer();
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .args(["session", "--bootstrap", bootstrap])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the Java peer ({}): {e}", cmd[0]));
        let stdout = child.stdout.take().expect("the peer's stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("the peer's stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take();
        JavaSession { child, stdin, lines, stderr, timeout: Duration::from_secs(120) }
    }

    /// Sends `command`, one JSON object (on one line), and waits for its end: the lines it
    /// printed, its `{"done": ...}` line last. `Err` holds its `{"error": ...}` line (or why
    /// the peer gave no answer) and what the JVM wrote to stderr.
    pub fn call(&mut self, command: &str) -> Result<Vec<String>, String> {
        assert!(!command.contains('\n'), "a command is one line");
        let sent = match self.stdin.as_mut() {
            Some(s) => {
                s.write_all(format!("{command}\n").as_bytes()).and_then(|_| s.flush()).map_err(|e| e.to_string())
            }
            None => Err("its stdin is closed".to_string()),
        };
        if let Err(e) = sent {
            return Err(format!("sending {command} to the Java peer: {e}\n{}", self.stderr()));
        }
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let is_end = line.starts_with("{\"done\"");
                    if line.starts_with("{\"error\"") {
                        return Err(format!("{line}\n{}", self.stderr()));
                    }
                    out.push(line);
                    if is_end {
                        return Ok(out);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("no answer to {command} within {:?}\n{}", self.timeout, self.stderr()))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("the Java peer exited during {command}\n{}", self.stderr()))
                }
            }
        }
    }

    /// What the JVM wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for JavaSession {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
