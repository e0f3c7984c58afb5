//! Metrics from `*.prom` files in `--collector.textfile.directory` (a directory or a glob of
//! directories). A file that does not parse, or carries timestamps, is skipped whole and sets
//! `node_textfile_scrape_error 1`; the other files are still served.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use regex::Regex;
use vigie_exposition::{Family, Kind, parse_text};

use super::{Collector, Result, gauge};

pub struct Textfile {
    directory: Option<String>,
}

impl Textfile {
    pub fn new(o: &super::Options) -> Textfile {
        Textfile {
            directory: o.textfile_directory.clone().filter(|d| !d.is_empty()),
        }
    }
}

/// Expands a glob in the last path components (`/var/lib/*_extra`), as Go's `filepath.Glob`
/// would for the common cases; a plain path is returned as is.
fn expand(pattern: &str) -> Vec<PathBuf> {
    if !pattern.contains(['*', '?', '[']) {
        return vec![PathBuf::from(pattern)];
    }
    let mut current = vec![PathBuf::new()];
    for (i, comp) in Path::new(pattern).components().enumerate() {
        let part = comp.as_os_str().to_string_lossy().into_owned();
        if !part.contains(['*', '?', '[']) {
            for c in &mut current {
                if i == 0 {
                    *c = PathBuf::from(&part)
                } else {
                    c.push(&part)
                }
            }
            continue;
        }
        let re = glob_regex(&part);
        let mut next = Vec::new();
        for dir in &current {
            let base = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(names) = super::dir_names(base) else {
                continue;
            };
            for n in names
                .into_iter()
                .filter(|n| re.as_ref().is_some_and(|r| r.is_match(n)))
            {
                next.push(dir.join(n));
            }
        }
        current = next;
    }
    if current.is_empty() {
        vec![PathBuf::from(pattern)]
    } else {
        current
    }
}

fn glob_regex(part: &str) -> Option<Regex> {
    let mut re = String::from("^");
    for c in part.chars() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' | ']' => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).ok()
}

/// Reads one file: its families (HELP filled in, labels made consistent) and its mtime.
pub fn read_file(path: &Path) -> std::result::Result<(Vec<Family>, f64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "failed to open textfile data file {:?}: {e}",
            path.display().to_string()
        )
    })?;
    let mut families = parse_text(&text).map_err(|e| {
        format!(
            "failed to parse textfile data from {:?}: {e}",
            path.display().to_string()
        )
    })?;
    if families
        .iter()
        .any(|f| f.samples.iter().any(|s| s.timestamp_ms.is_some()))
    {
        return Err(format!(
            "textfile {:?} contains unsupported client-side timestamps, skipping entire file",
            path.display().to_string()
        ));
    }
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("failed to stat {:?}: {e}", path.display().to_string()))?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0);
    for fam in &mut families {
        if fam.help.is_empty() {
            fam.help = format!("Metric read from {}", path.display());
        }
        // Every series of a family gets the same label names (missing ones empty), as
        // node_exporter does, so mixed files never produce inconsistent families.
        let bucket_label = match fam.kind {
            Kind::Histogram => "le",
            Kind::Summary => "quantile",
            _ => "",
        };
        let names: BTreeSet<String> = fam
            .samples
            .iter()
            .flat_map(|s| s.labels.iter().map(|(n, _)| n.to_string()))
            .filter(|n| n != bucket_label)
            .collect();
        for s in &mut fam.samples {
            for n in &names {
                if !s.labels.iter().any(|(l, _)| l == n) {
                    s.labels.push((Cow::Owned(n.clone()), String::new()));
                }
            }
        }
        if fam.kind == Kind::Histogram {
            add_inf_buckets(fam);
        }
    }
    families.retain(|f| !f.samples.is_empty());
    Ok((families, mtime))
}

/// Go's const histograms always carry a `+Inf` bucket equal to the count.
fn add_inf_buckets(fam: &mut Family) {
    use vigie_exposition::{Sample, Suffix};
    let mut extra = Vec::new();
    for count in fam.samples.iter().filter(|s| s.suffix == Suffix::Count) {
        let has_inf = fam.samples.iter().any(|s| {
            s.suffix == Suffix::Bucket
                && s.label("le").and_then(vigie_exposition::parse::parse_float)
                    == Some(f64::INFINITY)
                && s.labels
                    .iter()
                    .filter(|(n, _)| n != "le")
                    .eq(count.labels.iter())
        });
        if !has_inf {
            let mut labels = count.labels.clone();
            labels.push((Cow::Borrowed("le"), "+Inf".into()));
            extra.push(Sample {
                suffix: Suffix::Bucket,
                labels,
                value: count.value,
                timestamp_ms: None,
            });
        }
    }
    fam.samples.extend(extra);
}

impl Collector for Textfile {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let mut errored = false;
        let mut mtimes = Family::new(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
            Kind::Gauge,
        );
        if let Some(dir) = &self.directory {
            for dir in expand(dir) {
                let names = match super::dir_names(&dir) {
                    Ok(n) => n,
                    Err(e) => {
                        errored = true;
                        tracing::error!(path = %dir.display(), "failed to read textfile collector directory: {e}");
                        continue;
                    }
                };
                for name in names.iter().filter(|n| n.ends_with(".prom")) {
                    let path = dir.join(name);
                    match read_file(&path) {
                        Ok((families, mtime)) => {
                            out.extend(families);
                            mtimes.push(&[("file", &path.display().to_string())], mtime);
                        }
                        Err(e) => {
                            errored = true;
                            tracing::error!(file = %name, "failed to collect textfile data: {e}");
                        }
                    }
                }
            }
        }
        out.push(mtimes);
        out.push(gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            if errored { 1.0 } else { 0.0 },
        ));
        Ok(())
    }
}
