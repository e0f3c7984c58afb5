//! systemd unit states under node_exporter's `node_systemd_*` names, read with `systemctl show`
//! instead of a D-Bus client: one process per run, with a deadline, in the background
//! ([`super::background`]). node_exporter's D-Bus collector is known to hang scrapes and to leak
//! connections; a hung `systemctl` here is killed at the deadline and costs the scrape nothing.
//!
//! Where systemd is not PID 1 (a container, this kind of CI VM) the collector reports
//! `success 0` with that reason, once in the log.

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::background::{self, Background};
use super::{Error, FamilySet, Result, builtin_regex};
use crate::paths::Paths;

/// node_exporter's defaults, anchored as it anchors them.
pub const DEFAULT_UNIT_INCLUDE: &str = ".+";
pub const DEFAULT_UNIT_EXCLUDE: &str = ".+\\.(automount|device|mount|scope|slice)";

#[derive(Debug, Clone)]
pub struct Options {
    pub path: PathBuf,
    pub interval: Duration,
    pub timeout: Duration,
    pub unit_include: Regex,
    pub unit_exclude: Regex,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            path: PathBuf::from("systemctl"),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            unit_include: anchored(DEFAULT_UNIT_INCLUDE),
            unit_exclude: anchored(DEFAULT_UNIT_EXCLUDE),
        }
    }
}

/// node_exporter wraps the unit filters in `^(?:…)$`.
pub fn anchored(pattern: &str) -> Regex {
    super::filter_regex(&format!("^(?:{pattern})$")).unwrap_or_else(|_| builtin_regex("^$"))
}

/// The collector: `systemctl` on its own thread every interval; the scrape serves the last run.
pub fn new(o: &super::Options) -> Background {
    let opts = o.systemd.clone();
    let paths = o.paths.clone();
    Background::spawn("systemd", opts.interval, move || collect(&opts, &paths))
}

const STATES: [&str; 5] = ["activating", "active", "deactivating", "failed", "inactive"];

/// One unit from `systemctl show`.
#[derive(Debug, Default, PartialEq)]
pub struct Unit {
    pub id: String,
    pub active_state: String,
    pub kind: String,
    pub load_state: String,
}

/// Parses `systemctl show` output: `Key=Value` blocks separated by blank lines.
pub fn parse_show(text: &str) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut cur = Unit::default();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !cur.id.is_empty() {
                units.push(std::mem::take(&mut cur));
            }
            cur = Unit::default();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "Id" => cur.id = v.to_string(),
            "ActiveState" => cur.active_state = v.to_string(),
            "Type" => cur.kind = v.to_string(),
            "LoadState" => cur.load_state = v.to_string(),
            _ => {}
        }
    }
    units
}

/// The families for these units, filtered as node_exporter filters them.
pub fn unit_families(set: &mut FamilySet, units: &[Unit], o: &Options) {
    let mut counts = [0.0f64; STATES.len()];
    let state = set.family("node_systemd_unit_state", "Systemd unit", Kind::Gauge);
    for u in units {
        if u.load_state == "not-found" {
            continue;
        }
        if let Some(i) = STATES.iter().position(|s| *s == u.active_state) {
            counts[i] += 1.0;
        }
        if !o.unit_include.is_match(&u.id) || o.unit_exclude.is_match(&u.id) {
            continue;
        }
        // node_exporter reads Type only for services and mounts.
        let kind = if u.id.ends_with(".service") || u.id.ends_with(".mount") {
            u.kind.as_str()
        } else {
            ""
        };
        for s in STATES {
            let on = if u.active_state == s { 1.0 } else { 0.0 };
            state.push(&[("name", &u.id), ("state", s), ("type", kind)], on);
        }
    }
    let summary = set.family(
        "node_systemd_units",
        "Summary of systemd unit states",
        Kind::Gauge,
    );
    for (s, n) in STATES.iter().zip(counts) {
        summary.push(&[("state", s)], n);
    }
}

/// One background run.
pub fn collect(o: &Options, paths: &Paths) -> (Vec<Family>, Option<Error>) {
    // sd_booted(3): systemd is PID 1 exactly when this directory exists.
    let marker = paths.rootfs_path("run/systemd/system");
    if !marker.is_dir() {
        return (
            Vec::new(),
            Some(Error::Other(format!(
                "systemd is not running on this host (no {})",
                marker.display()
            ))),
        );
    }
    let flag = "collector.systemd.path";
    let show = |args: &[&str]| -> Result<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let what = format!("systemctl {}", args.join(" "));
        let stdout = background::run_ok(&o.path, &args, o.timeout, flag, &what)?;
        String::from_utf8(stdout).map_err(|_| Error::Other(format!("{what}: output is not UTF-8")))
    };
    let mut set = FamilySet::default();
    match show(&[
        "show",
        "--no-pager",
        "--property=Id,ActiveState,Type,LoadState",
        "*",
    ]) {
        Ok(text) => {
            let units = parse_show(&text);
            if units.is_empty() {
                return (
                    Vec::new(),
                    Some(Error::Other("systemctl show listed no units".into())),
                );
            }
            unit_families(&mut set, &units, o);
        }
        Err(e) => return (Vec::new(), Some(e)),
    }
    match show(&["show", "--no-pager", "--property=SystemState,Version"]) {
        Ok(text) => {
            for line in text.lines() {
                match line.split_once('=') {
                    Some(("SystemState", v)) => set
                        .family(
                            "node_systemd_system_running",
                            "Whether the system is operational (see 'systemctl is-system-running')",
                            Kind::Gauge,
                        )
                        .push(&[], if v == "running" { 1.0 } else { 0.0 }),
                    Some(("Version", v)) => {
                        let number = v
                            .split(|c: char| !c.is_ascii_digit())
                            .next()
                            .and_then(|n| n.parse::<f64>().ok())
                            .unwrap_or(0.0);
                        set.family(
                            "node_systemd_version",
                            "Detected systemd version",
                            Kind::Gauge,
                        )
                        .push(&[("version", v)], number)
                    }
                    _ => {}
                }
            }
        }
        Err(e) => return (set.into_vec(), Some(e)),
    }
    (set.into_vec(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_blocks_and_filters_like_node_exporter() {
        let text = "Type=notify\nId=nginx.service\nLoadState=loaded\nActiveState=active\n\n\
                    Id=backup.service\nType=oneshot\nLoadState=loaded\nActiveState=failed\n\n\
                    Id=dev-sda.device\nLoadState=loaded\nActiveState=active\n\n\
                    Id=gone.service\nLoadState=not-found\nActiveState=inactive\n";
        let units = parse_show(text);
        assert_eq!(units.len(), 4);
        let mut set = FamilySet::default();
        unit_families(&mut set, &units, &Options::default());
        let fams = set.into_vec();
        let state = &fams[0];
        // Two services x five states; the device unit is excluded, the not-found one skipped.
        assert_eq!(state.samples.len(), 10);
        let failed = state
            .samples
            .iter()
            .find(|s| {
                s.label("name") == Some("backup.service") && s.label("state") == Some("failed")
            })
            .unwrap();
        assert_eq!((failed.value, failed.label("type")), (1.0, Some("oneshot")));
        let units = &fams[1];
        let active = units
            .samples
            .iter()
            .find(|s| s.label("state") == Some("active"))
            .unwrap();
        assert_eq!(active.value, 2.0);
    }
}
