//! `node_cpu_frequency_*` and `node_cpu_scaling_*` from /sys/devices/system/cpu/cpuN/cpufreq
//! (kHz in sysfs, Hz exported).

use vigie_exposition::{Family, Kind};

use super::{Collector, FamilySet, Result, cpu_number, dir_names, read_attr};
use crate::paths::Paths;

const FILES: &[(&str, &str, &str)] = &[
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current CPU thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum CPU thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum CPU thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

pub struct Cpufreq {
    paths: Paths,
}

impl Cpufreq {
    pub fn new(o: &super::Options) -> Cpufreq {
        Cpufreq {
            paths: o.paths.clone(),
        }
    }
}

impl Collector for Cpufreq {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let base = self.paths.sys("devices/system/cpu");
        let mut set = FamilySet::default();
        for name in dir_names(&base).unwrap_or_default() {
            let Some(cpu) = cpu_number(&name) else {
                continue;
            };
            let dir = base.join(&name).join("cpufreq");
            if !dir.is_dir() {
                continue;
            }
            for (file, metric, help) in FILES {
                if let Some(khz) = read_attr(&dir.join(file)).and_then(|v| v.parse::<f64>().ok()) {
                    set.family(metric, help, Kind::Gauge)
                        .push(&[("cpu", cpu)], khz * 1000.0);
                }
            }
            if let Some(governor) = read_attr(&dir.join("scaling_governor")) {
                let available = read_attr(&dir.join("scaling_available_governors"))
                    .unwrap_or_else(|| governor.clone());
                for g in available.split_ascii_whitespace() {
                    set.family(
                        "node_cpu_scaling_governor",
                        "Current enabled CPU frequency governor.",
                        Kind::Gauge,
                    )
                    .push(
                        &[("cpu", cpu), ("governor", g)],
                        if g == governor { 1.0 } else { 0.0 },
                    );
                }
            }
        }
        out.extend(set.into_vec());
        Ok(())
    }
}
