//! Freshness of backups and other scheduled jobs' output: for each configured path or glob
//! (`--collector.file_age.path`, repeatable), the newest modification time, the number of
//! matching files and their total size, so a rule can say "the NAS copy is older than 26 h".
//!
//! When nothing matches (the NAS is unmounted, the job never ran), the newest time is 0: a
//! staleness rule (`time() - node_file_age_newest_timestamp_seconds > 26 * 3600`) then fires
//! instead of going quiet for lack of a series.
//!
//! A `**` over a music library walks a million files, and a NAS mount can hang: the walk runs
//! in the background ([`super::background`]) every `--collector.file_age.interval`, never in a
//! scrape. Symlinked directories are not followed (a link to a parent would loop forever).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{GlobBuilder, GlobMatcher};
use vigie_exposition::{Family, Kind};

use super::background::Background;
use super::{Collector, Error, FamilySet, Result};
use crate::paths::Paths;

/// One configured pattern, split into the directory to start from and the matcher.
struct Pattern {
    text: String,
    base: PathBuf,
    matcher: GlobMatcher,
    /// Directory levels below `base` to descend; `None` for `**`.
    depth: Option<usize>,
}

/// The configured patterns, walked in the background; `None` when there are none.
pub struct FileAge {
    background: Option<Background>,
}

/// Compiles a pattern (`/srv/backup/*.tar.gz`, `/mnt/nas/**/daily-*`); a plain path matches
/// itself.
fn compile(text: &str) -> std::result::Result<Pattern, String> {
    if !text.starts_with('/') {
        return Err(format!("{text:?}: the path must be absolute"));
    }
    let matcher = GlobBuilder::new(text)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("{text:?}: {e}"))?
        .compile_matcher();
    let split = crate::glob::split(text);
    Ok(Pattern {
        text: text.to_string(),
        base: split.base,
        matcher,
        depth: (!split.recursive).then_some(split.depth),
    })
}

/// Checks a pattern given on the command line.
pub fn check(text: &str) -> std::result::Result<(), String> {
    compile(text).map(|_| ())
}

impl FileAge {
    pub fn new(o: &super::Options) -> FileAge {
        if o.file_age_paths.is_empty() {
            return FileAge { background: None };
        }
        let patterns: Vec<_> = o.file_age_paths.iter().map(|p| compile(p)).collect();
        let paths = o.paths.clone();
        FileAge {
            background: Some(Background::spawn(
                "file_age",
                o.file_age_interval,
                move || collect(&patterns, &paths),
            )),
        }
    }
}

/// How often the patterns are walked unless `--collector.file_age.interval` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Tally {
    newest: f64,
    files: f64,
    bytes: f64,
}

/// Walks `dir` (seen at `shown` on the host) `depth` levels down, tallying regular files that
/// match. Unreadable directories are skipped: what a backup job cannot list, it did not write.
fn walk(dir: &Path, shown: &Path, depth: Option<usize>, p: &Pattern, t: &mut Tally) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let host_path = shown.join(entry.file_name());
        // A symlinked file counts as its target; a symlinked directory is not entered.
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if is_link {
                continue;
            }
            match depth {
                Some(0) | Some(1) => {}
                Some(n) => walk(&path, &host_path, Some(n - 1), p, t),
                None => walk(&path, &host_path, None, p, t),
            }
            continue;
        }
        if meta.is_file() && p.matcher.is_match(&host_path) {
            tally(&meta, t);
        }
    }
}

fn tally(meta: &fs::Metadata, t: &mut Tally) {
    let mtime = meta.mtime() as f64 + meta.mtime_nsec() as f64 / 1e9;
    t.newest = t.newest.max(mtime);
    t.files += 1.0;
    t.bytes += meta.len() as f64;
}

impl Collector for FileAge {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        match &self.background {
            Some(b) => b.serve(out),
            None => Err(Error::NoData(
                "no --collector.file_age.path configured".into(),
            )),
        }
    }
}

/// One background run over every pattern.
fn collect(
    patterns: &[std::result::Result<Pattern, String>],
    paths: &Paths,
) -> (Vec<Family>, Option<Error>) {
    let mut set = FamilySet::default();
    let mut errors = Vec::new();
    for p in patterns {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                errors.push(e.clone());
                continue;
            }
        };
        let mut t = Tally::default();
        let base = paths.rootfs_path(&p.base.to_string_lossy());
        match p.depth {
            // A plain path: the file itself, or the files directly in that directory.
            Some(0) => match fs::metadata(&base) {
                Ok(m) if m.is_file() => tally(&m, &mut t),
                Ok(m) if m.is_dir() => {
                    let any = compile(&format!("{}/*", p.text.trim_end_matches('/')));
                    if let Ok(any) = any {
                        walk(&base, &p.base, Some(1), &any, &mut t);
                    }
                }
                _ => {}
            },
            depth => walk(&base, &p.base, depth, p, &mut t),
        }
        let l = [("path", p.text.as_str())];
        set.family(
            "node_file_age_newest_timestamp_seconds",
            "Modification time of the newest file matching the path (0 when none does).",
            Kind::Gauge,
        )
        .push(&l, t.newest);
        set.family(
            "node_file_age_files",
            "Number of regular files matching the path.",
            Kind::Gauge,
        )
        .push(&l, t.files);
        set.family(
            "node_file_age_bytes",
            "Total size of the files matching the path.",
            Kind::Gauge,
        )
        .push(&l, t.bytes);
    }
    let error = (!errors.is_empty())
        .then(|| Error::Other(format!("--collector.file_age.path {}", errors.join("; "))));
    (set.into_vec(), error)
}
