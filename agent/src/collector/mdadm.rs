//! Software RAID from `/proc/mdstat`, under node_exporter's `node_md_*` names and semantics
//! (procfs' parser): state, disks by state, blocks and blocks synced, with a resync, recovery
//! or check in progress reported in `node_md_state` and `node_md_blocks_synced`.

use std::io;

use vigie_exposition::{Family, Kind};

use super::{Collector, Error, FamilySet, Result};
use crate::paths::Paths;

pub struct Mdadm {
    paths: Paths,
}

impl Mdadm {
    pub fn new(o: &super::Options) -> Mdadm {
        Mdadm {
            paths: o.paths.clone(),
        }
    }
}

/// One array as `/proc/mdstat` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MdStat {
    pub name: String,
    /// active, inactive, recovering, resyncing or checking.
    pub state: String,
    pub disks_active: f64,
    pub disks_failed: f64,
    pub disks_spare: f64,
    pub disks_down: f64,
    pub disks_total: f64,
    pub blocks: f64,
    pub blocks_synced: f64,
}

/// Parses `/proc/mdstat`; an error carries the 1-based line of the array it could not read.
pub fn parse(text: &str) -> std::result::Result<Vec<MdStat>, (usize, String)> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with('\t')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            return Err((
                i + 1,
                format!("not enough fields in md line (expected at least 3): {line:?}"),
            ));
        }
        let name = fields[0].to_string();
        let mut state = fields[2].to_string();
        if lines.len() <= i + 3 {
            return Err((i + 1, format!("too few lines for md device {name}")));
        }
        let failed = line.matches("(F)").count() as f64;
        let spare = line.matches("(S)").count() as f64;
        let (active, total, down, blocks) =
            status_line(line, lines[i + 1]).map_err(|m| (i + 2, m))?;
        let mut sync_idx = i + 2;
        if lines[sync_idx].contains("bitmap") {
            sync_idx += 1;
        }
        let sync = lines.get(sync_idx).copied().unwrap_or("");
        let recovering = sync.contains("recovery");
        let resyncing = sync.contains("resync");
        let checking = sync.contains("check");
        let mut synced = blocks;
        if recovering || resyncing || checking {
            state = if recovering {
                "recovering"
            } else if checking {
                "checking"
            } else {
                "resyncing"
            }
            .to_string();
            if sync.contains("PENDING") || sync.contains("DELAYED") {
                synced = 0.0;
            } else {
                synced = recovery_blocks(sync).ok_or_else(|| {
                    (
                        sync_idx + 1,
                        format!("no synced blocks \"(done/total)\" in {sync:?}"),
                    )
                })?;
            }
        }
        out.push(MdStat {
            name,
            state,
            disks_active: active,
            disks_failed: failed,
            disks_spare: spare,
            disks_down: down,
            disks_total: total,
            blocks,
            blocks_synced: synced,
        });
    }
    Ok(out)
}

/// `(active, total, down, blocks)` from the array's line and its status line
/// (`1953381440 blocks super 1.2 [2/1] [U_]`).
fn status_line(
    device_line: &str,
    status: &str,
) -> std::result::Result<(f64, f64, f64, f64), String> {
    let first = status
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("empty status line after {device_line:?}"))?;
    let blocks: f64 = first
        .parse::<u64>()
        .map_err(|_| format!("unexpected status line {status:?}"))? as f64;
    if device_line.contains("raid0") || device_line.contains("linear") {
        let total = device_line.matches('[').count() as f64;
        return Ok((total, total, 0.0, blocks));
    }
    if device_line.contains("inactive") {
        return Ok((0.0, 0.0, 0.0, blocks));
    }
    // `[n/m] [UU_]`: the last two bracketed groups of the line.
    let groups: Vec<&str> = status
        .split('[')
        .skip(1)
        .filter_map(|g| g.split(']').next())
        .collect();
    let counts = groups
        .iter()
        .rev()
        .find_map(|g| {
            let (t, a) = g.split_once('/')?;
            Some((t.parse::<u64>().ok()?, a.parse::<u64>().ok()?))
        })
        .ok_or_else(|| format!("no \"[total/active]\" in status line {status:?}"))?;
    let map = groups
        .iter()
        .rev()
        .find(|g| !g.is_empty() && g.bytes().all(|b| b == b'U' || b == b'_'))
        .ok_or_else(|| format!("no \"[U_]\" map in status line {status:?}"))?;
    let down = map.bytes().filter(|b| *b == b'_').count() as f64;
    Ok((counts.1 as f64, counts.0 as f64, down, blocks))
}

/// The blocks done in `[==>...]  recovery = 12.6% (37043392/292945152) finish=...`.
fn recovery_blocks(line: &str) -> Option<f64> {
    let start = line.find('(')?;
    let inner = &line[start + 1..];
    let (done, rest) = inner.split_once('/')?;
    rest.split_once(')')?;
    done.trim().parse::<u64>().ok().map(|v| v as f64)
}

impl Collector for Mdadm {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("mdstat");
        let text = match super::kfile::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoData(format!("no {}", path.display())));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let arrays = parse(&text).map_err(|(line, m)| Error::parse(&path, line, m))?;
        let mut set = FamilySet::default();
        for md in &arrays {
            let d = md.name.as_str();
            set.family(
                "node_md_disks_required",
                "Total number of disks of device.",
                Kind::Gauge,
            )
            .push(&[("device", d)], md.disks_total);
            let disks = set.family(
                "node_md_disks",
                "Number of active/failed/spare disks of device.",
                Kind::Gauge,
            );
            disks.push(&[("device", d), ("state", "active")], md.disks_active);
            disks.push(&[("device", d), ("state", "failed")], md.disks_failed);
            disks.push(&[("device", d), ("state", "spare")], md.disks_spare);
            let state = set.family(
                "node_md_state",
                "Indicates the state of md-device.",
                Kind::Gauge,
            );
            for (label, value) in [
                ("active", "active"),
                ("inactive", "inactive"),
                ("recovering", "recovering"),
                ("resync", "resyncing"),
                ("check", "checking"),
            ] {
                let on = if md.state == value { 1.0 } else { 0.0 };
                state.push(&[("device", d), ("state", label)], on);
            }
            set.family(
                "node_md_blocks",
                "Total number of blocks on device.",
                Kind::Gauge,
            )
            .push(&[("device", d)], md.blocks);
            set.family(
                "node_md_blocks_synced",
                "Number of blocks synced on device.",
                Kind::Gauge,
            )
            .push(&[("device", d)], md.blocks_synced);
        }
        out.extend(set.into_vec());
        Ok(())
    }
}
