//! One measured run of one client ([`Bench::once`]), the broker's settling before the first
//! ([`Bench::settle`]), and how the broker's CPU is read from `/proc`.

use crate::compare::{
    client_command, delete_topic, parse_report, prepare, turn, Broker, External, Run, Workload, CLIENTS,
};
use crate::payload::Payload;
use std::path::Path;

/// The CPU (user + system, seconds) process `pid` has used so far: fields 14 and 15 of
/// `/proc/PID/stat`, in clock ticks.
pub fn process_cpu_s(pid: u32) -> Result<f64, String> {
    stat_cpu_s(&format!("/proc/{pid}/stat"))
}

/// The CPU (user + system, seconds) in the `stat` file at `path`, of a process or of one of
/// its threads (`/proc/PID/task/TID/stat`).
fn stat_cpu_s(path: &str) -> Result<f64, String> {
    let stat = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| format!("{path}: {stat:?}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, String> {
        fields.get(i).and_then(|f| f.parse::<f64>().ok()).ok_or_else(|| format!("{path}: field {}", i + 3))
    };
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return Err("sysconf(_SC_CLK_TCK) failed".into());
    }
    // Fields 14 (utime) and 15 (stime) are at 11 and 12 after field 2.
    Ok((ticks(11)? + ticks(12)?) / hz as f64)
}

/// The CPU (user + system, seconds) that process `pid`'s JIT compiler threads have used so
/// far: HotSpot names them `C1 CompilerThread<n>` and `C2 CompilerThread<n>` (`comm` keeps
/// 15 bytes of that). 0 for a process that has none, as Tansu. Threads that ended are not
/// counted, so this can fall between two reads when HotSpot retires a compiler thread.
pub fn compiler_cpu_s(pid: u32) -> Result<f64, String> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0.0;
    for task in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let Ok(task) = task else { continue };
        let path = task.path();
        // A thread can end between the listing and the reads: skip it.
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else { continue };
        if is_compiler_thread(comm.trim_end()) {
            if let Ok(s) = stat_cpu_s(&path.join("stat").to_string_lossy()) {
                total += s;
            }
        }
    }
    Ok(total)
}

/// Whether a thread's `comm` names one of HotSpot's JIT compiler threads.
fn is_compiler_thread(comm: &str) -> bool {
    (comm.starts_with("C1 ") || comm.starts_with("C2 ")) && comm.contains("Compiler")
}

/// What one measured run needs.
pub(crate) struct Bench<'a> {
    pub(crate) broker: &'a Broker,
    pub(crate) counter: Option<&'a crate::requests::Counter>,
    pub(crate) rt: &'a tokio::runtime::Runtime,
    pub(crate) kafkit: &'a Path,
    pub(crate) external: &'a External,
    pub(crate) text: &'a Path,
    pub(crate) key_size: usize,
}

/// Whether the broker's CPU for a settling run, `now`, is within 15% of the same client's
/// run before, `last` (NaN before the first); without the broker's CPU (NaN `now`) there is
/// nothing to wait for.
fn settled(last: f64, now: f64) -> bool {
    now.is_nan() || (now - last).abs() <= 0.15 * last
}

