//! `node_memory_<Key>_bytes` for every line of /proc/meminfo, named as node_exporter 1.5 names
//! them: `(x)` becomes `_x`, lines in kB are scaled to bytes, unit-less lines (HugePages_*) keep
//! their name. Unknown keys are kept, odd lines are skipped, so a new kernel never breaks a scrape.

use vigie_exposition::Family;

use super::{Collector, LayoutCache, Result, gauge, read};
use crate::paths::Paths;

pub struct Meminfo {
    paths: Paths,
    /// Per line of /proc/meminfo: family name, HELP and the factor to bytes, when it is a metric.
    lines: LayoutCache<Vec<Option<(String, String, f64)>>>,
}

impl Meminfo {
    pub fn new(o: &super::Options) -> Meminfo {
        Meminfo {
            paths: o.paths.clone(),
            lines: LayoutCache::default(),
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
        let mut layout = String::with_capacity(text.len() / 2);
        for r in &rows {
            layout.push_str(r.first().unwrap_or(&""));
            layout.push(char::from(b'0' + r.len().min(9) as u8));
        }
        let lines = self.lines.get(layout, || {
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
                .collect()
        });
        let mut bad = Vec::new();
        for (i, (row, line)) in rows.iter().zip(lines.iter()).enumerate() {
            let value = row.get(1).and_then(|v| v.parse::<f64>().ok());
            match (line, value) {
                (Some((name, help, scale)), Some(v)) => {
                    out.push(gauge(name.clone(), help.clone(), v * scale))
                }
                _ if row.is_empty() => {}
                _ => bad.push(i + 1),
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
