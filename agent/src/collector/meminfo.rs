//! `node_memory_<Key>_bytes` for every line of /proc/meminfo, named as node_exporter 1.5 names
//! them: `(x)` becomes `_x`, lines in kB are scaled to bytes, unit-less lines (HugePages_*) keep
//! their name. Unknown keys are kept, odd lines are skipped, so a new kernel never breaks a scrape.

use std::sync::{Arc, Mutex};

use vigie_exposition::Family;

use super::{Collector, Result, gauge, read};
use crate::paths::Paths;

/// Per line of /proc/meminfo: family name, HELP and the factor to bytes, when it is a metric.
type Lines = Arc<Vec<Option<(String, String, f64)>>>;

pub struct Meminfo {
    paths: Paths,
    /// The line layout of /proc/meminfo → each line's family name, HELP and scale, so names
    /// are built once per kernel rather than twice per line per scrape.
    layout: Mutex<Option<(String, Lines)>>,
}

impl Meminfo {
    pub fn new(o: &super::Options) -> Meminfo {
        Meminfo {
            paths: o.paths.clone(),
            layout: Mutex::new(None),
        }
    }
}

/// The metric key of a meminfo line and the factor to bytes: `Active(anon):` in kB becomes
/// `Active_anon_bytes` × 1024; a unit-less line (HugePages_Total) keeps its name.
fn key_of(name: &str, unit: Option<&str>) -> Option<(String, f64)> {
    let name = name.strip_suffix(':')?;
    let mut key = match (name.find('('), name.ends_with(')')) {
        (Some(open), true) => format!("{}_{}", &name[..open], &name[open + 1..name.len() - 1]),
        _ => name.to_string(),
    };
    match unit {
        None => Some((key, 1.0)),
        Some("kB") => {
            key.push_str("_bytes");
            Some((key, 1024.0))
        }
        Some(_) => None,
    }
}

impl Collector for Meminfo {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("meminfo");
        let text = read(&path)?;
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_ascii_whitespace().collect())
            .collect();
        let layout: String = rows
            .iter()
            .map(|r| format!("{}/{}", r.first().unwrap_or(&""), r.len()))
            .collect::<Vec<_>>()
            .join(" ");
        let columns = {
            let mut cached = self.layout.lock().unwrap_or_else(|p| p.into_inner());
            match cached.as_ref() {
                Some((l, cols)) if *l == layout => cols.clone(),
                _ => {
                    let cols: Arc<Vec<_>> = Arc::new(
                        rows.iter()
                            .map(|r| match r.as_slice() {
                                [name, _] => key_of(name, None),
                                [name, _, unit] => key_of(name, Some(unit)),
                                _ => None,
                            })
                            .map(|k| {
                                k.map(|(key, scale)| {
                                    (
                                        format!("node_memory_{key}"),
                                        format!("Memory information field {key}."),
                                        scale,
                                    )
                                })
                            })
                            .collect(),
                    );
                    *cached = Some((layout, cols.clone()));
                    cols
                }
            }
        };
        let mut bad = Vec::new();
        for (i, (row, col)) in rows.iter().zip(columns.iter()).enumerate() {
            let Some((name, help, scale)) = col else {
                if !row.is_empty() {
                    bad.push(i + 1);
                }
                continue;
            };
            match row.get(1).and_then(|v| v.parse::<f64>().ok()) {
                Some(v) => out.push(gauge(name.clone(), help.clone(), v * scale)),
                None => bad.push(i + 1),
            }
        }
        if !bad.is_empty() {
            tracing::debug!(path = %path.display(), lines = ?bad, "skipped malformed meminfo lines");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_node_exporter() {
        assert_eq!(
            key_of("MemTotal:", Some("kB")),
            Some(("MemTotal_bytes".to_string(), 1024.0))
        );
        assert_eq!(
            key_of("Active(anon):", Some("kB")).unwrap().0,
            "Active_anon_bytes"
        );
        assert_eq!(
            key_of("HugePages_Total:", None),
            Some(("HugePages_Total".to_string(), 1.0))
        );
        assert_eq!(key_of("Weird:", Some("MB")), None);
        assert_eq!(key_of("nocolon", None), None);
    }
}
