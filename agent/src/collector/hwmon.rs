//! `node_hwmon_*` from /sys/class/hwmon, named as node_exporter 1.5 names them: chip from the
//! device path, sensor from the file name, units from the sensor type.

use std::collections::BTreeMap;
use std::path::Path;

use vigie_exposition::{Family, Kind};

use super::{Collector, Error, FamilySet, Result, class_dir_names, dir_names};
use crate::paths::Paths;

const SENSOR_TYPES: &[&str] = &[
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

pub struct Hwmon {
    paths: Paths,
}

impl Hwmon {
    pub fn new(o: &super::Options) -> Hwmon {
        Hwmon {
            paths: o.paths.clone(),
        }
    }
}

fn clean_name(s: &str) -> String {
    let lower = s.trim_end_matches('\n').to_lowercase();
    let replaced: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    replaced.trim_matches('_').to_string()
}

/// Splits `temp1_input` into (`temp`, 1, `input`) like Go's `^([^0-9]+)([0-9]*)(_(.+))?$`:
/// the type runs up to the first digit, so `beep_enable` is a type of its own.
fn explode(file: &str) -> Option<(&str, Option<u32>, &str)> {
    let type_end = file
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(file.len());
    let (kind, rest) = file.split_at(type_end);
    if kind.is_empty() {
        return None;
    }
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (num, prop) = rest.split_at(digits_end);
    let num = if num.is_empty() {
        None
    } else {
        Some(num.parse().ok()?)
    };
    match prop {
        "" => Some((kind, num, "")),
        p if p.len() > 1 && p.starts_with('_') => Some((kind, num, &p[1..])),
        _ => None,
    }
}

fn collect_sensor_data(
    dir: &Path,
    data: &mut BTreeMap<String, BTreeMap<String, String>>,
) -> std::io::Result<()> {
    for name in dir_names(dir)? {
        let Some((kind, num, prop)) = explode(&name) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&kind) {
            continue;
        }
        let Ok(raw) = std::fs::read_to_string(dir.join(&name)) else {
            continue;
        };
        let sensor = format!("{kind}{}", num.unwrap_or(0));
        data.entry(sensor)
            .or_default()
            .insert(prop.to_string(), raw.trim_end_matches('\n').to_string());
    }
    Ok(())
}

fn chip_name(dir: &Path) -> Option<String> {
    if let Ok(device) = std::fs::canonicalize(dir.join("device")) {
        let dev_name = device
            .file_name()
            .map(|n| clean_name(&n.to_string_lossy()))
            .unwrap_or_default();
        let dev_type = device
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| clean_name(&n.to_string_lossy()))
            .unwrap_or_default();
        if !dev_type.is_empty() && !dev_name.is_empty() {
            return Some(format!("{dev_type}_{dev_name}"));
        }
        if !dev_name.is_empty() {
            return Some(dev_name);
        }
    }
    if let Ok(name) = std::fs::read_to_string(dir.join("name")) {
        let clean = clean_name(&name);
        if !clean.is_empty() {
            return Some(clean);
        }
    }
    let real = std::fs::canonicalize(dir).ok()?;
    let clean = clean_name(&real.file_name()?.to_string_lossy());
    (!clean.is_empty()).then_some(clean)
}

