//! Collectors, one file each with node_exporter's names, and the scrape that runs them.
//!
//! Each collector runs on the blocking pool with a deadline. A collector that errs, has no data or
//! misses its deadline reports `node_scrape_collector_success 0` and the rest of the scrape is
//! served; one still running from an earlier scrape is not started twice, so a hung mount cannot
//! pile up threads.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use vigie_exposition::{Family, Kind};

use crate::paths::Paths;

pub mod background;
pub mod ceph;
pub mod cgroup;
pub mod cpu;
pub mod cpufreq;
pub mod diskstats;
pub mod entropy;
pub mod file_age;
pub mod filefd;
pub mod filesystem;
pub mod hwmon;
pub mod kfile;
pub mod loadavg;
pub mod mdadm;
pub mod meminfo;
pub mod netclass;
pub mod netdev;
pub mod netlink;
pub mod netstat;
pub mod pressure;
pub mod smartctl;
pub mod sockstat;
pub mod stat;
pub mod systemd;
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
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn parse(path: &Path, line: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// For each line or column of a kernel table: its family name and HELP when it is exported.
/// Kernel tables keep their layout until reboot, so collectors decide this once per layout.
pub type Columns = Arc<Vec<Option<(String, String)>>>;

/// Remembers what a collector derived from the last layout of a kernel table (which lines are
/// metrics, their names), so the work is done once per kernel, not on every scrape.
pub struct LayoutCache<T> {
    last: Mutex<Option<(String, Arc<T>)>>,
}

impl<T> Default for LayoutCache<T> {
    fn default() -> Self {
        LayoutCache {
            last: Mutex::new(None),
        }
    }
}

impl<T> LayoutCache<T> {
    pub fn get(&self, layout: String, build: impl FnOnce() -> T) -> Arc<T> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((l, derived)) = last.as_ref()
            && *l == layout
        {
            return derived.clone();
        }
        let derived = Arc::new(build());
        *last = Some((layout, derived.clone()));
        derived
    }
}

/// Numbers scrapes, so collectors can share a reading within one scrape and never across two.
static SCRAPE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn current_scrape() -> u64 {
    SCRAPE.load(Ordering::Acquire)
}

/// A source of metric families. `update` is called once per scrape on a blocking thread.
pub trait Collector: Send + Sync + 'static {
    fn update(&self, out: &mut Vec<Family>) -> Result<()>;
}

/// Reads a whole procfs or sysfs file, with the path in the error (see [`kfile`]: a scrape reads
/// ~50 such files and syscalls are most of its cost).
pub fn read(path: &Path) -> Result<String> {
    kfile::read(path).map_err(|e| Error::io(path, e))
}

/// Reads a small sysfs attribute, trimmed; `None` when it is absent or unreadable (sysfs answers
/// EINVAL for attributes that do not apply, such as `speed` of a virtual NIC).
pub fn read_attr(path: &Path) -> Option<String> {
    kfile::read(path)
        .ok()
        .map(|s| s.trim_end_matches('\n').trim().to_string())
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

/// Compiles a user filter (device, mount point, field names). These run on a few dozen names per
/// scrape, or once per kernel table layout, so the lazy DFA's cache is kept small instead of
/// the regex crate's default (megabytes, resident for the life of the agent).
pub fn filter_regex(pattern: &str) -> std::result::Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .dfa_size_limit(64 * 1024)
        .build()
}

/// A filter we ship: its pattern is known to compile.
pub fn builtin_regex(pattern: &'static str) -> Regex {
    filter_regex(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?}: {e}"))
}

/// The number of a `cpuN` name (a /proc/stat line, a /sys/devices/system/cpu entry).
pub fn cpu_number(name: &str) -> Option<&str> {
    name.strip_prefix("cpu")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The entries of a class directory; its absence means the host has no such hardware, which
/// is "no data" rather than an error.
pub fn class_dir_names(dir: &Path) -> Result<Vec<String>> {
    dir_names(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NoData(format!("no {}", dir.display())),
        _ => Error::io(dir, e),
    })
}

/// node_exporter's include/exclude pair: patterns are *unanchored* (`regexp.MatchString`).
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub include: Option<Regex>,
    pub exclude: Option<Regex>,
}

