//! Where a path glob starts and how deep it reaches: the directory to list (the components
//! before the first wildcard) and how many components below it the pattern spans. Shared by the
//! log shipper's `__path__` and the `file_age` collector, which both walk from that directory.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The components before the first one holding `*`, `?`, `[` or `{`.
    pub base: PathBuf,
    /// Components from the first wildcard on; 0 for a plain path.
    pub depth: usize,
    /// A `**` among them: any depth below `base`.
    pub recursive: bool,
}

pub fn split(pattern: &str) -> Split {
    let mut out = Split {
        base: PathBuf::new(),
        depth: 0,
        recursive: false,
    };
    for c in Path::new(pattern).components() {
        let s = c.as_os_str().to_string_lossy();
        if out.depth == 0 && !s.contains(['*', '?', '[', '{']) {
            out.base.push(c);
        } else {
            out.depth += 1;
            out.recursive |= s.contains("**");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_wildcard() {
        let s = split("/var/log/*/app-{a,b}.log");
        assert_eq!(
            (s.base, s.depth, s.recursive),
            (PathBuf::from("/var/log"), 2, false)
        );
        let s = split("/mnt/nas/**/daily-*");
        assert_eq!(
            (s.base, s.depth, s.recursive),
            (PathBuf::from("/mnt/nas"), 2, true)
        );
        let s = split("/var/log/syslog");
        assert_eq!((s.base, s.depth), (PathBuf::from("/var/log/syslog"), 0));
    }
}