fn update_chip(dir: &Path, set: &mut FamilySet) -> Result<()> {
    let chip = chip_name(dir).ok_or_else(|| {
        Error::Other(format!(
            "could not derive a chip name for {}",
            dir.display()
        ))
    })?;
    let mut data = BTreeMap::new();
    collect_sensor_data(dir, &mut data).map_err(|e| Error::io(dir, e))?;
    let device = dir.join("device");
    if device.is_dir() {
        collect_sensor_data(&device, &mut data).map_err(|e| Error::io(&device, e))?;
    }
    if let Ok(name) = std::fs::read_to_string(dir.join("name")) {
        let human = clean_name(&name);
        if !human.is_empty() {
            set.family(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
                Kind::Gauge,
            )
            .push(&[("chip", &chip), ("chip_name", &human)], 1.0);
        }
    }
    for (sensor, props) in &data {
        let Some((kind, _, _)) = explode(sensor) else {
            continue;
        };
        let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
        if let Some(label) = props.get("label") {
            set.family(
                "node_hwmon_sensor_label",
                "Label for given chip and sensor",
                Kind::Gauge,
            )
            .push(
                &[("chip", &chip), ("label", label.trim()), ("sensor", sensor)],
                1.0,
            );
        }
        let raw = props.get("").map(String::as_str);
        match kind {
            "beep_enable" => {
                let v = if raw == Some("1") { 1.0 } else { 0.0 };
                set.family(
                    "node_hwmon_beep_enabled",
                    "Hardware beep enabled",
                    Kind::Gauge,
                )
                .push(&labels, v);
                continue;
            }
            "vrm" => {
                if let Some(v) = raw.and_then(|r| r.parse::<f64>().ok()) {
                    set.family(
                        "node_hwmon_voltage_regulator_version",
                        "Hardware voltage regulator",
                        Kind::Gauge,
                    )
                    .push(&labels, v);
                }
                continue;
            }
            "update_interval" => {
                if let Some(v) = raw.and_then(|r| r.parse::<f64>().ok()) {
                    set.family(
                        "node_hwmon_update_interval_seconds",
                        "Hardware monitor update interval",
                        Kind::Gauge,
                    )
                    .push(&labels, v * 0.001);
                }
                continue;
            }
            _ => {}
        }
        let prefix = format!("node_hwmon_{kind}");
        for (element, value) in props {
            if element == "label" {
                continue;
            }
            let mut name = prefix.clone();
            if element == "input" {
                // `input` is the value itself, unless the sensor also has a bare value file.
                if props.contains_key("") {
                    name.push_str("_input");
                }
            } else if !element.is_empty() {
                name.push('_');
                name.push_str(&clean_name(element));
            }
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            let (name, help, kind, v) = match (kind, element.as_str()) {
                (_, "fault" | "alarm") => (
                    name,
                    format!("Hardware sensor {element} status ({kind})"),
                    Kind::Gauge,
                    v,
                ),
                (_, "beep") => (
                    format!("{name}_enabled"),
                    "Hardware monitor sensor has beeping enabled".into(),
                    Kind::Gauge,
                    v,
                ),
                ("in" | "cpu", _) => (
                    format!("{name}_volts"),
                    format!("Hardware monitor for voltage ({element})"),
                    Kind::Gauge,
                    v * 0.001,
                ),
                ("temp", e) if e != "type" => (
                    format!("{name}_celsius"),
                    format!("Hardware monitor for temperature ({element})"),
                    Kind::Gauge,
                    v * 0.001,
                ),
                ("curr", _) => (
                    format!("{name}_amps"),
                    format!("Hardware monitor for current ({element})"),
                    Kind::Gauge,
                    v * 0.001,
                ),
                ("energy", _) => (
                    format!("{name}_joule_total"),
                    format!("Hardware monitor for joules used so far ({element})"),
                    Kind::Counter,
                    v / 1e6,
                ),
                ("power", "accuracy") => (
                    name,
                    "Hardware monitor power meter accuracy, as a ratio".into(),
                    Kind::Gauge,
                    v / 1e6,
                ),
                ("power", "average_interval" | "average_interval_min" | "average_interval_max") => {
                    (
                        format!("{name}_seconds"),
                        format!("Hardware monitor power usage update interval ({element})"),
                        Kind::Gauge,
                        v * 0.001,
                    )
                }
                ("power", _) => (
                    format!("{name}_watt"),
                    format!("Hardware monitor for power usage in watts ({element})"),
                    Kind::Gauge,
                    v / 1e6,
                ),
                ("humidity", _) => (
                    name,
                    format!(
                        "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({element})"
                    ),
                    Kind::Gauge,
                    v / 1e6,
                ),
                ("fan", "input" | "min" | "max" | "target") => (
                    format!("{name}_rpm"),
                    format!("Hardware monitor for fan revolutions per minute ({element})"),
                    Kind::Gauge,
                    v,
                ),
                ("freq", _) => (
                    format!("{name}_freq_mhz"),
                    format!("Hardware monitor for GPU frequency in MHz ({element})"),
                    Kind::Gauge,
                    v / 1e6,
                ),
                _ => (
                    name,
                    format!("Hardware monitor {kind} element {element}"),
                    Kind::Gauge,
                    v,
                ),
            };
            set.family(&name, &help, kind).push(&labels, v);
        }
    }
    Ok(())
}

impl Collector for Hwmon {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let base = self.paths.sys("class/hwmon");
        let names = class_dir_names(&base)?;
        let mut set = FamilySet::default();
        let mut last_err = None;
        for name in names {
            let dir = base.join(&name);
            if !dir.is_dir() {
                continue;
            }
            if let Err(e) = update_chip(&dir, &mut set) {
                last_err = Some(e);
            }
        }
        out.extend(set.into_vec());
        last_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explodes_sensor_file_names() {
        assert_eq!(explode("temp1_input"), Some(("temp", Some(1), "input")));
        assert_eq!(explode("fan2"), Some(("fan", Some(2), "")));
        assert_eq!(explode("beep_enable"), Some(("beep_enable", None, "")));
        assert_eq!(explode("temp1x"), None);
        assert_eq!(
            explode("in0_crit_alarm"),
            Some(("in", Some(0), "crit_alarm"))
        );
        assert_eq!(explode("name"), Some(("name", None, "")));
        assert_eq!(clean_name("Core 0\n"), "core_0");
        assert_eq!(clean_name("platform"), "platform");
    }
}
