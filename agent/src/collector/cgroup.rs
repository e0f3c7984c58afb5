//! Per container and per systemd service usage from the cgroup v2 hierarchy
//! (`<sysfs>/fs/cgroup`): CPU seconds, memory current/peak/limit, I/O bytes and operations,
//! PIDs and OOM kills, labelled from the cgroup path (systemd unit, Kubernetes pod UID,
//! container id).
//!
//! The names are `node_cgroup_*`, not cAdvisor's `container_*`: a node also scraped through the
//! kubelet would otherwise count every container twice in `sum()`.
//!
//! A node can have thousands of cgroups, so the walk is breadth first and bounded:
//! `--collector.cgroup.max-depth` levels below the root and `--collector.cgroup.max-cgroups`
//! cgroups per scrape (the rest are counted in `node_cgroup_skipped` and logged once). Listing
//! thousands of directories costs more than reading their files, so the list is kept for
//! [`RELIST`] (a new container shows up within that time; a removed one is dropped at once).
//! Files are opened per read, not kept open: cgroups come and go, and thousands of kept
//! descriptors would exhaust the agent's limit. Labels that would be empty are left out.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use regex::Regex;
use vigie_exposition::{Family, Kind, Labels, Sample};

use super::{Collector, Error, Result};

#[derive(Debug, Clone)]
pub struct Options {
    pub max_depth: usize,
    pub max_cgroups: usize,
    /// Only cgroups whose path (`/system.slice/nginx.service`) matches are reported; their
    /// parents are still walked.
    pub include: Option<Regex>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_depth: 4,
            max_cgroups: 500,
            include: None,
        }
    }
}

/// How long a listing of the hierarchy is reused.
pub const RELIST: Duration = Duration::from_secs(30);

/// The cgroups to read, with their labels, and how many the bounds left out.
struct Listing {
    at: Instant,
    cgroups: Vec<(PathBuf, Labels)>,
    skipped: usize,
}

pub struct Cgroup {
    root: PathBuf,
    options: Options,
    warned: AtomicBool,
    listing: Mutex<Option<Listing>>,
}

impl Cgroup {
    pub fn new(o: &super::Options) -> Cgroup {
        Cgroup {
            root: o.paths.sys("fs/cgroup"),
            options: o.cgroup.clone(),
            warned: AtomicBool::new(false),
            listing: Mutex::new(None),
        }
    }
}

/// What the path says about a cgroup.
#[derive(Debug, Default, PartialEq)]
pub struct Identity {
    pub unit: String,
    pub pod_uid: String,
    pub container_id: String,
}

const UNIT_SUFFIXES: &[&str] = &[".service", ".scope", ".slice", ".socket", ".mount", ".swap"];

/// Labels from a cgroup path: the systemd unit (the last component that is one), the
/// Kubernetes pod UID (`kubepods-burstable-pod<uid>.slice` or `pod<uid>`) and the container id
/// (`docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`,
/// or a bare 64-hex component under the cgroupfs driver).
pub fn identify(path: &str) -> Identity {
    let mut id = Identity::default();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if UNIT_SUFFIXES.iter().any(|s| part.ends_with(s)) {
            id.unit = part.to_string();
        }
        let bare = part
            .strip_suffix(".slice")
            .or_else(|| part.strip_suffix(".scope"))
            .unwrap_or(part);
        if let Some(i) = bare.rfind("pod") {
            let uid = &bare[i + 3..];
            let dashed = uid.replace('_', "-");
            if looks_like_uid(&dashed) && (i == 0 || bare[..i].ends_with('-')) {
                id.pod_uid = dashed;
            }
        }
        let container = ["docker-", "cri-containerd-", "crio-", "libpod-"]
            .iter()
            .find_map(|p| bare.strip_prefix(p))
            .unwrap_or(bare);
        if container.len() == 64 && container.bytes().all(|b| b.is_ascii_hexdigit()) {
            id.container_id = container.to_string();
        }
    }
    id
}

fn looks_like_uid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

/// Reads a small file of an open cgroup directory into `buf` (reused across files and
/// cgroups); `None` when it is absent (controller not enabled, cgroup just removed). `openat` on
/// the directory saves walking the whole path again for each file, and a plain `read` the
/// `statx` + `lseek` that `read_to_string` adds: syscalls are most of this collector's cost.
fn read_into<'a>(dir: &File, name: &str, buf: &'a mut Vec<u8>) -> Option<&'a str> {
    buf.clear();
    let fd = nix::fcntl::openat(
        dir,
        name,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mut file = File::from(fd);
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
    std::str::from_utf8(buf).ok()
}

