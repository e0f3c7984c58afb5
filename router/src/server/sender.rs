//! Hands the rule engine's alerts on: to the in-process dispatcher when the configuration has a
//! `route`, and to external Alertmanagers (Prometheus' `alerting` block) on their v2 API, for
//! teams moving over step by step. Firing alerts go again every minute, resolved ones once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::{Shared, now_ms, rfc3339};
use crate::alerting::{Alert, RESOLVED_RETENTION_MS, State};
use crate::provider;

const MS: i64 = 1_000_000;
use crate::rules::group::{GroupState, RuleState};

const RESEND_DELAY_MS: i64 = 60_000;

fn needs_sending(a: &Alert, now: i64) -> bool {
    match a.state {
        State::Pending => false,
        State::Inactive => a
            .resolved_at
            .is_some_and(|r| a.last_sent_at.is_none_or(|s| s < r)),
        State::Firing => a.last_sent_at.is_none_or(|s| now - s >= RESEND_DELAY_MS),
    }
}

pub async fn send(shared: &Arc<Shared>, group: &Arc<Mutex<GroupState>>) {
    let cfg = shared.config();
    let local = cfg.routing.is_some();
    if cfg.alertmanagers.is_empty() && !local {
        return;
    }
    let now = now_ms();
    let interval = cfg.evaluation_interval_ms.max(RESEND_DELAY_MS);
    let alerts: Vec<provider::Alert> = {
        let mut g = group.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for r in g.rules.iter_mut() {
            let RuleState::Alerting { rule, .. } = r else {
                continue;
            };
            let generator_url = format!(
                "{}/graph?g0.expr={}&g0.tab=1",
                shared.opts.external_url,
                gotmpl::url_encode(&rule.rule.expr_text)
            );
            for a in rule.active.values_mut() {
                if !needs_sending(a, now)
                    || a.resolved_at
                        .is_some_and(|r| now - r > RESOLVED_RETENTION_MS)
                {
                    continue;
                }
                out.push(provider::Alert {
                    labels: a
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    annotations: a
                        .annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    starts_at: a.active_at * MS,
                    ends_at: a.resolved_at.unwrap_or(now + 4 * interval) * MS,
                    updated_at: now * MS,
                    generator_url: generator_url.as_str().into(),
                    timeout: false,
                });
                a.last_sent_at = Some(now);
            }
        }
        out
    };
    if alerts.is_empty() {
        return;
    }
    if !cfg.alertmanagers.is_empty() {
        let payload: Vec<serde_json::Value> = alerts
            .iter()
            .map(|a| {
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at / MS),
                    "endsAt": rfc3339(a.ends_at / MS),
                    "generatorURL": a.generator_url,
                })
            })
            .collect();
        for am in &cfg.alertmanagers {
            let mut req = shared
                .client
                .post(&am.url)
                .json(&payload)
                .timeout(Duration::from_millis(am.timeout_ms.max(1) as u64));
            if let Some((u, p)) = &am.basic_auth {
                req = req.basic_auth(u, Some(p));
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(alertmanager = %am.url, status = %r.status(), "sending alerts failed")
                }
                Err(e) => {
                    tracing::warn!(alertmanager = %am.url, error = %e, "sending alerts failed")
                }
            }
        }
    }
    if local {
        // The in-process dispatcher, exactly as if they had been posted to /api/v2/alerts.
        let alerts = alerts
            .into_iter()
            .filter(|a| !a.labels.is_empty())
            .collect();
        if let Err(e) = shared.dispatcher.put(alerts).await {
            tracing::error!(error = %e, "storing rule alerts failed");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
