//! Receivers and their integrations, the notification data every integration renders (the
//! webhook body is exactly Alertmanager's `template.Data`), and the retry loop: an integration
//! reports sent, retry (after a delay it may name), or permanent failure.

pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::amconfig::RawWebhook;
use crate::labelset::LabelSet;
use crate::provider::{Alert, fingerprint_hex, format_time};

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub integrations: Vec<Integration>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Webhook(Arc<webhook::Webhook>),
    /// Records notifications in memory: timeline tests on a paused clock.
    #[cfg(test)]
    Capture(Arc<std::sync::Mutex<Vec<Data>>>),
}

#[derive(Debug, Clone)]
pub struct Integration {
    /// Alertmanager's integration name (`webhook`), part of the notification-log key.
    pub name: &'static str,
    /// Position among the receiver's integrations of that kind.
    pub idx: usize,
    pub send_resolved: bool,
    pub kind: Kind,
}

impl Integration {
    pub fn webhook(idx: usize, raw: &RawWebhook, hook: webhook::Webhook) -> Integration {
        Integration {
            name: "webhook",
            idx,
            send_resolved: raw.send_resolved.unwrap_or(true),
            kind: Kind::Webhook(Arc::new(hook)),
        }
    }

    pub async fn notify(&self, data: &Data) -> Outcome {
        match &self.kind {
            Kind::Webhook(w) => w.notify(data).await,
            #[cfg(test)]
            Kind::Capture(c) => {
                c.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(data.clone());
                Outcome::Sent
            }
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent,
    /// Worth trying again, after the given delay if the receiver named one (`Retry-After`).
    Retry(String, Option<Duration>),
    Failed(String),
}

/// One alert as notifications show it.
#[derive(Debug, Clone, Serialize)]
pub struct DataAlert {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// Alertmanager's notification data model, field for field.
#[derive(Debug, Clone, Serialize)]
pub struct Data {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<DataAlert>,
    #[serde(rename = "groupLabels")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    #[serde(skip)]
    pub group_key: String,
}

impl Data {
    /// `alerts` carry `ends_at == 0` while firing (the flush clears ends in the future).
    pub fn new(
        receiver: &str,
        group_key: &str,
        group_labels: &BTreeMap<String, String>,
        alerts: &[Arc<Alert>],
        external_url: &str,
    ) -> Data {
        let firing = alerts.iter().any(|a| a.ends_at == 0);
        let common = |get: fn(&Alert) -> &LabelSet| {
            let mut out = alerts.first().map(|a| get(a).to_map()).unwrap_or_default();
            for a in alerts.iter().skip(1) {
                out.retain(|k, v| get(a).get(k) == Some(v.as_str()));
            }
            out
        };
        Data {
            receiver: receiver.to_string(),
            status: if firing { "firing" } else { "resolved" },
            alerts: alerts
                .iter()
                .map(|a| DataAlert {
                    status: if a.ends_at == 0 { "firing" } else { "resolved" },
                    labels: a.labels.to_map(),
                    annotations: a.annotations.to_map(),
                    starts_at: format_time(a.starts_at),
                    ends_at: format_time(a.ends_at),
                    generator_url: a.generator_url.to_string(),
                    fingerprint: fingerprint_hex(a.fingerprint()),
                })
                .collect(),
            group_labels: group_labels.clone(),
            common_labels: common(|a| &a.labels),
            common_annotations: common(|a| &a.annotations),
            external_url: external_url.to_string(),
            group_key: group_key.to_string(),
        }
    }
}

/// Tries an integration until it succeeds, fails for good, or the deadline passes: Alertmanager's
/// exponential back-off (0.5 s × 1.5ⁿ, ±50 % jitter, at most 60 s between tries).
pub async fn send_with_retry(
    integration: &Integration,
    data: &Data,
    deadline: tokio::time::Instant,
) -> Result<u32, String> {
    let mut attempt: u32 = 0;
    let mut backoff = 0.5_f64;
    loop {
        attempt += 1;
        let outcome = tokio::time::timeout_at(deadline, integration.notify(data)).await;
        let (reason, after) = match outcome {
            Err(_) => {
                return Err(format!(
                    "{}: deadline passed after {attempt} attempts",
                    integration.name
                ));
            }
            Ok(Outcome::Sent) => return Ok(attempt),
            Ok(Outcome::Failed(e)) => {
                return Err(format!(
                    "{}/{}: notify retry canceled due to unrecoverable error after {attempt} attempts: {e}",
                    integration.name, integration.idx
                ));
            }
            Ok(Outcome::Retry(e, after)) => (e, after),
        };
        let wait = after.unwrap_or_else(|| {
            let jitter = 0.5 + jitter_unit();
            Duration::from_secs_f64((backoff * jitter).min(60.0))
        });
        backoff = (backoff * 1.5).min(60.0);
        if tokio::time::Instant::now() + wait >= deadline {
            return Err(format!(
                "{}/{}: notify failed after {attempt} attempts: {reason}",
                integration.name, integration.idx
            ));
        }
        tracing::debug!(integration = integration.name, error = %reason, ?wait, "notify attempt failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

/// A number in [0, 1) that differs between calls; jitter needs nothing better.
fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