/// `key value` lines (cpu.stat, memory.events).
fn keyed(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse::<f64>().ok())?
    })
}

/// A single number, or `None` for `max` (no limit).
fn single(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok()
}

/// io.stat: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`, bytes summed over devices.
fn io_bytes(text: &str) -> [f64; 2] {
    let mut sums = [0.0; 2];
    for field in text.split_whitespace() {
        let (i, v) = if let Some(v) = field.strip_prefix("rbytes=") {
            (0, v)
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            (1, v)
        } else {
            continue;
        };
        sums[i] += v.parse::<f64>().unwrap_or(0.0);
    }
    sums
}

/// The families this collector writes, in one place so every cgroup pushes by index.
const FAMILIES: &[(&str, &str, Kind)] = &[
    (
        "node_cgroup_cpu_usage_seconds_total",
        "CPU time consumed by the cgroup (cpu.stat usage_usec).",
        Kind::Counter,
    ),
    (
        "node_cgroup_memory_current_bytes",
        "Memory used by the cgroup, page cache included (memory.current).",
        Kind::Gauge,
    ),
    (
        "node_cgroup_memory_peak_bytes",
        "Highest memory use of the cgroup since it was created (memory.peak, kernel 5.19+).",
        Kind::Gauge,
    ),
    (
        "node_cgroup_memory_limit_bytes",
        "Memory limit of the cgroup (memory.max); absent when unlimited.",
        Kind::Gauge,
    ),
    (
        "node_cgroup_memory_oom_kills_total",
        "Processes of the cgroup killed by the OOM killer (memory.events oom_kill).",
        Kind::Counter,
    ),
    (
        "node_cgroup_io_read_bytes_total",
        "Bytes read by the cgroup from block devices (io.stat rbytes, all devices).",
        Kind::Counter,
    ),
    (
        "node_cgroup_io_written_bytes_total",
        "Bytes written by the cgroup to block devices (io.stat wbytes, all devices).",
        Kind::Counter,
    ),
    (
        "node_cgroup_pids",
        "Processes and threads in the cgroup (pids.current).",
        Kind::Gauge,
    ),
];

impl Cgroup {
    /// Lists the cgroups to read, breadth first within the bounds.
    fn list(&self) -> Listing {
        let mut cgroups = Vec::new();
        let mut skipped = 0usize;
        let mut level: Vec<(PathBuf, String)> = vec![(self.root.clone(), String::new())];
        for _ in 0..self.options.max_depth {
            let mut next = Vec::new();
            for (dir, rel) in &level {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut children: Vec<(PathBuf, String)> = entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        (e.path(), format!("{rel}/{name}"))
                    })
                    .collect();
                children.sort_by(|a, b| a.1.cmp(&b.1));
                next.extend(children);
            }
            for (dir, rel) in &next {
                if self
                    .options
                    .include
                    .as_ref()
                    .is_some_and(|re| !re.is_match(rel))
                {
                    continue;
                }
                if cgroups.len() >= self.options.max_cgroups {
                    skipped += 1;
                    continue;
                }
                cgroups.push((dir.clone(), labels(rel)));
            }
            // Once full, deeper levels would only be skipped: they are not walked.
            if next.is_empty() || cgroups.len() >= self.options.max_cgroups {
                break;
            }
            level = next;
        }
        Listing {
            at: Instant::now(),
            cgroups,
            skipped,
        }
    }
}

/// `cgroup` always; `unit`, `pod_uid` and `container_id` when the path has them.
fn labels(rel: &str) -> Labels {
    let id = identify(rel);
    let mut l: Labels = vec![("cgroup".into(), rel.to_string())];
    for (name, value) in [
        ("container_id", id.container_id),
        ("pod_uid", id.pod_uid),
        ("unit", id.unit),
    ] {
        if !value.is_empty() {
            l.push((name.into(), value));
        }
    }
    l
}

