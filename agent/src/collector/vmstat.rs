//! `node_vmstat_<field>` (untyped) for the /proc/vmstat fields `--collector.vmstat.fields` selects.

use vigie_exposition::{Family, Kind};

use super::{Collector, Error, LayoutCache, Result, read};
use crate::paths::Paths;

pub const DEFAULT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

pub struct Vmstat {
    paths: Paths,
    /// The field filter's pattern, compiled only when a table layout is first seen: the
    /// automaton would otherwise stay resident for nothing.
    fields: String,
    /// Per line of /proc/vmstat: family name and HELP when the filter selects it.
    lines: LayoutCache<Vec<Option<(String, String)>>>,
}

impl Vmstat {
    pub fn new(o: &super::Options) -> Vmstat {
        Vmstat {
            paths: o.paths.clone(),
            fields: o.vmstat_fields.as_str().to_string(),
            lines: LayoutCache::default(),
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
        let layout = rows
            .iter()
            .map(|(_, n, _)| *n)
            .collect::<Vec<_>>()
            .join(" ");
        let lines = self.lines.get(layout, || {
            // The pattern was validated at start-up; should it fail now, nothing is selected.
            let fields =
                super::filter_regex(&self.fields).unwrap_or_else(|_| super::builtin_regex("^$"));
            rows.iter()
                .map(|(_, name, _)| {
                    fields.is_match(name).then(|| {
                        (
                            format!("node_vmstat_{name}"),
                            format!("/proc/vmstat information field {name}."),
                        )
                    })
                })
                .collect()
        });
        for ((i, name, value), line) in rows.iter().zip(lines.iter()) {
            let Some((family, help)) = line else { continue };
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
