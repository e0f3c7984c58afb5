//! The embedded store's scraper: one loop per target, Prometheus' scrape semantics — target
//! labels attached (`exported_` prefix on conflicts unless `honor_labels`), `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`, and staleness markers for series that
//! vanish or whose target goes down.

use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_promql::hash::HashSet;

use vigie_exposition::parse::parse_flat;
use vigie_promql::{Labels, METRIC_NAME, stale_nan};

use super::Shared;
use crate::config::Target;

const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

/// Health of a target for `/api/v1/targets`.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub up: bool,
    pub last_error: String,
    pub last_scrape_ms: i64,
    pub last_duration_s: f64,
    pub samples: usize,
}

/// Fetches and parses one scrape.
async fn fetch(
    client: &reqwest::Client,
    t: &Target,
) -> Result<Vec<vigie_exposition::parse::FlatSample>, String> {
    let mut req = client
        .get(&t.url)
        .header("Accept", ACCEPT)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", t.timeout_ms as f64 / 1000.0),
        )
        .timeout(Duration::from_millis(t.timeout_ms.max(1) as u64));
    if let Some((u, p)) = &t.basic_auth {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let openmetrics = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/openmetrics-text"));
    let body = resp.text().await.map_err(|e| e.to_string())?;
    parse_flat(&body, openmetrics).map_err(|e| format!("line {}: {}", e.line, e.message))
}

/// A scraped sample's labels with the target's attached.
fn with_target_labels(name: &str, scraped: Vec<(String, String)>, t: &Target) -> Labels {
    let mut l = Labels::new();
    l.set(METRIC_NAME, name.to_string());
    for (k, v) in scraped {
        l.set(&k, v);
    }
    for (k, v) in &t.labels {
        if t.honor_labels {
            if !l.has(k) {
                l.set(k, v.clone());
            }
        } else {
            let existing = l.get(k).to_string();
            if !existing.is_empty() {
                l.set(&format!("exported_{k}"), existing);
            }
            l.set(k, v.clone());
        }
    }
    l
}

fn target_series(t: &Target, name: &str) -> Labels {
    let mut l = Labels::from_pairs(t.labels.clone());
    l.set(METRIC_NAME, name.to_string());
    l
}

/// Scrapes `t` every interval until the task is aborted.
pub async fn run(shared: Arc<Shared>, client: reqwest::Client, t: Target) {
    let interval = t.interval_ms.max(1);
    // Spread targets over the interval, the same offset every time.
    let offset = (fnv(&t.url) % interval as u64) as i64;
    let mut previous: HashSet<Labels> = HashSet::default();
    loop {
        let now = super::now_ms();
        let next = (now - offset).div_euclid(interval) * interval + interval + offset;
        tokio::time::sleep(Duration::from_millis((next - now).max(0) as u64)).await;
        // The scheduled time, not the moment the task woke: regular timestamps compress best.
        let ts = next;
        let started = Instant::now();
        let result = fetch(&client, &t).await;
        let duration = started.elapsed().as_secs_f64();
        let mut current: HashSet<Labels> = HashSet::default();
        let (up, error, scraped) = match result {
            Ok(samples) => {
                let n = samples.len();
                let mut batch = Vec::with_capacity(n);
                for (name, labels, v, own_ts) in samples {
                    let l = with_target_labels(&name, labels, &t);
                    let at = if t.honor_timestamps {
                        own_ts.unwrap_or(ts)
                    } else {
                        ts
                    };
                    current.insert(l.clone());
                    batch.push((l, at, v));
                }
                let mut store = shared.store_write();
                for (l, at, v) in &batch {
                    store.append(l, *at, *v);
                }
                (1.0, String::new(), n)
            }
            Err(e) => (0.0, e, 0),
        };
        {
            let mut store = shared.store_write();
            for gone in previous.difference(&current) {
                store.append(gone, ts, stale_nan());
            }
            store.append(&target_series(&t, "up"), ts, up);
            store.append(&target_series(&t, "scrape_duration_seconds"), ts, duration);
            store.append(
                &target_series(&t, "scrape_samples_scraped"),
                ts,
                scraped as f64,
            );
            store.append(
                &target_series(&t, "scrape_samples_post_metric_relabeling"),
                ts,
                scraped as f64,
            );
            store.append(
                &target_series(&t, "scrape_series_added"),
                ts,
                current.difference(&previous).count() as f64,
            );
        }
        previous = current;
        shared.set_health(
            &t.url,
            Health {
                up: up == 1.0,
                last_error: error,
                last_scrape_ms: ts,
                last_duration_s: duration,
                samples: scraped,
            },
        );
    }
}

/// FNV-1a, a stable hash for spreading schedules.
pub fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
