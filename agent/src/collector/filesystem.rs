//! `node_filesystem_*` per mount: statfs of each mount point in /proc/1/mounts.
//!
//! statfs on a dead NFS/CIFS/FUSE mount can block forever, so calls run on a worker thread and
//! the scrape waits at most `--collector.filesystem.mount-timeout`. A mount whose call is still
//! in flight is reported with `node_filesystem_device_error 1` and skipped until the call returns;
//! a worker stuck in the kernel is abandoned and a fresh one serves the other mounts.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::{Collector, Error, FamilySet, Result};
use crate::paths::Paths;

pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

#[derive(Clone)]
pub struct Options {
    pub mount_points_exclude: Regex,
    pub fs_types_exclude: Regex,
    pub mount_timeout: Duration,
    /// The statfs implementation; tests substitute one that hangs.
    pub statfs: StatFs,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mount_points_exclude", &self.mount_points_exclude)
            .field("fs_types_exclude", &self.fs_types_exclude)
            .field("mount_timeout", &self.mount_timeout)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mount_points_exclude: super::builtin_regex(DEFAULT_MOUNT_POINTS_EXCLUDE),
            fs_types_exclude: super::builtin_regex(DEFAULT_FS_TYPES_EXCLUDE),
            mount_timeout: Duration::from_secs(5),
            statfs: Arc::new(real_statfs),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsStat {
    pub size: f64,
    pub free: f64,
    pub avail: f64,
    pub files: f64,
    pub files_free: f64,
}

pub type StatFs = Arc<dyn Fn(&Path) -> io::Result<FsStat> + Send + Sync>;

pub fn real_statfs(path: &Path) -> io::Result<FsStat> {
    let s = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    let bsize = s.block_size() as f64;
    Ok(FsStat {
        size: s.blocks() as f64 * bsize,
        free: s.blocks_free() as f64 * bsize,
        avail: s.blocks_available() as f64 * bsize,
        files: s.files() as f64,
        files_free: s.files_free() as f64,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

/// Undoes the octal escapes of /proc/mounts (`\040` for a space).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            Some(Mount {
                device: unescape(f.next()?),
                mount_point: unescape(f.next()?),
                fs_type: f.next()?.to_string(),
                options: f.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// One scrape's statfs calls, run in order by the worker; `cancelled` once the scrape gave up
/// on this worker, so it stops after the call it is stuck in.
struct Job {
    mounts: Vec<(usize, String, PathBuf)>,
    reply: mpsc::Sender<(usize, io::Result<FsStat>)>,
    cancelled: Arc<std::sync::atomic::AtomicBool>,
}

pub struct Filesystem {
    paths: Paths,
    opts: Options,
    /// Mount points whose statfs is executing right now (a hung one stays here).
    in_flight: Arc<Mutex<HashSet<String>>>,
    worker: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Filesystem {
    pub fn new(o: &super::Options) -> Filesystem {
        Filesystem {
            paths: o.paths.clone(),
            opts: o.filesystem.clone(),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            worker: Mutex::new(None),
        }
    }

    fn spawn_worker(&self) -> io::Result<mpsc::Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let statfs = self.opts.statfs.clone();
        let in_flight = self.in_flight.clone();
        std::thread::Builder::new()
            .name("statfs".into())
            .spawn(move || {
                use std::sync::atomic::Ordering;
                for job in rx {
                    for (i, mount_point, path) in job.mounts {
                        if job.cancelled.load(Ordering::Acquire) {
                            break;
                        }
                        in_flight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(mount_point.clone());
                        let result = statfs(&path);
                        in_flight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&mount_point);
                        let _ = job.reply.send((i, result));
                    }
                }
            })?;
        Ok(tx)
    }

    /// statfs of every mount, each with the mount timeout; `None` for a mount that did not
    /// answer in time, or whose call from an earlier scrape has not returned (not asked again).
    fn statfs_all(&self, mounts: &[String]) -> Vec<Option<io::Result<FsStat>>> {
        let mut results: Vec<Option<io::Result<FsStat>>> = mounts.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            (0..mounts.len())
                .filter(|&i| {
                    let busy = in_flight.contains(&mounts[i]);
                    if busy {
                        tracing::debug!(mount_point = %mounts[i], "mount point is unresponsive; skipped");
                    }
                    !busy
                })
                .collect()
        };
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        while !pending.is_empty() {
            let sender = match worker.as_ref() {
                Some(w) => w.clone(),
                None => match self.spawn_worker() {
                    Ok(w) => {
                        *worker = Some(w.clone());
                        w
                    }
                    Err(e) => {
                        for i in pending.drain(..) {
                            results[i] = Some(Err(io::Error::new(e.kind(), e.to_string())));
                        }
                        break;
                    }
                },
            };
            let (reply, replies) = mpsc::channel();
            let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let job = Job {
                mounts: pending
                    .iter()
                    .map(|&i| (i, mounts[i].clone(), self.paths.rootfs_path(&mounts[i])))
                    .collect(),
                reply,
                cancelled: cancelled.clone(),
            };
            if sender.send(job).is_err() {
                *worker = None;
                continue;
            }
            while !pending.is_empty() {
                match replies.recv_timeout(self.opts.mount_timeout) {
                    Ok((i, r)) => {
                        results[i] = Some(r);
                        pending.retain(|&p| p != i);
                    }
                    Err(_) => {
                        // The worker is stuck in the kernel on the first mount still pending:
                        // leave it behind and give the rest to a fresh worker.
                        cancelled.store(true, std::sync::atomic::Ordering::Release);
                        *worker = None;
                        let stuck = pending.remove(0);
                        tracing::warn!(mount_point = %mounts[stuck], timeout = ?self.opts.mount_timeout, "statfs did not return in time; mount marked unresponsive");
                        break;
                    }
                }
            }
        }
        results
    }
}

impl Collector for Filesystem {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let mut path = self.paths.proc("1/mounts");
        let text = match super::kfile::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // hidepid or no PID 1 in this namespace: fall back to our own view.
                path = self.paths.proc("mounts");
                super::kfile::read(&path).map_err(|e| Error::io(&path, e))?
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut seen = HashSet::new();
        let mut selected = Vec::new();
        for m in parse_mounts(&text) {
            let mount_point = self
                .paths
                .strip_rootfs(&m.mount_point)
                .unwrap_or(m.mount_point.clone());
            if self.opts.mount_points_exclude.is_match(&mount_point)
                || self.opts.fs_types_exclude.is_match(&m.fs_type)
            {
                continue;
            }
            if seen.insert((m.device.clone(), mount_point.clone(), m.fs_type.clone())) {
                selected.push((m, mount_point));
            }
        }
        let mount_points: Vec<String> = selected.iter().map(|(_, mp)| mp.clone()).collect();
        let stats = self.statfs_all(&mount_points);
        let mut set = FamilySet::default();
        for ((m, mount_point), stat) in selected.iter().zip(stats) {
            let stat = match stat {
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => {
                    tracing::debug!(mount_point, "statfs failed: {e}");
                    None
                }
                None => None,
            };
            let labels = [
                ("device", m.device.as_str()),
                ("fstype", m.fs_type.as_str()),
                ("mountpoint", mount_point.as_str()),
            ];
            set.family(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                Kind::Gauge,
            )
            .push(&labels, if stat.is_some() { 0.0 } else { 1.0 });
            let Some(s) = stat else { continue };
            let ro = if m.options.split(',').any(|o| o == "ro") {
                1.0
            } else {
                0.0
            };
            for (name, help, v) in [
                (
                    "node_filesystem_size_bytes",
                    "Filesystem size in bytes.",
                    s.size,
                ),
                (
                    "node_filesystem_free_bytes",
                    "Filesystem free space in bytes.",
                    s.free,
                ),
                (
                    "node_filesystem_avail_bytes",
                    "Filesystem space available to non-root users in bytes.",
                    s.avail,
                ),
                (
                    "node_filesystem_files",
                    "Filesystem total file nodes.",
                    s.files,
                ),
                (
                    "node_filesystem_files_free",
                    "Filesystem total free file nodes.",
                    s.files_free,
                ),
                (
                    "node_filesystem_readonly",
                    "Filesystem read-only status.",
                    ro,
                ),
            ] {
                set.family(name, help, Kind::Gauge).push(&labels, v);
            }
        }
        out.extend(set.into_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mounts_with_escapes() {
        let m = parse_mounts(
            "/dev/vda / ext4 rw,relatime 0 0\nserver:/x /mnt/with\\040space nfs4 ro 0 0\nshort\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].mount_point, "/mnt/with space");
        assert_eq!(m[1].options, "ro");
    }
}
