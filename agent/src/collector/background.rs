//! Collectors that ask a slow tool (`smartctl`, `ceph`, `systemctl`) run it on their own thread
//! and interval; the scrape serves the last result and its age, so a drive that takes seconds to
//! answer, or a Ceph monitor that does not answer at all, never adds to scrape latency.
//!
//! The tool runs in its own process group with a deadline: at the deadline the whole group is
//! killed (a wrapper script's children too), so a hung tool cannot pile up processes.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigie_exposition::{Family, Kind};

use super::{Collector, Error, Result};

/// What a tool printed and how it exited.
#[derive(Debug)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// The first line of stderr, for error messages.
    pub fn stderr_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string()
    }
}

/// How much of a tool's stderr is kept for error messages.
const STDERR_KEPT: usize = 64 * 1024;

/// Runs `program args` with `timeout`; stdin is closed. A missing program is one clear error
/// naming the flag that sets it.
pub fn run(program: &Path, args: &[String], timeout: Duration, flag: &str) -> Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::Other(format!(
            "{} not found (install it or set --{flag})",
            program.display()
        )),
        _ => Error::Other(format!("cannot run {}: {e}", program.display())),
    })?;
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (tx, rx) = mpsc::channel();
    // Pipes are drained on their own threads (a chatty tool would otherwise block on a full
    // pipe); they end when every process of the group has closed them.
    let err_reader = std::thread::spawn(move || {
        // Read to the end (a tool blocked on a full stderr pipe would hang), keep the start.
        let mut kept = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Some(Ok(n @ 1..)) = stderr.as_mut().map(|e| e.read(&mut chunk)) {
            if kept.len() < STDERR_KEPT {
                kept.extend_from_slice(&chunk[..n]);
            }
        }
        kept
    });
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let read = match stdout.as_mut() {
            Some(o) => o.read_to_end(&mut buf).map(|_| ()),
            None => Ok(()),
        };
        let status = child.wait();
        let _ = tx.send((read, status, buf));
    });
    match rx.recv_timeout(timeout) {
        Ok((read, status, stdout)) => {
            let stderr = err_reader.join().unwrap_or_default();
            read.map_err(|e| Error::Other(format!("{}: reading output: {e}", program.display())))?;
            let status =
                status.map_err(|e| Error::Other(format!("{}: wait: {e}", program.display())))?;
            Ok(Output {
                code: status.code(),
                stdout,
                stderr,
            })
        }
        Err(_) => {
            // SAFETY: kill(2) takes no pointers; a negative pid signals the process group the
            // tool leads (process_group(0) above). ESRCH, already gone, is fine.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            Err(Error::Other(format!(
                "{} did not finish within {timeout:?}; killed (raise the timeout flag if the device is just slow)",
                program.display()
            )))
        }
    }
}

/// Runs a tool that must exit 0 (`ceph status`, `systemctl show`) and returns its stdout; any
/// other exit is an error with the tool's first stderr line. `what` names the command in errors.
pub fn run_ok(
    program: &Path,
    args: &[String],
    timeout: Duration,
    flag: &str,
    what: &str,
) -> Result<Vec<u8>> {
    let out = run(program, args, timeout, flag)?;
    if out.code != Some(0) {
        return Err(Error::Other(format!(
            "{what}: exit status {:?}: {}",
            out.code,
            out.stderr_line()
        )));
    }
    Ok(out.stdout)
}

/// One finished background run.
struct Snapshot {
    families: Vec<Family>,
    error: Option<String>,
    finished: Instant,
    took: Duration,
}

/// A collector's work, run on its own thread every `interval`.
pub struct Background {
    name: &'static str,
    last: Arc<Mutex<Option<Snapshot>>>,
    /// Dropping the sender stops the thread after its current run.
    _stop: mpsc::Sender<()>,
}

impl Background {
    /// Starts `work` now and then every `interval` (measured from the end of a run, so a slow
    /// tool is never run twice at once).
    pub fn spawn(
        name: &'static str,
        interval: Duration,
        work: impl Fn() -> (Vec<Family>, Option<Error>) + Send + 'static,
    ) -> Background {
        let last: Arc<Mutex<Option<Snapshot>>> = Arc::default();
        let (stop, stopped) = mpsc::channel::<()>();
        let slot = last.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("collector-{name}"))
            .spawn(move || {
                loop {
                    let start = Instant::now();
                    let (families, error) =
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&work)) {
                            Ok(r) => r,
                            Err(_) => (Vec::new(), Some(Error::Other("collector panicked".into()))),
                        };
                    let snapshot = Snapshot {
                        families,
                        error: error.map(|e| e.to_string()),
                        finished: Instant::now(),
                        took: start.elapsed(),
                    };
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
                    match stopped.recv_timeout(interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        _ => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(collector = name, "cannot start background thread: {e}");
        }
        Background {
            name,
            last,
            _stop: stop,
        }
    }

    /// Serves the last result: its families, `node_scrape_collector_cache_age_seconds` and
    /// `node_scrape_collector_cache_run_seconds`; the run's error makes the scrape's `success 0`.
    pub fn serve(&self, out: &mut Vec<Family>) -> Result<()> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = last.as_ref() else {
            return Err(Error::NoData("first run has not finished yet".into()));
        };
        out.extend(s.families.iter().cloned());
        out.push(Family::new(
            "node_scrape_collector_cache_age_seconds",
            "vigie: Seconds since a background collector's last run finished; its metrics are that old.",
            Kind::Gauge,
        )
        .with(&[("collector", self.name)], s.finished.elapsed().as_secs_f64()));
        out.push(
            Family::new(
                "node_scrape_collector_cache_run_seconds",
                "vigie: How long a background collector's last run took.",
                Kind::Gauge,
            )
            .with(&[("collector", self.name)], s.took.as_secs_f64()),
        );
        match &s.error {
            None => Ok(()),
            Some(e) => Err(Error::Other(e.clone())),
        }
    }
}

/// A background collector is its last result: the scrape serves it.
impl Collector for Background {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        self.serve(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_one_clear_error() {
        let e = run(
            Path::new("/nonexistent/smartctl"),
            &[],
            Duration::from_secs(1),
            "collector.smartctl.path",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("not found") && e.contains("--collector.smartctl.path"),
            "{e}"
        );
    }

    #[test]
    fn a_hung_tool_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let started = Instant::now();
        let e = run(
            Path::new("/bin/sh"),
            &["-c".into(), script],
            Duration::from_millis(300),
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The grandchild was in the group: it is gone (or a zombie reaped by init) soon after.
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = state
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .is_some_and(|s| s != "Z");
            if !alive {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the tool's child survived the kill"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_tool_chatty_on_stderr_does_not_block() {
        // 1 MiB on stderr, far beyond a pipe's buffer, then a line on stdout.
        let out = run(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "head -c 1048576 /dev/zero >&2; echo done".into(),
            ],
            Duration::from_secs(10),
            "x",
        )
        .unwrap();
        assert_eq!(out.stdout, b"done\n");
        assert!((STDERR_KEPT..STDERR_KEPT + 4096).contains(&out.stderr.len()));
    }

    #[test]
    fn output_and_exit_code_are_returned() {
        let out = run(
            Path::new("/bin/sh"),
            &["-c".into(), "echo hi; echo oops >&2; exit 3".into()],
            Duration::from_secs(5),
            "x",
        )
        .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.stderr_line(), "oops");
    }
}
