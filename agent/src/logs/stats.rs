//! The shipper's own metrics, `vigie_logs_*`, and the series the `metrics` stage defines.
//! Counters are plain atomics on the hot path; per-file and per-reason series sit behind locks
//! touched once per read chunk or per dropped entry, not per line.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vigie_exposition::{Family, Kind, Sample, Suffix};

#[derive(Debug, Default)]
pub struct Stats {
    pub lines_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub lines_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub retries: AtomicU64,
    pub requests: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_records: AtomicU64,
    /// Unix seconds ×1000 of the last push Loki acknowledged.
    pub last_push_ms: AtomicI64,
    pub files_active: AtomicU64,
    pub journal_lines: AtomicU64,
    /// Reading paused because the spool is full.
    pub backpressure: AtomicU64,
    pub dropped: Mutex<BTreeMap<String, (u64, u64)>>,
    /// path → (offset read, file size).
    pub files: Mutex<HashMap<Arc<str>, (u64, u64)>>,
    pub custom: Mutex<CustomMetrics>,
}

/// Series defined by `metrics` stages: name → (kind, help, buckets, series).
#[derive(Debug, Default)]
pub struct CustomMetrics {
    pub families: BTreeMap<String, CustomFamily>,
}

#[derive(Debug, Default)]
pub struct CustomFamily {
    pub kind: Option<Kind>,
    pub help: String,
    pub buckets: Vec<f64>,
    pub series: HashMap<Vec<(String, String)>, CustomSeries>,
    pub max_idle_secs: f64,
}

#[derive(Debug, Clone)]
pub struct CustomSeries {
    pub value: f64,
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
    pub touched: Instant,
}

/// Drop reasons of the shipper itself (not of a configured stage): too long for Loki, and
/// Loki's permanent refusals.
const ALWAYS_DROPPED: [&str; 4] = ["line_too_long", "rejected", "too_large", "undecodable"];

impl Stats {
    pub fn drop_lines(&self, reason: &str, lines: u64, bytes: u64) {
        let mut d = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        let e = d.entry(reason.to_string()).or_default();
        e.0 += lines;
        e.1 += bytes;
    }

    pub fn dropped_lines(&self, reason: &str) -> u64 {
        self.dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(reason)
            .map_or(0, |e| e.0)
    }

