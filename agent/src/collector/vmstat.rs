//! `node_vmstat_<field>` (untyped) for the /proc/vmstat fields `--collector.vmstat.fields` selects.

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::{Collector, Error, Result, read};
use crate::paths::Paths;

pub const DEFAULT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

pub struct Vmstat {
    paths: Paths,
    fields: Regex,
}

impl Vmstat {
    pub fn new(o: &super::Options) -> Vmstat {
        Vmstat {
            paths: o.paths.clone(),
            fields: o.vmstat_fields.clone(),
        }
    }
}

impl Collector for Vmstat {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("vmstat");
        let text = read(&path)?;
        for (i, line) in text.lines().enumerate() {
            let mut parts = line.split_ascii_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !self.fields.is_match(name) {
                continue;
            }
            let v: f64 = value.parse().map_err(|_| {
                Error::parse(&path, i + 1, format!("invalid value {value:?} for {name}"))
            })?;
            out.push(Family::single(
                format!("node_vmstat_{name}"),
                format!("/proc/vmstat information field {name}."),
                Kind::Untyped,
                v,
            ));
        }
        Ok(())
    }
}
