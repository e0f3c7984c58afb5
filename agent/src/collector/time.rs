//! `node_time_seconds`, the time zone offset, and the clocksources from sysfs.

use std::time::{SystemTime, UNIX_EPOCH};

use vigie_exposition::{Family, Kind};

use super::{Collector, Result, dir_names, gauge, read_attr};
use crate::paths::Paths;

pub struct Time {
    paths: Paths,
}

impl Time {
    pub fn new(o: &super::Options) -> Time {
        Time {
            paths: o.paths.clone(),
        }
    }
}

/// The local time zone's abbreviation and offset from UTC in seconds, from the C library.
pub fn local_zone(now: i64) -> (String, i64) {
    let t: libc::time_t = now as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills; tm_zone points into static C library storage.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return ("UTC".into(), 0);
        }
        let name = if tm.tm_zone.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        (name, tm.tm_gmtoff)
    }
}

impl Collector for Time {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        out.push(gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            now.as_secs_f64(),
        ));
        let (zone, offset) = local_zone(now.as_secs() as i64);
        out.push(
            Family::new(
                "node_time_zone_offset_seconds",
                "System time zone offset in seconds.",
                Kind::Gauge,
            )
            .with(&[("time_zone", &zone)], offset as f64),
        );
        let base = self.paths.sys("devices/system/clocksource");
        let mut available = Family::new(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
        );
        let mut current = Family::new(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
        );
        for name in dir_names(&base).unwrap_or_default() {
            let Some(device) = name.strip_prefix("clocksource") else {
                continue;
            };
            let dir = base.join(&name);
            for cs in read_attr(&dir.join("available_clocksource"))
                .unwrap_or_default()
                .split_ascii_whitespace()
            {
                available.push(&[("clocksource", cs), ("device", device)], 1.0);
            }
            if let Some(cs) = read_attr(&dir.join("current_clocksource")) {
                current.push(&[("clocksource", &cs), ("device", device)], 1.0);
            }
        }
        out.extend([available, current]);
        Ok(())
    }
}