    pub fn families(&self) -> Vec<Family> {
        let c = |name: &str, help: &str, v: &AtomicU64| {
            Family::single(name, help, Kind::Counter, v.load(Ordering::Relaxed) as f64)
        };
        let g = |name: &str, help: &str, v: f64| Family::single(name, help, Kind::Gauge, v);
        let mut out = vec![
            c(
                "vigie_logs_read_lines_total",
                "Log lines read from files and the journal.",
                &self.lines_read,
            ),
            c(
                "vigie_logs_read_bytes_total",
                "Bytes of log lines read.",
                &self.bytes_read,
            ),
            c(
                "vigie_logs_sent_lines_total",
                "Log lines Loki acknowledged.",
                &self.lines_sent,
            ),
            c(
                "vigie_logs_sent_bytes_total",
                "Bytes of log lines Loki acknowledged.",
                &self.bytes_sent,
            ),
            c(
                "vigie_logs_push_retries_total",
                "Push requests retried after a 429, a 5xx or a connection error.",
                &self.retries,
            ),
            c(
                "vigie_logs_push_requests_total",
                "Push requests made.",
                &self.requests,
            ),
            c(
                "vigie_logs_journal_lines_total",
                "Entries read from the systemd journal.",
                &self.journal_lines,
            ),
            c(
                "vigie_logs_backpressure_total",
                "Times reading paused because the spool was full.",
                &self.backpressure,
            ),
            g(
                "vigie_logs_spool_bytes",
                "Bytes waiting in the on-disk spool for Loki to acknowledge them.",
                self.spool_bytes.load(Ordering::Relaxed) as f64,
            ),
            g(
                "vigie_logs_spool_batches",
                "Batches waiting in the on-disk spool.",
                self.spool_records.load(Ordering::Relaxed) as f64,
            ),
            g(
                "vigie_logs_last_push_success_timestamp_seconds",
                "When Loki last acknowledged a push, Unix seconds (0: never).",
                self.last_push_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            ),
            g(
                "vigie_logs_files_active",
                "Files being tailed.",
                self.files_active.load(Ordering::Relaxed) as f64,
            ),
        ];
        let mut lines = Family::new(
            "vigie_logs_dropped_lines_total",
            "Log lines dropped, by reason (a stage, or a permanent rejection by Loki).",
            Kind::Counter,
        );
        let mut bytes = Family::new(
            "vigie_logs_dropped_bytes_total",
            "Bytes of log lines dropped, by reason.",
            Kind::Counter,
        );
        // The shipper's own reasons are always there (at 0), so `increase()` in a rule or a
        // dashboard sees the first drop; stage reasons appear when a stage first drops.
        let mut dropped: BTreeMap<String, (u64, u64)> = ALWAYS_DROPPED
            .iter()
            .map(|r| (r.to_string(), (0, 0)))
            .collect();
        dropped.extend(
            self.dropped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(r, v)| (r.clone(), *v)),
        );
        for (reason, (l, b)) in &dropped {
            lines.push(&[("reason", reason)], *l as f64);
            bytes.push(&[("reason", reason)], *b as f64);
        }
        out.push(lines);
        out.push(bytes);
        let mut lag = Family::new(
            "vigie_logs_file_lag_bytes",
            "Bytes of a tailed file not read yet.",
            Kind::Gauge,
        );
        let mut read = Family::new(
            "vigie_logs_file_read_bytes",
            "Offset read in a tailed file.",
            Kind::Gauge,
        );
        for (path, (off, size)) in self.files.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lag.push(&[("path", path)], size.saturating_sub(*off) as f64);
            read.push(&[("path", path)], *off as f64);
        }
        out.push(lag);
        out.push(read);
        out.extend(
            self.custom
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .families(),
        );
        out
    }
}

impl CustomMetrics {
    fn families(&mut self) -> Vec<Family> {
        let now = Instant::now();
        let mut out = Vec::new();
        for (name, f) in &mut self.families {
            let Some(kind) = f.kind else { continue };
            if f.max_idle_secs > 0.0 {
                let idle = f.max_idle_secs;
                f.series
                    .retain(|_, s| now.duration_since(s.touched).as_secs_f64() <= idle);
            }
            let mut fam = Family::new(name.clone(), f.help.clone(), kind);
            for (labels, s) in &f.series {
                let base: vigie_exposition::model::Labels = labels
                    .iter()
                    .map(|(n, v)| (std::borrow::Cow::Owned(n.clone()), v.clone()))
                    .collect();
                if kind == Kind::Histogram {
                    let mut cumulative = 0;
                    for (i, le) in f.buckets.iter().chain([&f64::INFINITY]).enumerate() {
                        cumulative += s.counts.get(i).copied().unwrap_or(0);
                        let mut l = base.clone();
                        l.push((
                            std::borrow::Cow::Borrowed("le"),
                            vigie_exposition::float::go_string(*le),
                        ));
                        let mut sample = Sample::new(l, cumulative as f64);
                        sample.suffix = Suffix::Bucket;
                        fam.samples.push(sample);
                    }
                    let mut sum = Sample::new(base.clone(), s.sum);
                    sum.suffix = Suffix::Sum;
                    fam.samples.push(sum);
                    let mut count = Sample::new(base, s.count as f64);
                    count.suffix = Suffix::Count;
                    fam.samples.push(count);
                } else {
                    fam.samples.push(Sample::new(base, s.value));
                }
            }
            out.push(fam);
        }
        out
    }
}
