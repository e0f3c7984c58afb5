//! `node_cpu_*`: seconds per mode from /proc/stat, optional /proc/cpuinfo labels, thermal
//! throttle counts and isolated CPUs from /sys.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::{Collector, Error, Result, cpu_number, dir_names, read, read_attr};
use crate::paths::Paths;

/// The kernel reports /proc/stat in USER_HZ, fixed at 100 on every architecture Linux exports.
const USER_HZ: f64 = 100.0;
/// An idle counter going back by this much means the CPU was hot-plugged: start again.
const JUMP_BACK_SECONDS: f64 = 3.0;
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

#[derive(Debug, Clone)]
pub struct Options {
    pub guest: bool,
    pub info: bool,
    pub flags_include: Option<Regex>,
    pub bugs_include: Option<Regex>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            guest: true,
            info: false,
            flags_include: None,
            bugs_include: None,
        }
    }
}

pub struct Cpu {
    paths: Paths,
    opts: Options,
    /// Last exported values per CPU, so the counters never go backwards.
    last: Mutex<HashMap<String, [f64; 10]>>,
    topology: Mutex<Option<Topology>>,
}

/// Which CPUs have throttle counters (and their package/core), and which are isolated: fixed
/// until a CPU is hot-plugged, so rescanned once a minute rather than on every scrape.
struct Topology {
    read_at: std::time::Instant,
    throttled: Vec<(std::path::PathBuf, String, String)>,
    isolated: Option<Vec<u32>>,
}

const TOPOLOGY_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl Cpu {
    pub fn new(o: &super::Options) -> Cpu {
        Cpu {
            paths: o.paths.clone(),
            opts: o.cpu.clone(),
            last: Mutex::new(HashMap::new()),
            topology: Mutex::new(None),
        }
    }
}

/// Per-CPU lines of /proc/stat: name and the ten counters in seconds (missing ones are 0).
pub fn parse_stat_cpus(text: &str, path: &Path) -> Result<Vec<(String, [f64; 10])>> {
    let mut cpus = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(num) = cpu_number(name) else {
            continue;
        };
        let mut values = [0.0; 10];
        for (slot, field) in values.iter_mut().zip(fields) {
            let v: u64 = field.parse().map_err(|_| {
                Error::parse(path, i + 1, format!("invalid counter {field:?} for {name}"))
            })?;
            *slot = v as f64 / USER_HZ;
        }
        cpus.push((num.to_string(), values));
    }
    Ok(cpus)
}

impl Collector for Cpu {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("stat");
        let cpus = parse_stat_cpus(&read(&path)?, &path)?;
        let mut seconds = Family::new(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            Kind::Counter,
        );
        let mut guest = Family::new(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            Kind::Counter,
        );
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            last.retain(|k, _| cpus.iter().any(|(n, _)| n == k));
            for (cpu, new) in &cpus {
                let prev = last.entry(cpu.clone()).or_insert([0.0; 10]);
                if prev[3] - new[3] >= JUMP_BACK_SECONDS {
                    tracing::debug!(
                        cpu,
                        "CPU idle counter jumped backwards; assuming a hotplug event"
                    );
                    *prev = [0.0; 10];
                }
                for (p, n) in prev.iter_mut().zip(new) {
                    if *n >= *p {
                        *p = *n;
                    }
                }
                for (mode, v) in MODES.iter().zip(prev.iter()) {
                    seconds.push(&[("cpu", cpu), ("mode", mode)], *v);
                }
                if self.opts.guest {
                    guest.push(&[("cpu", cpu), ("mode", "user")], prev[8]);
                    guest.push(&[("cpu", cpu), ("mode", "nice")], prev[9]);
                }
            }
        }
        out.push(seconds);
        out.push(guest);
        if self.opts.info {
            self.cpuinfo(out)?;
        }
        self.throttles_and_isolated(out);
        Ok(())
    }
}

