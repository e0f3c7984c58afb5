//! `node_vmstat_<field>` (untyped) for the /proc/vmstat fields `--collector.vmstat.fields` selects.

use std::sync::{Arc, Mutex};

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::{Collector, Columns, Error, Result, read};
use crate::paths::Paths;

pub const DEFAULT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

pub struct Vmstat {
    paths: Paths,
    fields: Regex,
    /// The field names of /proc/vmstat (joined) → which lines are selected, with their family
    /// name and HELP: the names only change with the kernel, so the regex runs once, not on
    /// ~170 lines every scrape.
    selected: Mutex<Option<(String, Columns)>>,
}

impl Vmstat {
    pub fn new(o: &super::Options) -> Vmstat {
        Vmstat {
            paths: o.paths.clone(),
            fields: o.vmstat_fields.clone(),
            selected: Mutex::new(None),
        }
    }
}

impl Collector for Vmstat {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("vmstat");
        let text = read(&path)?;
        let rows: Vec<(usize, &str, &str)> = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let mut parts = line.split_ascii_whitespace();
                Some((i, parts.next()?, parts.next()?))
            })
            .collect();
        let layout: String = rows
            .iter()
            .map(|(_, n, _)| *n)
            .collect::<Vec<_>>()
            .join(" ");
        let columns = {
            let mut cached = self.selected.lock().unwrap_or_else(|p| p.into_inner());
            match cached.as_ref() {
                Some((l, cols)) if *l == layout => cols.clone(),
                _ => {
                    let cols = Arc::new(
                        rows.iter()
                            .map(|(_, name, _)| {
                                self.fields.is_match(name).then(|| {
                                    (
                                        format!("node_vmstat_{name}"),
                                        format!("/proc/vmstat information field {name}."),
                                    )
                                })
                            })
                            .collect::<Vec<_>>(),
                    );
                    *cached = Some((layout, cols.clone()));
                    cols
                }
            }
        };
        for ((i, name, value), col) in rows.iter().zip(columns.iter()) {
            let Some((family, help)) = col else { continue };
            let v: f64 = value.parse().map_err(|_| {
                Error::parse(&path, i + 1, format!("invalid value {value:?} for {name}"))
            })?;
            out.push(Family::single(
                family.clone(),
                help.clone(),
                Kind::Untyped,
                v,
            ));
        }
        Ok(())
    }
}