impl DeviceFilter {
    pub fn ignored(&self, name: &str) -> bool {
        if let Some(ex) = &self.exclude
            && ex.is_match(name)
        {
            return true;
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
    pub ceph: ceph::Options,
    pub cgroup: cgroup::Options,
    pub cpu: cpu::Options,
    pub diskstats: DeviceFilter,
    /// Paths or globs whose newest file the `file_age` collector reports.
    pub file_age_paths: Vec<String>,
    pub file_age_interval: Duration,
    pub filesystem: filesystem::Options,
    pub netclass: netclass::Options,
    pub netdev: DeviceFilter,
    /// netdev reads rtnetlink (node_exporter 1.5's default) instead of /proc/net/dev.
    pub netdev_netlink: bool,
    pub netstat_fields: Regex,
    pub smartctl: smartctl::Options,
    pub systemd: systemd::Options,
    /// The rtnetlink dump netdev and netclass share within a scrape.
    pub links: Arc<netlink::LinkCache>,
    pub stat_softirq: bool,
    pub textfile_directory: Option<String>,
    pub vmstat_fields: Regex,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            paths: Paths::default(),
            ceph: ceph::Options::default(),
            cgroup: cgroup::Options::default(),
            cpu: cpu::Options::default(),
            diskstats: DeviceFilter {
                include: None,
                exclude: Some(builtin_regex(diskstats::DEFAULT_EXCLUDE)),
            },
            file_age_paths: Vec::new(),
            file_age_interval: file_age::DEFAULT_INTERVAL,
            filesystem: filesystem::Options::default(),
            netclass: netclass::Options::default(),
            netdev: DeviceFilter::default(),
            netdev_netlink: true,
            netstat_fields: builtin_regex(netstat::DEFAULT_FIELDS),
            smartctl: smartctl::Options::default(),
            systemd: systemd::Options::default(),
            links: Arc::default(),
            stat_softirq: false,
            textfile_directory: None,
            vmstat_fields: builtin_regex(vmstat::DEFAULT_FIELDS),
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
    Spec {
        name: "ceph",
        default_enabled: false,
        help: "Ceph cluster health, OSDs, PGs and capacity from the ceph CLI, in the background",
        build: |o| Box::new(ceph::new(o)),
    },
    Spec {
        name: "cgroup",
        default_enabled: false,
        help: "per container and systemd service CPU, memory, I/O, PIDs and OOM kills from cgroup v2",
        build: |o| Box::new(cgroup::Cgroup::new(o)),
    },
    Spec {
        name: "cpu",
        default_enabled: true,
        help: "CPU time per mode from /proc/stat",
        build: |o| Box::new(cpu::Cpu::new(o)),
    },
    Spec {
        name: "cpufreq",
        default_enabled: true,
        help: "CPU frequency from /sys/devices/system/cpu",
        build: |o| Box::new(cpufreq::Cpufreq::new(o)),
    },
    Spec {
        name: "diskstats",
        default_enabled: true,
        help: "disk I/O from /proc/diskstats",
        build: |o| Box::new(diskstats::Diskstats::new(o)),
    },
    Spec {
        name: "entropy",
        default_enabled: true,
        help: "available entropy",
        build: |o| Box::new(entropy::Entropy::new(o)),
    },
    Spec {
        name: "filefd",
        default_enabled: true,
        help: "file descriptor statistics from /proc/sys/fs/file-nr",
        build: |o| Box::new(filefd::Filefd::new(o)),
    },
    Spec {
        name: "file_age",
        default_enabled: false,
        help: "newest modification time, count and size of files matching --collector.file_age.path (backups), in the background",
        build: |o| Box::new(file_age::FileAge::new(o)),
    },
    Spec {
        name: "filesystem",
        default_enabled: true,
        help: "filesystem statistics (statfs per mount, with a timeout)",
        build: |o| Box::new(filesystem::Filesystem::new(o)),
    },
    Spec {
        name: "hwmon",
        default_enabled: true,
        help: "hardware monitoring from /sys/class/hwmon",
        build: |o| Box::new(hwmon::Hwmon::new(o)),
    },
    Spec {
        name: "loadavg",
        default_enabled: true,
        help: "load average",
        build: |o| Box::new(loadavg::Loadavg::new(o)),
    },
    Spec {
        name: "mdadm",
        default_enabled: true,
        help: "software RAID state from /proc/mdstat",
        build: |o| Box::new(mdadm::Mdadm::new(o)),
    },
    Spec {
        name: "meminfo",
        default_enabled: true,
        help: "memory statistics from /proc/meminfo",
        build: |o| Box::new(meminfo::Meminfo::new(o)),
    },
    Spec {
        name: "netclass",
        default_enabled: true,
        help: "network interface info from /sys/class/net",
        build: |o| Box::new(netclass::Netclass::new(o)),
    },
    Spec {
        name: "netdev",
        default_enabled: true,
        help: "network interface statistics from /proc/net/dev",
        build: |o| Box::new(netdev::Netdev::new(o)),
    },
    Spec {
        name: "netstat",
        default_enabled: true,
        help: "network statistics from /proc/net/{netstat,snmp,snmp6}",
        build: |o| Box::new(netstat::Netstat::new(o)),
    },
    Spec {
        name: "pressure",
        default_enabled: true,
        help: "pressure stall information from /proc/pressure",
        build: |o| Box::new(pressure::Pressure::new(o)),
    },
    Spec {
        name: "smartctl",
        default_enabled: false,
        help: "drive health from smartctl --json (smartmontools 7+), in the background",
        build: |o| Box::new(smartctl::new(o)),
    },
    Spec {
        name: "sockstat",
        default_enabled: true,
        help: "socket statistics from /proc/net/sockstat{,6}",
        build: |o| Box::new(sockstat::Sockstat::new(o)),
    },
    Spec {
        name: "stat",
        default_enabled: true,
        help: "kernel statistics from /proc/stat",
        build: |o| Box::new(stat::Stat::new(o)),
    },
    Spec {
        name: "systemd",
        default_enabled: false,
        help: "systemd unit states from systemctl, in the background",
        build: |o| Box::new(systemd::new(o)),
    },
    Spec {
        name: "textfile",
        default_enabled: true,
        help: "metrics from *.prom files in the textfile directory",
        build: |o| Box::new(textfile::Textfile::new(o)),
    },
    Spec {
        name: "thermal_zone",
        default_enabled: true,
        help: "thermal zones from /sys/class/thermal",
        build: |o| Box::new(thermal_zone::ThermalZone::new(o)),
    },
    Spec {
        name: "time",
        default_enabled: true,
        help: "the current system time and clocksources",
        build: |o| Box::new(time::Time::new(o)),
    },
    Spec {
        name: "uname",
        default_enabled: true,
        help: "system information from the uname system call",
        build: |o| Box::new(uname::Uname::new(o)),
    },
    Spec {
        name: "vmstat",
        default_enabled: true,
        help: "statistics from /proc/vmstat",
        build: |o| Box::new(vmstat::Vmstat::new(o)),
    },
];

/// Vigie's own collectors, which node_exporter 1.5 does not have (comparisons leave them out).
pub const VIGIE_ONLY: &[&str] = &["ceph", "cgroup", "file_age", "smartctl"];

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
        let built = names
            .iter()
            .filter_map(|n| spec(n))
            .map(|s| (s.name, (s.build)(options)))
            .collect();
        Collectors::from_collectors(built, timeout)
    }