impl Bench<'_> {
    /// Runs every client not skipped in turn, rounds ordered as repetitions are ([`turn`]),
    /// on workload `w` for at least `at_least` and until the broker's CPU settles: a client's
    /// run within 15% of its run before. It gives up waiting for that at twice `at_least`.
    /// None is counted. Without the broker's CPU (no `--broker-pid`), for `at_least`.
    ///
    /// [`run`](crate::compare::run) settles the broker on the first workload of each
    /// operation: the broker's produce and fetch paths are compiled apart. On a Kafka 4.4
    /// node settled on produce only, kafkit's consume of 200k x 1 KiB cost the broker 42-51
    /// clock ticks in its first runs, 19-24 of them JIT compiling, and 11-16 once warm;
    /// rskafka's runs, whose requests met code kafkit's had compiled, 10-14 from the start.
    /// Every client takes part, so no client's requests meet code compiled for another's
    /// alone.
    pub(crate) fn settle(
        &self,
        w: &Workload,
        payload: &Payload,
        topic: &str,
        at_least: std::time::Duration,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<(), String> {
        let start = std::time::Instant::now();
        let mut last = [f64::NAN; CLIENTS.len()];
        for round in 0.. {
            for (ci, client) in turn(round, skip) {
                let (r, _, _) = self.once(client, w, payload, &format!("{topic}-{round}-{client}"))?;
                let elapsed = start.elapsed();
                eprintln!(
                    "{:<28} settling {:<13} broker {:>6.3} s CPU, {:>6.3} s of it JIT compiling, at {:>4.0} s (not counted)",
                    w.name(),
                    client,
                    r.broker_cpu_s,
                    r.broker_jit_s,
                    elapsed.as_secs_f64()
                );
                if (elapsed >= at_least && settled(last[ci], r.broker_cpu_s)) || elapsed >= 2 * at_least {
                    return Ok(());
                }
                last[ci] = r.broker_cpu_s;
            }
        }
        Ok(())
    }

    /// Runs `client` on workload `w` on a new topic `topic`, then deletes it. Returns its
    /// figures, the requests the broker handled for it per API, and its report.
    ///
    /// The broker's CPU is read once the broker is quiet before the run and again once it is
    /// quiet after it ([`quiet_cpu_s`]), so work the broker does after a run (its response
    /// sends, log flushes, collecting the run's garbage) is the run's, not the next one's. Its
    /// JIT compiler threads' share of that ([`compiler_cpu_s`]) is read beside it.
    pub(crate) fn once(
        &self,
        client: &str,
        w: &Workload,
        payload: &Payload,
        topic: &str,
    ) -> Result<(Run, crate::requests::Counts, String), String> {
        let fill_rate = self.rt.block_on(prepare(&self.broker.addr, topic, w, payload, w.op == "consume"))?;
        let broker_cpu = || -> Result<Option<(f64, f64)>, String> {
            self.broker.pid.map(|pid| Ok((quiet_cpu_s(pid)?, compiler_cpu_s(pid)?))).transpose()
        };
        let requests = || self.counter.map(|c| c.read()).transpose();
        // Write back what earlier runs and the fill left dirty in the page cache, so that
        // their writeback does not fall in this run. Over 12 runs of produce 1M x 100 B
        // without it, a Kafka node's CPU per run rose from 26 to 138 clock ticks, 1 GB dirty
        // at the end; the 12 runs after, with it, took 30-51.
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        let (requests_before, before) = (requests()?, broker_cpu()?);
        let out =
            client_command(client, self.kafkit, self.external, &self.broker.addr, topic, w, self.text, self.key_size)
                .output()
                .map_err(|e| format!("{client}: {e}"))?;
        let (after, requests_after) = (broker_cpu()?, requests()?);
        self.rt.block_on(delete_topic(&self.broker.addr, topic));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!("{client} on {}: {}{}", w.name(), stdout, String::from_utf8_lossy(&out.stderr)));
        }
        let mut r = parse_report(&stdout)?;
        r.fill_records_per_sec = fill_rate;
        // The broker's CPU over the whole process run (its start and end included, as they
        // are the client's doing too).
        (r.broker_cpu_s, r.broker_jit_s) = match (before, after) {
            (Some(b), Some(a)) => (a.0 - b.0, a.1 - b.1),
            _ => (f64::NAN, f64::NAN),
        };
        let per_api = match (&requests_before, &requests_after) {
            (Some(b), Some(a)) => {
                let (per, total) = crate::requests::between(b, a);
                r.requests = total as f64;
                per
            }
            _ => Default::default(),
        };
        Ok((r, per_api, stdout))
    }
}

/// Process `pid`'s CPU ([`process_cpu_s`]) once it is quiet: once it used at most one clock
/// tick (10 ms) in 300 ms, as an idle Kafka node does (about 1.4% of a core: heartbeats to
/// its controller), or after 10 s.
fn quiet_cpu_s(pid: u32) -> Result<f64, String> {
    const WINDOW: std::time::Duration = std::time::Duration::from_millis(300);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = process_cpu_s(pid)?;
    loop {
        std::thread::sleep(WINDOW);
        let now = process_cpu_s(pid)?;
        if now - last <= 0.0101 || std::time::Instant::now() >= give_up {
            return Ok(now);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_is_settled_once_two_runs_are_within_15_percent() {
        assert!(!settled(f64::NAN, 2.37), "the first run never settles it");
        assert!(!settled(2.37, 1.25));
        assert!(settled(1.00, 0.96));
        assert!(settled(1.00, 1.15) && !settled(1.00, 1.16) && !settled(1.00, 0.84));
        assert!(settled(f64::NAN, f64::NAN), "no broker CPU: nothing to wait for");
    }

    #[test]
    fn hotspots_compiler_threads_are_told_from_the_rest() {
        // `comm` as a Kafka 4.4 node on Java 17 shows them: 15 bytes of the thread's name.
        for comm in ["C2 CompilerThre", "C1 CompilerThre", "C2 CompilerThread0"] {
            assert!(is_compiler_thread(comm), "{comm}");
        }
        for comm in ["GC Thread#0", "G1 Conc#0", "data-plane-kafk", "Compiler", "C3 CompilerThre", "java"] {
            assert!(!is_compiler_thread(comm), "{comm}");
        }
    }

    #[test]
    fn compiler_cpu_of_a_process_without_hotspot_is_zero() {
        // This test binary has no JIT compiler threads, but it does have a /proc entry.
        assert_eq!(compiler_cpu_s(std::process::id()).unwrap(), 0.0);
        assert!(compiler_cpu_s(u32::MAX).is_err(), "no such process");
    }

    #[test]
    fn a_process_cpu_is_read_from_proc_and_grows_with_work() {
        let me = std::process::id();
        let before = process_cpu_s(me).unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = process_cpu_s(me).unwrap();
        assert!(after - before >= 0.05, "300 ms of spinning counted {:.3} s", after - before);
        assert!(process_cpu_s(u32::MAX).is_err());
    }
}
