//! `node_thermal_zone_temp` and `node_cooling_device_*` from /sys/class/thermal.

use vigie_exposition::{Family, Kind};

use super::{Collector, Result, class_dir_names, read_attr};
use crate::paths::Paths;

pub struct ThermalZone {
    paths: Paths,
}

impl ThermalZone {
    pub fn new(o: &super::Options) -> ThermalZone {
        ThermalZone {
            paths: o.paths.clone(),
        }
    }
}

impl Collector for ThermalZone {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let base = self.paths.sys("class/thermal");
        let names = class_dir_names(&base)?;
        let mut temp = Family::new(
            "node_thermal_zone_temp",
            "Zone temperature in Celsius",
            Kind::Gauge,
        );
        let mut cur = Family::new(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
            Kind::Gauge,
        );
        let mut max = Family::new(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
            Kind::Gauge,
        );
        for name in &names {
            let dir = base.join(name);
            let attr = |f: &str| read_attr(&dir.join(f));
            if let Some(zone) = name.strip_prefix("thermal_zone") {
                // A zone whose sensor does not answer (EAGAIN, ENODATA) is skipped, as upstream does.
                let (Some(kind), Some(t)) = (
                    attr("type"),
                    attr("temp").and_then(|t| t.parse::<i64>().ok()),
                ) else {
                    continue;
                };
                temp.push(&[("type", &kind), ("zone", zone)], t as f64 / 1000.0);
            } else if let Some(dev) = name.strip_prefix("cooling_device") {
                let Some(kind) = attr("type") else { continue };
                let (Some(c), Some(m)) = (
                    attr("cur_state").and_then(|v| v.parse::<i64>().ok()),
                    attr("max_state").and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    continue;
                };
                cur.push(&[("name", dev), ("type", &kind)], c as f64);
                max.push(&[("name", dev), ("type", &kind)], m as f64);
            }
        }
        out.extend([temp, cur, max]);
        Ok(())
    }
}
