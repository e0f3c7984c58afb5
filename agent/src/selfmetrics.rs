//! The agent's own health under `vigie_`: build, process CPU and memory, scrapes served.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigie_exposition::{Family, Kind, Sample, Suffix};

use crate::paths::{SELF_FD, SELF_STAT};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct SelfMetrics {
    start_time: f64,
    ticks: f64,
    page_size: f64,
    scrapes: AtomicU64,
    scrape_seconds: Mutex<f64>,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        SelfMetrics::new()
    }
}

impl SelfMetrics {
    pub fn new() -> SelfMetrics {
        use nix::unistd::{SysconfVar, sysconf};
        SelfMetrics {
            start_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
            ticks: sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64,
            page_size: sysconf(SysconfVar::PAGE_SIZE)
                .ok()
                .flatten()
                .unwrap_or(4096) as f64,
            scrapes: AtomicU64::new(0),
            scrape_seconds: Mutex::new(0.0),
        }
    }

    pub fn observe_scrape(&self, took: Duration) {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        *self
            .scrape_seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner()) += took.as_secs_f64();
    }

    pub fn families(&self) -> Vec<Family> {
        let mut out = vec![
            Family::new(
                "vigie_agent_build_info",
                "A metric with a constant '1' value labeled by the version of vigie-agent.",
                Kind::Gauge,
            )
            .with(
                &[
                    ("version", VERSION),
                    (
                        "revision",
                        option_env!("VIGIE_REVISION").unwrap_or("unknown"),
                    ),
                ],
                1.0,
            ),
            Family::single(
                "vigie_process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Kind::Gauge,
                self.start_time,
            ),
            Family::single(
                "vigie_agent_scrapes_total",
                "Scrapes of the metrics endpoint served.",
                Kind::Counter,
                self.scrapes.load(Ordering::Relaxed) as f64,
            ),
        ];
        let mut duration = Family::new(
            "vigie_agent_scrape_duration_seconds",
            "Time spent serving scrapes of the metrics endpoint.",
            Kind::Summary,
        );
        duration.samples = vec![
            Sample {
                suffix: Suffix::Sum,
                labels: vec![],
                value: *self
                    .scrape_seconds
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
                timestamp_ms: None,
            },
            Sample {
                suffix: Suffix::Count,
                labels: vec![],
                value: self.scrapes.load(Ordering::Relaxed) as f64,
                timestamp_ms: None,
            },
        ];
        out.push(duration);
        if let Ok(stat) = std::fs::read_to_string(SELF_STAT) {
            // Fields after the command name (which may contain spaces) start at state, field 3.
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
                let f: Vec<&str> = rest.split_ascii_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                out.push(Family::single(
                    "vigie_process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    Kind::Counter,
                    (num(11) + num(12)) / self.ticks,
                ));
                out.push(Family::single(
                    "vigie_process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    Kind::Gauge,
                    num(20),
                ));
                out.push(Family::single(
                    "vigie_process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    Kind::Gauge,
                    num(21) * self.page_size,
                ));
            }
        }
        if let Ok(fds) = std::fs::read_dir(SELF_FD) {
            out.push(Family::single(
                "vigie_process_open_fds",
                "Number of open file descriptors.",
                Kind::Gauge,
                fds.count() as f64,
            ));
        }
        out
    }
}
