//! Sends alerts to external Alertmanagers (Prometheus' `alerting` block) on their v2 API, for
//! teams moving over step by step: firing alerts again every minute, resolved ones once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::{Shared, now_ms, rfc3339};
use crate::alerting::{Alert, RESOLVED_RETENTION_MS, State};
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
    if cfg.alertmanagers.is_empty() {
        return;
    }
    let now = now_ms();
    let interval = cfg.evaluation_interval_ms.max(RESEND_DELAY_MS);
    let payload: Vec<serde_json::Value> = {
        let mut g = group.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for r in g.rules.iter_mut() {
            let RuleState::Alerting { rule, .. } = r else {
                continue;
            };
            let expr = rule.rule.expr_text.clone();
            for a in rule.active.values_mut() {
                if !needs_sending(a, now)
                    || a.resolved_at
                        .is_some_and(|r| now - r > RESOLVED_RETENTION_MS)
                {
                    continue;
                }
                let ends = a.resolved_at.unwrap_or(now + 4 * interval);
                let labels: serde_json::Map<String, serde_json::Value> = a
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                let annotations: serde_json::Map<String, serde_json::Value> = a
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                out.push(json!({
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": rfc3339(a.active_at),
                    "endsAt": rfc3339(ends),
                    "generatorURL": format!("{}/graph?g0.expr={}&g0.tab=1", shared.opts.external_url, gotmpl::url_encode(&expr)),
                }));
                a.last_sent_at = Some(now);
            }
        }
        out
    };
    if payload.is_empty() {
        return;
    }
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
            Err(e) => tracing::warn!(alertmanager = %am.url, error = %e, "sending alerts failed"),
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
