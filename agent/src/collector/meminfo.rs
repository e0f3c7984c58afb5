//! `node_memory_<Key>_bytes` for every line of /proc/meminfo, named as node_exporter 1.5 names
//! them: `(x)` becomes `_x`, lines in kB are scaled to bytes, unit-less lines (HugePages_*) keep
//! their name. Unknown keys are kept, odd lines are skipped, so a new kernel never breaks a scrape.

use vigie_exposition::Family;

use super::{Collector, Result, gauge, read};
use crate::paths::Paths;

pub struct Meminfo {
    paths: Paths,
}

impl Meminfo {
    pub fn new(o: &super::Options) -> Meminfo {
        Meminfo {
            paths: o.paths.clone(),
        }
    }
}

/// `(metric key, value)` pairs; malformed lines are returned separately by line number.
pub fn parse_meminfo(text: &str) -> (Vec<(String, f64)>, Vec<usize>) {
    let mut values = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        let (Some(key), Some(Ok(v))) = (
            parts[0].strip_suffix(':'),
            parts.get(1).map(|v| v.parse::<f64>()),
        ) else {
            bad.push(i + 1);
            continue;
        };
        let mut key = match (key.find('('), key.ends_with(')')) {
            (Some(open), true) => format!("{}_{}", &key[..open], &key[open + 1..key.len() - 1]),
            _ => key.to_string(),
        };
        let v = match parts.len() {
            2 => v,
            3 if parts[2] == "kB" => {
                key.push_str("_bytes");
                v * 1024.0
            }
            _ => {
                bad.push(i + 1);
                continue;
            }
        };
        values.push((key, v));
    }
    (values, bad)
}

impl Collector for Meminfo {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("meminfo");
        let (values, bad) = parse_meminfo(&read(&path)?);
        if !bad.is_empty() {
            tracing::debug!(path = %path.display(), lines = ?bad, "skipped malformed meminfo lines");
        }
        for (key, v) in values {
            out.push(gauge(
                format!("node_memory_{key}"),
                format!("Memory information field {key}."),
                v,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_node_exporter() {
        let (v, bad) = parse_meminfo(
            "MemTotal:       15666184 kB\nActive(anon):  1 kB\nHugePages_Total:       0\ngarbage\nX: 1 MB\n",
        );
        assert_eq!(v[0], ("MemTotal_bytes".to_string(), 15666184.0 * 1024.0));
        assert_eq!(v[1].0, "Active_anon_bytes");
        assert_eq!(v[2], ("HugePages_Total".to_string(), 0.0));
        assert_eq!(bad, vec![4, 5]);
    }
}