    /// Collectors built elsewhere (tests, other crates), under the given names.
    pub fn from_collectors(
        collectors: Vec<(&'static str, Box<dyn Collector>)>,
        timeout: Duration,
    ) -> Collectors {
        let entries = collectors
            .into_iter()
            .map(|(name, c)| Entry {
                name,
                collector: Arc::from(c),
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
    ///
    /// Collectors run one after the other on one blocking thread (a thread hand-off per
    /// collector would cost more than most collectors). When no collector has finished for a
    /// while, a helper takes over the collectors not yet started, so a hung one delays nothing
    /// but itself; whatever has not finished at the deadline reports `success 0`.
    pub async fn scrape(&self, wanted: impl Fn(&str) -> bool) -> Vec<Family> {
        SCRAPE.fetch_add(1, Ordering::AcqRel);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let stall = (self.timeout / 2).min(STALL);
        // Per wanted collector, in order: its job in this scrape, or None when it is still
        // running from an earlier one.
        let mut plan = Vec::new();
        let mut jobs = Vec::new();
        for entry in self.entries.iter().filter(|e| wanted(e.name)) {
            if entry.busy.swap(true, Ordering::AcqRel) {
                plan.push((entry, None));
            } else {
                plan.push((entry, Some(jobs.len())));
                jobs.push(Job {
                    collector: entry.collector.clone(),
                    busy: entry.busy.clone(),
                    claimed: AtomicBool::new(false),
                });
            }
        }
        let total = jobs.len();
        let batch = Arc::new(Batch {
            results: Mutex::new(jobs.iter().map(|_| None).collect()),
            jobs,
            done: AtomicUsize::new(0),
            all_done: tokio::sync::Notify::new(),
        });
        if total > 0 {
            let b = batch.clone();
            tokio::task::spawn_blocking(move || b.run());
        }
        let mut progress = 0;
        while batch.done.load(Ordering::Acquire) < total {
            let wake = (tokio::time::Instant::now() + stall).min(deadline);
            tokio::select! {
                _ = batch.all_done.notified() => {}
                _ = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    let done = batch.done.load(Ordering::Acquire);
                    if done == progress && batch.jobs.iter().any(|j| !j.claimed.load(Ordering::Acquire)) {
                        let b = batch.clone();
                        tokio::task::spawn_blocking(move || b.run());
                    }
                    progress = done;
                }
            }
        }
        let mut outcomes: Vec<Option<Outcome>> =
            std::mem::take(&mut *batch.results.lock().unwrap_or_else(|p| p.into_inner()));
        // Collectors never started before the deadline are released for the next scrape.
        for job in &batch.jobs {
            if !job.claimed.swap(true, Ordering::AcqRel) {
                job.busy.store(false, Ordering::Release);
            }
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
        for (entry, job) in plan {
            let outcome = job.map(|j| outcomes[j].take());
            let (ok, elapsed) = match outcome {
                None => {
                    entry.report(&Error::Other(format!(
                        "still running from an earlier scrape (longer than {:?}); skipped",
                        self.timeout
                    )));
                    (false, Duration::ZERO)
                }
                Some(None) => {
                    entry.report(&Error::Other(format!(
                        "did not finish within {:?}",
                        self.timeout
                    )));
                    (false, self.timeout)
                }
                Some(Some(outcome)) => {
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
            };
            duration.push(&[("collector", entry.name)], elapsed.as_secs_f64());
            success.push(&[("collector", entry.name)], if ok { 1.0 } else { 0.0 });
        }
        out.push(duration);
        out.push(success);
        out
    }
}

/// After this long without a collector finishing, a helper thread takes the remaining ones.
const STALL: Duration = Duration::from_secs(1);

struct Job {
    collector: Arc<dyn Collector>,
    busy: Arc<AtomicBool>,
    /// Set by the thread that runs the job, so a helper never runs it twice.
    claimed: AtomicBool,
}

/// One scrape's collectors, shared by the thread running them and any helper. Results go to
/// slots and the scrape is woken once, when the last one lands.
struct Batch {
    jobs: Vec<Job>,
    results: Mutex<Vec<Option<Outcome>>>,
    done: AtomicUsize,
    all_done: tokio::sync::Notify,
}

impl Batch {
    fn run(&self) {
        for (i, job) in self.jobs.iter().enumerate() {
            if job.claimed.swap(true, Ordering::AcqRel) {
                continue;
            }
            let start = Instant::now();
            let mut families = Vec::new();
            let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                job.collector.update(&mut families)
            })) {
                Ok(r) => r,
                Err(_) => Err(Error::Other("collector panicked".into())),
            };
            job.busy.store(false, Ordering::Release);
            // The scrape may have given up on us already; then the result is simply dropped.
            let outcome = Outcome {
                families,
                result,
                elapsed: start.elapsed(),
            };
            if let Some(slot) = self
                .results
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(i)
            {
                *slot = Some(outcome);
            }
            if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.jobs.len() {
                self.all_done.notify_one();
            }
        }
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
            tracing::debug!(collector = self.name, "collector has {text}");
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

/// Families by name, for collectors that add series to many families as they go. A linear
/// scan: a collector has a few dozen families at most, fewer than it takes to beat hashing.
#[derive(Default)]
pub struct FamilySet {
    order: Vec<Family>,
}

impl FamilySet {
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Family {
        let i = match self.order.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.order.push(Family::new(name, help, kind));
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
        let f = DeviceFilter {
            include: None,
            exclude: Some(Regex::new("lo").unwrap()),
        };
        assert!(f.ignored("lo"));
        assert!(f.ignored("flow0"));
        assert!(!f.ignored("eth0"));
        let f = DeviceFilter {
            include: Some(Regex::new("^eth").unwrap()),
            exclude: None,
        };
        assert!(!f.ignored("eth0"));
        assert!(f.ignored("lo"));
    }
}