impl Cpu {
    fn cpuinfo(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("cpuinfo");
        let text = read(&path)?;
        let mut info = Family::new(
            "node_cpu_info",
            "CPU information from /proc/cpuinfo.",
            Kind::Gauge,
        );
        let mut first_flags: Option<String> = None;
        let mut first_bugs: Option<String> = None;
        for block in text.split("\n\n") {
            let kv: HashMap<&str, &str> = block
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            let Some(cpu) = kv.get("processor") else {
                continue;
            };
            let get = |k: &str| kv.get(k).copied().unwrap_or("");
            info.push(
                &[
                    ("cpu", cpu),
                    ("vendor", get("vendor_id")),
                    ("family", get("cpu family")),
                    ("model", get("model")),
                    ("model_name", get("model name")),
                    ("microcode", get("microcode")),
                    ("stepping", get("stepping")),
                    ("cachesize", get("cache size")),
                    ("package", get("physical id")),
                    ("core", get("core id")),
                ],
                1.0,
            );
            first_flags.get_or_insert_with(|| get("flags").to_string());
            first_bugs.get_or_insert_with(|| get("bugs").to_string());
        }
        out.push(info);
        for (re, list, name, help, label) in [
            (
                &self.opts.flags_include,
                first_flags,
                "node_cpu_flag_info",
                "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                "flag",
            ),
            (
                &self.opts.bugs_include,
                first_bugs,
                "node_cpu_bug_info",
                "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                "bug",
            ),
        ] {
            let (Some(re), Some(list)) = (re, list) else {
                continue;
            };
            let mut fam = Family::new(name, help, Kind::Gauge);
            for item in list.split_ascii_whitespace().filter(|f| re.is_match(f)) {
                fam.push(&[(label, item)], 1.0);
            }
            out.push(fam);
        }
        Ok(())
    }

    fn scan_topology(&self) -> Topology {
        let base = self.paths.sys("devices/system/cpu");
        let mut throttled = Vec::new();
        for name in dir_names(&base)
            .unwrap_or_default()
            .iter()
            .filter(|n| cpu_number(n).is_some())
        {
            let dir = base.join(name);
            if !dir.join("thermal_throttle").is_dir() {
                continue;
            }
            if let (Some(pkg), Some(core)) = (
                read_attr(&dir.join("topology/physical_package_id")),
                read_attr(&dir.join("topology/core_id")),
            ) {
                throttled.push((dir.join("thermal_throttle"), pkg, core));
            }
        }
        let isolated = read_attr(&base.join("isolated")).map(|l| parse_cpu_list(&l));
        Topology {
            read_at: std::time::Instant::now(),
            throttled,
            isolated,
        }
    }

    fn throttles_and_isolated(&self, out: &mut Vec<Family>) {
        let mut topo = self.topology.lock().unwrap_or_else(|p| p.into_inner());
        if topo
            .as_ref()
            .is_none_or(|t| t.read_at.elapsed() > TOPOLOGY_TTL)
        {
            *topo = Some(self.scan_topology());
        }
        let Some(topo) = topo.as_ref() else { return };
        let mut cores = Family::new(
            "node_cpu_core_throttles_total",
            "Number of times this CPU core has been throttled.",
            Kind::Counter,
        );
        let mut packages = Family::new(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
            Kind::Counter,
        );
        let mut seen_core = Vec::new();
        let mut seen_pkg = Vec::new();
        for (dir, pkg, core) in &topo.throttled {
            if !seen_core.contains(&(pkg, core)) {
                if let Some(v) =
                    read_attr(&dir.join("core_throttle_count")).and_then(|v| v.parse::<f64>().ok())
                {
                    cores.push(&[("core", core), ("package", pkg)], v);
                }
                seen_core.push((pkg, core));
            }
            if !seen_pkg.contains(&pkg) {
                if let Some(v) = read_attr(&dir.join("package_throttle_count"))
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    packages.push(&[("package", pkg)], v);
                }
                seen_pkg.push(pkg);
            }
        }
        out.push(cores);
        out.push(packages);
        if let Some(isolated) = &topo.isolated {
            let mut fam = Family::new(
                "node_cpu_isolated",
                "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
                Kind::Gauge,
            );
            for cpu in isolated {
                fam.push(&[("cpu", &cpu.to_string())], 1.0);
            }
            out.push(fam);
        }
    }
}

/// Parses the kernel's CPU list format (`0-3,8,10-11`).
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    cpus.extend(a..=b.min(a.saturating_add(4096)));
                }
            }
            None => cpus.extend(part.parse::<u32>().ok()),
        }
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_lists() {
        let text = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 44490 19 2880 112750 71 0 74 0 0 0\ncpu1 100 0 0 0\nintr 1\n";
        let cpus = parse_stat_cpus(text, Path::new("stat")).unwrap();
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].1[0], 444.9);
        assert_eq!(cpus[1].1[4], 0.0);
        assert!(parse_stat_cpus("cpu0 x\n", Path::new("stat")).is_err());
        assert_eq!(parse_cpu_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("").is_empty());
    }
}
