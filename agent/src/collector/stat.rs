//! `node_boot_time_seconds`, context switches, forks, interrupts and process counts from /proc/stat.

use vigie_exposition::{Family, Kind};

use super::{Collector, Error, Result, read};
use crate::paths::Paths;

const SOFTIRQS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

pub struct Stat {
    paths: Paths,
    softirq: bool,
}

impl Stat {
    pub fn new(o: &super::Options) -> Stat {
        Stat {
            paths: o.paths.clone(),
            softirq: o.stat_softirq,
        }
    }
}

impl Collector for Stat {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("stat");
        let text = read(&path)?;
        for (i, line) in text.lines().enumerate() {
            let mut fields = line.split_ascii_whitespace();
            let Some(key) = fields.next() else { continue };
            let first = fields.next();
            let value = || -> Result<f64> {
                first
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|v| v as f64)
                    .ok_or_else(|| Error::parse(&path, i + 1, format!("invalid value for {key}")))
            };
            let (name, help, kind) = match key {
                "btime" => (
                    "node_boot_time_seconds",
                    "Node boot time, in unixtime.",
                    Kind::Gauge,
                ),
                "ctxt" => (
                    "node_context_switches_total",
                    "Total number of context switches.",
                    Kind::Counter,
                ),
                "processes" => ("node_forks_total", "Total number of forks.", Kind::Counter),
                "intr" => (
                    "node_intr_total",
                    "Total number of interrupts serviced.",
                    Kind::Counter,
                ),
                "procs_running" => (
                    "node_procs_running",
                    "Number of processes in runnable state.",
                    Kind::Gauge,
                ),
                "procs_blocked" => (
                    "node_procs_blocked",
                    "Number of processes blocked waiting for I/O to complete.",
                    Kind::Gauge,
                ),
                "softirq" if self.softirq => {
                    let mut fam = Family::new(
                        "node_softirqs_total",
                        "Number of softirq calls.",
                        Kind::Counter,
                    );
                    for (vector, v) in SOFTIRQS.iter().zip(fields) {
                        if let Ok(v) = v.parse::<u64>() {
                            fam.push(&[("vector", vector)], v as f64);
                        }
                    }
                    out.push(fam);
                    continue;
                }
                _ => continue,
            };
            out.push(Family::single(name, help, kind, value()?));
        }
        Ok(())
    }
}
