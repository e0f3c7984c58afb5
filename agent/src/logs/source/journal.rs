//! The systemd journal, read through `journalctl --output=json --follow` (the journal's own
//! reader, so every journal file format and compression journald writes is understood without
//! linking libsystemd). Each entry's cursor is kept like a file offset; a restart resumes
//! after the last acknowledged cursor. Fields become `__journal_<field>` labels for
//! `relabel_configs`, as in Promtail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use serde_json::Value;

use crate::logs::entry::{Checkpoint, Entry, Labels, Position, sanitize_label_name};

pub struct JournalSource {
    pub job: usize,
    pub key: Arc<str>,
    pub path: Option<String>,
    pub matches: Option<String>,
    pub max_age: Duration,
    pub json: bool,
    pub labels: Labels,
    pub cursor: Option<String>,
}

/// Syslog priority keywords, as Promtail names them.
const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
];

fn field_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        // journalctl prints binary fields as arrays of bytes.
        Value::Array(a) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// One `journalctl -o json` line as an entry (None: no MESSAGE).
pub fn entry_from_json(src: &JournalSource, line: &str) -> Option<Entry> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(line).ok()?;
    let cursor = v.get("__CURSOR").and_then(Value::as_str)?.to_string();
    let ts_us: i64 = v
        .get("__REALTIME_TIMESTAMP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())?;
    let message = if src.json {
        line.to_string()
    } else {
        v.get("MESSAGE").and_then(field_string)?
    };
    let mut labels = src.labels.clone();
    for (k, val) in &v {
        if k.starts_with("__") {
            continue;
        }
        if let Some(s) = field_string(val) {
            labels.set(
                &format!("__journal_{}", sanitize_label_name(&k.to_lowercase())),
                &s,
            );
        }
    }
    if let Some(p) = v
        .get("PRIORITY")
        .and_then(Value::as_str)
        .and_then(|p| p.parse::<usize>().ok())
        && let Some(k) = PRIORITIES.get(p)
    {
        labels.set("__journal_priority_keyword", k);
    }
    Some(Entry {
        labels,
        ts: ts_us.saturating_mul(1000),
        line: message,
        checkpoint: Checkpoint {
            key: src.key.clone(),
            position: Position::Cursor(cursor),
        },
        ..Entry::default()
    })
}

impl JournalSource {
    fn command(&self) -> Command {
        let mut c = Command::new("journalctl");
        c.args(["--output=json", "--follow", "--no-pager", "--all"]);
        if let Some(p) = &self.path {
            c.arg(format!("--directory={p}"));
        }
        match &self.cursor {
            Some(cur) => {
                c.arg(format!("--after-cursor={cur}"));
            }
            None => {
                c.arg(format!("--since=-{}s", self.max_age.as_secs().max(1)));
            }
        }
        if let Some(m) = &self.matches {
            c.args(m.split_whitespace());
        }
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        c
    }

    /// Reads the journal until `stop`, restarting journalctl if it exits; `wake` tells the
    /// reader an entry is waiting.
    pub fn run(
        mut self,
        tx: SyncSender<(usize, Entry)>,
        wake: impl Fn(),
        stop: Arc<AtomicBool>,
        stats: Arc<crate::logs::stats::Stats>,
    ) {
        while !stop.load(Ordering::Relaxed) {
            let mut child: Child = match self.command().spawn() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot run journalctl; journal target idle");
                    sleep_until_stop(&stop, Duration::from_secs(10));
                    continue;
                }
            };
            let pid = child.id();
            let stop2 = stop.clone();
            // journalctl --follow never ends by itself: end it when the agent stops.
            let killer = std::thread::spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                // SAFETY: kill(2) on the pid of our own child.
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            });
            if let Some(out) = child.stdout.take() {
                for line in BufReader::with_capacity(256 * 1024, out).lines() {
                    let Ok(line) = line else { break };
                    let Some(e) = entry_from_json(&self, &line) else {
                        continue;
                    };
                    if let Position::Cursor(c) = &e.checkpoint.position {
                        self.cursor = Some(c.clone());
                    }
                    stats.journal_lines.fetch_add(1, Ordering::Relaxed);
                    if tx.send((self.job, e)).is_err() {
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    wake();
                }
            }
            let status = child.wait();
            if !stop.load(Ordering::Relaxed) {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                tracing::warn!(status = ?status, stderr = %err.trim(), "journalctl exited; restarting");
                sleep_until_stop(&stop, Duration::from_secs(1));
            }
            let _ = killer.join();
        }
    }
}

fn sleep_until_stop(stop: &AtomicBool, d: Duration) {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_json_to_entry() {
        let src = JournalSource {
            job: 0,
            key: Arc::from("journal:j"),
            path: None,
            matches: None,
            max_age: Duration::from_secs(3600),
            json: false,
            labels: Labels::from_pairs(vec![("job".into(), "systemd-journal".into())]),
            cursor: None,
        };
        let line = r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1795514400000001","MESSAGE":"started","_SYSTEMD_UNIT":"ssh.service","PRIORITY":"6","_HOSTNAME":"n1"}"#;
        let e = entry_from_json(&src, line).expect("entry");
        assert_eq!(e.ts, 1_795_514_400_000_001_000);
        assert_eq!(e.line, "started");
        assert_eq!(e.labels.get("__journal__systemd_unit"), Some("ssh.service"));
        assert_eq!(e.labels.get("__journal_priority_keyword"), Some("info"));
        assert_eq!(e.checkpoint.position, Position::Cursor("s=1;i=2".into()));
        let bin = r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105]}"#;
        assert_eq!(entry_from_json(&src, bin).expect("e").line, "hi");
        assert!(entry_from_json(&src, r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1"}"#).is_none());
    }
}