impl Collector for Cgroup {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        if !self.root.join("cgroup.controllers").exists() {
            return Err(Error::NoData(format!(
                "no cgroup v2 hierarchy at {} (a cgroup v1 or hybrid host)",
                self.root.display()
            )));
        }
        let mut listing = self.listing.lock().unwrap_or_else(|p| p.into_inner());
        if listing.as_ref().is_none_or(|l| l.at.elapsed() >= RELIST) {
            *listing = Some(self.list());
        }
        let Some(current) = listing.as_ref() else {
            return Ok(());
        };
        let mut families: Vec<Family> = FAMILIES
            .iter()
            .map(|(n, h, k)| Family::new(*n, *h, *k))
            .collect();
        for f in &mut families {
            f.samples.reserve(current.cgroups.len());
        }
        let mut buf = Vec::with_capacity(1024);
        let mut gone = false;
        for (dir, labels) in &current.cgroups {
            gone |= !read_cgroup(dir, labels, &mut buf, &mut families);
        }
        let skipped = current.skipped;
        if gone {
            // A cgroup went away: list again next time rather than after RELIST.
            *listing = None;
        }
        drop(listing);
        if skipped > 0 && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                collector = "cgroup",
                "more than {} cgroups: {} and deeper levels not reported; raise --collector.cgroup.max-cgroups or narrow --collector.cgroup.include",
                self.options.max_cgroups,
                skipped
            );
        }
        out.extend(families);
        out.push(super::gauge(
            "node_cgroup_skipped",
            "Cgroups not reported because of --collector.cgroup.max-cgroups (deeper levels are not counted).",
            skipped as f64,
        ));
        Ok(())
    }
}

/// Reads one cgroup's files into the families; `false` when the cgroup is gone.
fn read_cgroup(dir: &Path, labels: &Labels, buf: &mut Vec<u8>, families: &mut [Family]) -> bool {
    let mut push = |i: usize, v: f64| {
        families[i].samples.push(Sample::new(labels.clone(), v));
    };
    let Ok(dir) = File::open(dir) else {
        return false;
    };
    let dir = &dir;
    let Some(cpu) = read_into(dir, "cpu.stat", buf) else {
        return true;
    };
    if let Some(v) = keyed(cpu, "usage_usec") {
        push(0, v / 1e6);
    }
    for (i, file) in [(1, "memory.current"), (2, "memory.peak"), (3, "memory.max")] {
        if let Some(v) = read_into(dir, file, buf).and_then(single) {
            push(i, v);
        }
    }
    if let Some(v) = read_into(dir, "memory.events", buf).and_then(|t| keyed(t, "oom_kill")) {
        push(4, v);
    }
    if let Some(io) = read_into(dir, "io.stat", buf) {
        let [read, written] = io_bytes(io);
        push(5, read);
        push(6, written);
    }
    if let Some(v) = read_into(dir, "pids.current", buf).and_then(single) {
        push(7, v);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_from_paths() {
        let uid = "0f8e4e0a-1b2c-4d3e-9f00-123456789abc";
        let cid = "a".repeat(64);
        let k = identify(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{cid}.scope",
            uid.replace('-', "_")
        ));
        assert_eq!(k.pod_uid, uid);
        assert_eq!(k.container_id, cid);
        assert_eq!(k.unit, format!("cri-containerd-{cid}.scope"));
        let c = identify(&format!("/kubepods/besteffort/pod{uid}/{cid}"));
        assert_eq!(
            (c.pod_uid.as_str(), c.container_id.as_str()),
            (uid, cid.as_str())
        );
        let s = identify("/system.slice/nginx.service");
        assert_eq!(s.unit, "nginx.service");
        assert!(s.pod_uid.is_empty() && s.container_id.is_empty());
        let d = identify(&format!("/system.slice/docker-{cid}.scope"));
        assert_eq!(d.container_id, cid);
        // "pod" inside a unit name is not a pod.
        assert!(
            identify("/system.slice/podman-auto-update.service")
                .pod_uid
                .is_empty()
        );
    }

    #[test]
    fn stat_files() {
        assert_eq!(
            keyed("usage_usec 1500000\nuser_usec 10\n", "usage_usec"),
            Some(1_500_000.0)
        );
        assert_eq!(single("max\n"), None);
        assert_eq!(single("1048576\n"), Some(1048576.0));
        assert_eq!(
            io_bytes(
                "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=0 rios=1 wios=0\n"
            ),
            [15.0, 20.0]
        );
    }
}
