//! Collectors, one file each with node_exporter's names, and the scrape that runs them.
//!
//! Each collector runs on the blocking pool with a deadline. A collector that errs, has no data or
//! misses its deadline reports `node_scrape_collector_success 0` and the rest of the scrape is
//! served; one still running from an earlier scrape is not started twice, so a hung mount cannot
//! pile up threads.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use vigie_exposition::{Family, Kind};

use crate::paths::Paths;

pub mod cpu;
pub mod cpufreq;
pub mod diskstats;
pub mod entropy;
pub mod filefd;
pub mod filesystem;
pub mod hwmon;
pub mod loadavg;
pub mod meminfo;
pub mod netclass;
pub mod netdev;
pub mod netstat;
pub mod pressure;
pub mod sockstat;
pub mod stat;
pub mod textfile;
pub mod thermal_zone;
pub mod time;
pub mod uname;
pub mod vmstat;

/// Why a collector produced nothing (or not everything).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host has nothing to report (no hwmon chips, no PSI): `success 0`, logged at debug.
    #[error("no data: {0}")]
    NoData(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: &Path, source: io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }

    pub fn parse(path: &Path, line: usize, message: impl Into<String>) -> Error {
        Error::Parse { path: path.to_path_buf(), line, message: message.into() }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A source of metric families. `update` is called once per scrape on a blocking thread.
pub trait Collector: Send + Sync + 'static {
    fn update(&self, out: &mut Vec<Family>) -> Result<()>;
}

/// Reads a whole file, with the path in the error.
pub fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Reads a small sysfs attribute, trimmed; `None` when it is absent or unreadable (sysfs answers
/// EINVAL for attributes that do not apply, such as `speed` of a virtual NIC).
pub fn read_attr(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim_end_matches('\n').trim().to_string())
}

/// Parses an integer the way Go's `strconv.ParseInt(s, 0, 64)` does (`0x` hex prefixes included).
pub fn parse_int_prefixed(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Sorted names of the entries of a directory; a missing directory is empty.
pub fn dir_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// node_exporter's include/exclude pair: patterns are *unanchored* (`regexp.MatchString`).
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub include: Option<Regex>,
    pub exclude: Option<Regex>,
}

impl DeviceFilter {
    pub fn ignored(&self, name: &str) -> bool {
        if let Some(ex) = &self.exclude {
            if ex.is_match(name) {
                return true;
            }
        }
        if let Some(inc) = &self.include {
            return !inc.is_match(name);
        }
        false
    }
}

/// Everything the collectors can be configured with; built from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub paths: Paths,
    pub cpu: cpu::Options,
    pub diskstats: DeviceFilter,
    pub filesystem: filesystem::Options,
    pub netclass: netclass::Options,
    pub netdev: DeviceFilter,
    pub netstat_fields: Regex,
    pub stat_softirq: bool,
    pub textfile_directory: Option<String>,
    pub vmstat_fields: Regex,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            paths: Paths::default(),
            cpu: cpu::Options::default(),
            diskstats: DeviceFilter {
                include: None,
                exclude: Some(Regex::new(diskstats::DEFAULT_EXCLUDE).expect("static regex")),
            },
            filesystem: filesystem::Options::default(),
            netclass: netclass::Options::default(),
            netdev: DeviceFilter::default(),
            netstat_fields: Regex::new(netstat::DEFAULT_FIELDS).expect("static regex"),
            stat_softirq: false,
            textfile_directory: None,
            vmstat_fields: Regex::new(vmstat::DEFAULT_FIELDS).expect("static regex"),
        }
    }
}

type Build = fn(&Options) -> Box<dyn Collector>;

/// One row of the collector table: the flag `--[no-]collector.NAME` comes from `name`.
pub struct Spec {
    pub name: &'static str,
    pub default_enabled: bool,
    pub help: &'static str,
    pub build: Build,
}

