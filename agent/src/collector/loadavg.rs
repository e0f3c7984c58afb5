//! `node_load1`, `node_load5`, `node_load15` from /proc/loadavg.

use std::path::Path;

use vigie_exposition::Family;

use super::{Collector, Error, Result, gauge, read};
use crate::paths::Paths;

pub struct Loadavg {
    paths: Paths,
}

impl Loadavg {
    pub fn new(o: &super::Options) -> Loadavg {
        Loadavg {
            paths: o.paths.clone(),
        }
    }
}

pub fn parse_loadavg(text: &str, path: &Path) -> Result<[f64; 3]> {
    let mut it = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        let field = it
            .next()
            .ok_or_else(|| Error::parse(path, 1, "expected 3 load averages"))?;
        *slot = field
            .parse()
            .map_err(|_| Error::parse(path, 1, format!("invalid load average {field:?}")))?;
    }
    Ok(out)
}

impl Collector for Loadavg {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("loadavg");
        let [l1, l5, l15] = parse_loadavg(&read(&path)?, &path)?;
        out.push(gauge("node_load1", "1m load average.", l1));
        out.push(gauge("node_load5", "5m load average.", l5));
        out.push(gauge("node_load15", "15m load average.", l15));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            parse_loadavg("0.21 0.37 0.39 1/719 19737\n", Path::new("l")).unwrap(),
            [0.21, 0.37, 0.39]
        );
        assert!(parse_loadavg("0.21 x", Path::new("l")).is_err());
        assert!(parse_loadavg("", Path::new("l")).is_err());
    }
}
