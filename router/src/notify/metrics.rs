//! Delivery figures per integration and receiver: `vigie_notifications_total`,
//! `vigie_notifications_failed_total{reason}` and `vigie_notification_latency_seconds` (the
//! whole delivery, retries included), plus Alertmanager's two counters for its dashboards.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use vigie_exposition::{Family, Kind, Sample, Suffix};

use super::Delivery;

const BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0];

#[derive(Debug, Default, Clone)]
struct Counters {
    total: u64,
    failed: BTreeMap<&'static str, u64>,
    /// Cumulative counts per bucket of `BUCKETS`, then the sum.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    by: Mutex<BTreeMap<(&'static str, String), Counters>>,
}

impl Metrics {
    /// Every configured integration and receiver starts at zero for every reason, as
    /// Alertmanager initialises its counters: `rate()` and `increase()` see the first failure,
    /// and dashboards and rules find the series before anything has gone wrong.
    pub fn initialize(&self, receivers: &BTreeMap<String, super::Receiver>) {
        let mut by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        for (name, r) in receivers {
            for i in &r.integrations {
                let c = by.entry((i.name, name.clone())).or_default();
                for reason in super::Reason::ALL {
                    c.failed.entry(reason.as_str()).or_default();
                }
            }
        }
    }

    pub fn record(&self, integration: &'static str, receiver: &str, d: &Delivery, took: Duration) {
        let mut by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        let c = by.entry((integration, receiver.to_string())).or_default();
        c.total += 1;
        if let Some((reason, _)) = &d.failure {
            *c.failed.entry(reason.as_str()).or_default() += 1;
        }
        for reason in super::Reason::ALL {
            c.failed.entry(reason.as_str()).or_default();
        }
        let s = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                c.buckets[i] += 1;
            }
        }
        c.count += 1;
        c.sum += s;
    }

    /// Deliveries and failures per integration (Alertmanager's `integration` label only).
    pub fn per_integration(&self) -> BTreeMap<&'static str, (u64, u64)> {
        let by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for ((i, _), c) in by.iter() {
            let e = out.entry(*i).or_default();
            e.0 += c.total;
            e.1 += c
                .failed
                .iter()
                .filter(|(r, _)| **r != "partial")
                .map(|(_, n)| n)
                .sum::<u64>();
        }
        out
    }

    pub fn families(&self) -> Vec<Family> {
        let by = self.by.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut total = Family::new(
            "vigie_notifications_total",
            "Notifications attempted (each one counted once, whatever its retries).",
            Kind::Counter,
        );
        let mut failed = Family::new(
            "vigie_notifications_failed_total",
            "Notifications not delivered, or delivered to some recipients only (reason=\"partial\").",
            Kind::Counter,
        );
        let mut latency = Family::new(
            "vigie_notification_latency_seconds",
            "Time to deliver a notification, retries included.",
            Kind::Histogram,
        );
        for ((integration, receiver), c) in &by {
            let l = [
                ("integration", *integration),
                ("receiver", receiver.as_str()),
            ];
            total.push(&l, c.total as f64);
            for (reason, n) in &c.failed {
                failed.push(
                    &[
                        ("integration", integration),
                        ("receiver", receiver),
                        ("reason", reason),
                    ],
                    *n as f64,
                );
            }
            let base: Vec<(Cow<'static, str>, String)> = l
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), v.to_string()))
                .collect();
            let sample = |suffix, extra: Option<String>, v: f64| {
                let mut labels = base.clone();
                if let Some(le) = extra {
                    labels.push((Cow::Borrowed("le"), le));
                }
                Sample {
                    suffix,
                    labels,
                    value: v,
                    timestamp_ms: None,
                }
            };
            for (i, b) in BUCKETS.iter().enumerate() {
                latency.samples.push(sample(
                    Suffix::Bucket,
                    Some(vigie_exposition::float::go_string(*b)),
                    c.buckets[i] as f64,
                ));
            }
            latency
                .samples
                .push(sample(Suffix::Bucket, Some("+Inf".into()), c.count as f64));
            latency.samples.push(sample(Suffix::Sum, None, c.sum));
            latency
                .samples
                .push(sample(Suffix::Count, None, c.count as f64));
        }
        vec![total, failed, latency]
    }
}