/// Every collector, in the order of node_exporter's `--help`.
pub const ALL: &[Spec] = &[
    Spec { name: "cpu", default_enabled: true, help: "CPU time per mode from /proc/stat", build: |o| Box::new(cpu::Cpu::new(o)) },
    Spec { name: "cpufreq", default_enabled: true, help: "CPU frequency from /sys/devices/system/cpu", build: |o| Box::new(cpufreq::Cpufreq::new(o)) },
    Spec { name: "diskstats", default_enabled: true, help: "disk I/O from /proc/diskstats", build: |o| Box::new(diskstats::Diskstats::new(o)) },
    Spec { name: "entropy", default_enabled: true, help: "available entropy", build: |o| Box::new(entropy::Entropy::new(o)) },
    Spec { name: "filefd", default_enabled: true, help: "file descriptor statistics from /proc/sys/fs/file-nr", build: |o| Box::new(filefd::Filefd::new(o)) },
    Spec { name: "filesystem", default_enabled: true, help: "filesystem statistics (statfs per mount, with a timeout)", build: |o| Box::new(filesystem::Filesystem::new(o)) },
    Spec { name: "hwmon", default_enabled: true, help: "hardware monitoring from /sys/class/hwmon", build: |o| Box::new(hwmon::Hwmon::new(o)) },
    Spec { name: "loadavg", default_enabled: true, help: "load average", build: |o| Box::new(loadavg::Loadavg::new(o)) },
    Spec { name: "meminfo", default_enabled: true, help: "memory statistics from /proc/meminfo", build: |o| Box::new(meminfo::Meminfo::new(o)) },
    Spec { name: "netclass", default_enabled: true, help: "network interface info from /sys/class/net", build: |o| Box::new(netclass::Netclass::new(o)) },
    Spec { name: "netdev", default_enabled: true, help: "network interface statistics from /proc/net/dev", build: |o| Box::new(netdev::Netdev::new(o)) },
    Spec { name: "netstat", default_enabled: true, help: "network statistics from /proc/net/{netstat,snmp,snmp6}", build: |o| Box::new(netstat::Netstat::new(o)) },
    Spec { name: "pressure", default_enabled: true, help: "pressure stall information from /proc/pressure", build: |o| Box::new(pressure::Pressure::new(o)) },
    Spec { name: "sockstat", default_enabled: true, help: "socket statistics from /proc/net/sockstat{,6}", build: |o| Box::new(sockstat::Sockstat::new(o)) },
    Spec { name: "stat", default_enabled: true, help: "kernel statistics from /proc/stat", build: |o| Box::new(stat::Stat::new(o)) },
    Spec { name: "textfile", default_enabled: true, help: "metrics from *.prom files in the textfile directory", build: |o| Box::new(textfile::Textfile::new(o)) },
    Spec { name: "thermal_zone", default_enabled: true, help: "thermal zones from /sys/class/thermal", build: |o| Box::new(thermal_zone::ThermalZone::new(o)) },
    Spec { name: "time", default_enabled: true, help: "the current system time and clocksources", build: |o| Box::new(time::Time::new(o)) },
    Spec { name: "uname", default_enabled: true, help: "system information from the uname system call", build: |o| Box::new(uname::Uname::new(o)) },
    Spec { name: "vmstat", default_enabled: true, help: "statistics from /proc/vmstat", build: |o| Box::new(vmstat::Vmstat::new(o)) },
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    ALL.iter().find(|s| s.name == name)
}

struct Entry {
    name: &'static str,
    collector: Arc<dyn Collector>,
    /// Set while an update runs, so a hung collector is not started again on the next scrape.
    busy: Arc<AtomicBool>,
    /// The last error logged, so a failing collector logs once per distinct error.
    last_error: Mutex<Option<String>>,
}

/// The enabled collectors and the per-collector deadline.
pub struct Collectors {
    entries: Vec<Entry>,
    timeout: Duration,
}

struct Outcome {
    families: Vec<Family>,
    result: Result<()>,
    elapsed: Duration,
}

impl Collectors {
    pub fn new(names: &[&'static str], options: &Options, timeout: Duration) -> Collectors {
        let entries = names
            .iter()
            .filter_map(|n| spec(n))
            .map(|s| Entry {
                name: s.name,
                collector: Arc::from((s.build)(options)),
                busy: Arc::new(AtomicBool::new(false)),
                last_error: Mutex::new(None),
            })
            .collect();
        Collectors { entries, timeout }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.name).collect()
    }

