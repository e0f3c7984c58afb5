//! Every host path the collectors read goes through [`Paths`], so fixture trees can stand in for
//! `/proc`, `/sys` and `/` (node_exporter's `--path.*` flags). No other module spells those roots.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
        }
    }
}

/// The agent's own process, for self metrics: always the real procfs, whatever `--path.procfs` says.
pub const SELF_STAT: &str = "/proc/self/stat";
pub const SELF_STATUS: &str = "/proc/self/status";
pub const SELF_FD: &str = "/proc/self/fd";

impl Paths {
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }

    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }

    pub fn udev(&self, rel: &str) -> PathBuf {
        self.udev_data.join(rel)
    }

    /// Where a mount point of the host is visible to us (under `--path.rootfs`).
    pub fn rootfs_path(&self, mount_point: &str) -> PathBuf {
        self.rootfs.join(mount_point.trim_start_matches('/'))
    }

    /// Strips the rootfs prefix from a mount point read in a container, as node_exporter does,
    /// so `/host/var` is reported as `/var`.
    pub fn strip_rootfs(&self, mount_point: &str) -> Option<String> {
        let root = self.rootfs.to_string_lossy();
        let root = root.trim_end_matches('/');
        if root.is_empty() {
            return Some(mount_point.to_string());
        }
        let rest = mount_point.strip_prefix(root)?;
        if rest.is_empty() {
            Some("/".to_string())
        } else if rest.starts_with('/') {
            Some(rest.to_string())
        } else {
            None
        }
    }
}

/// Joins for display in errors.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_rootfs_like_node_exporter() {
        let mut p = Paths::default();
        assert_eq!(p.strip_rootfs("/var").as_deref(), Some("/var"));
        p.rootfs = PathBuf::from("/host");
        assert_eq!(p.strip_rootfs("/host").as_deref(), Some("/"));
        assert_eq!(p.strip_rootfs("/host/var").as_deref(), Some("/var"));
        assert_eq!(p.strip_rootfs("/hostile"), None);
        assert_eq!(p.strip_rootfs("/var"), None);
    }
}