    /// Runs the collectors `wanted` accepts (all by default) and returns their families plus
    /// `node_scrape_collector_{duration_seconds,success}`, unnormalised.
    pub async fn scrape(&self, wanted: impl Fn(&str) -> bool) -> Vec<Family> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut running = Vec::with_capacity(self.entries.len());
        for entry in self.entries.iter().filter(|e| wanted(e.name)) {
            if entry.busy.swap(true, Ordering::AcqRel) {
                running.push((entry, None));
                continue;
            }
            let collector = entry.collector.clone();
            let busy = entry.busy.clone();
            let handle = tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                let mut families = Vec::new();
                let result = collector.update(&mut families);
                busy.store(false, Ordering::Release);
                Outcome { families, result, elapsed: start.elapsed() }
            });
            running.push((entry, Some(handle)));
        }

        let mut out = Vec::new();
        let mut duration = Family::new(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            Kind::Gauge,
        );
        let mut success = Family::new(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            Kind::Gauge,
        );
        for (entry, handle) in running {
            let (ok, elapsed) = match handle {
                None => {
                    entry.report(&Error::Other(format!(
                        "still running from an earlier scrape (longer than {:?}); skipped",
                        self.timeout
                    )));
                    (false, Duration::ZERO)
                }
                Some(handle) => match tokio::time::timeout_at(deadline, handle).await {
                    Ok(Ok(outcome)) => {
                        out.extend(outcome.families);
                        match outcome.result {
                            Ok(()) => {
                                entry.recovered();
                                (true, outcome.elapsed)
                            }
                            Err(e) => {
                                entry.report(&e);
                                (false, outcome.elapsed)
                            }
                        }
                    }
                    Ok(Err(join)) => {
                        entry.report(&Error::Other(format!("collector panicked: {join}")));
                        (false, Duration::ZERO)
                    }
                    Err(_) => {
                        entry.report(&Error::Other(format!("timed out after {:?}", self.timeout)));
                        (false, self.timeout)
                    }
                },
            };
            duration.push(&[("collector", entry.name)], elapsed.as_secs_f64());
            success.push(&[("collector", entry.name)], if ok { 1.0 } else { 0.0 });
        }
        out.push(duration);
        out.push(success);
        out
    }
}

impl Entry {
    fn report(&self, err: &Error) {
        let text = err.to_string();
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(text.as_str()) {
            return;
        }
        if matches!(err, Error::NoData(_)) {
            tracing::debug!(collector = self.name, "collector has no data: {text}");
        } else {
            tracing::warn!(collector = self.name, "collector failed: {text}");
        }
        *last = Some(text);
    }

    fn recovered(&self) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(prev) = last.take() {
            tracing::info!(collector = self.name, "collector recovered (was: {prev})");
        }
    }
}

/// Helper for the common "one value per key" collectors.
pub fn gauge(name: impl Into<String>, help: impl Into<String>, value: f64) -> Family {
    Family::single(name, help, Kind::Gauge, value)
}

/// Index of families by name, for collectors that add series to many families as they go.
#[derive(Default)]
pub struct FamilySet {
    order: Vec<Family>,
    index: HashMap<String, usize>,
}

impl FamilySet {
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Family {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.order.push(Family::new(name, help, kind));
                self.index.insert(name.to_string(), self.order.len() - 1);
                self.order.len() - 1
            }
        };
        &mut self.order[i]
    }

    pub fn into_vec(self) -> Vec<Family> {
        self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_parsing() {
        assert_eq!(parse_int_prefixed("0x1003"), Some(4099));
        assert_eq!(parse_int_prefixed("1500"), Some(1500));
        assert_eq!(parse_int_prefixed("-1"), Some(-1));
        assert_eq!(parse_int_prefixed("0"), Some(0));
        assert_eq!(parse_int_prefixed("x"), None);
    }

    #[test]
    fn device_filter_is_unanchored() {
        let f = DeviceFilter { include: None, exclude: Some(Regex::new("lo").unwrap()) };
        assert!(f.ignored("lo"));
        assert!(f.ignored("flow0"));
        assert!(!f.ignored("eth0"));
        let f = DeviceFilter { include: Some(Regex::new("^eth").unwrap()), exclude: None };
        assert!(!f.ignored("eth0"));
        assert!(f.ignored("lo"));
    }
}
