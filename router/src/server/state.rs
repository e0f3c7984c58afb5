//! Alert state on disk (`--storage.path`/alerts.json): written after evaluations and at
//! shutdown, read at start, so a rule with `for: 7d` does not start from zero after a restart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigie_promql::Labels;

use super::Shared;
use crate::alerting::{Alert, State};
use crate::rules::group::RuleState;

#[derive(Serialize, Deserialize)]
struct SavedAlert {
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    state: String,
    value: f64,
    active_at: i64,
    fired_at: Option<i64>,
    resolved_at: Option<i64>,
    keep_firing_since: Option<i64>,
    last_sent_at: Option<i64>,
}

/// `file;group` → rule name → alerts.
type Saved = BTreeMap<String, BTreeMap<String, Vec<SavedAlert>>>;

const FILE: &str = "alerts.json";

pub fn save(shared: &Shared) {
    let mut saved: Saved = BTreeMap::new();
    for g in shared.groups() {
        let g = g.lock().unwrap_or_else(|p| p.into_inner());
        let key = g.group.key();
        for r in &g.rules {
            if let RuleState::Alerting { rule, .. } = r {
                let alerts: Vec<SavedAlert> = rule
                    .active
                    .values()
                    .map(|a| SavedAlert {
                        labels: a.labels.iter().map(|(k, v)| (k.into(), v.into())).collect(),
                        annotations: a.annotations.clone(),
                        state: a.state.as_str().into(),
                        value: if a.value.is_finite() { a.value } else { 0.0 },
                        active_at: a.active_at,
                        fired_at: a.fired_at,
                        resolved_at: a.resolved_at,
                        keep_firing_since: a.keep_firing_since,
                        last_sent_at: a.last_sent_at,
                    })
                    .collect();
                if !alerts.is_empty() {
                    saved
                        .entry(key.clone())
                        .or_default()
                        .insert(rule.rule.name.clone(), alerts);
                }
            }
        }
    }
    let Ok(json) = serde_json::to_vec(&saved) else {
        return;
    };
    let path = shared.opts.storage_path.join(FILE);
    let tmp = shared.opts.storage_path.join(format!("{FILE}.tmp"));
    // Write then rename: a crash never leaves a half-written file.
    if std::fs::write(&tmp, json)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .is_err()
    {
        tracing::warn!(path = %path.display(), "could not save alert state");
    }
}

pub fn restore(shared: &Shared) {
    let path = shared.opts.storage_path.join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let saved: Saved = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable alert state");
            return;
        }
    };
    let mut restored = 0;
    for g in shared.groups() {
        let mut g = g.lock().unwrap_or_else(|p| p.into_inner());
        let key = g.group.key();
        let Some(rules) = saved.get(&key) else {
            continue;
        };
        for r in g.rules.iter_mut() {
            if let RuleState::Alerting { rule, .. } = r
                && let Some(alerts) = rules.get(&rule.rule.name)
            {
                for a in alerts {
                    let state = match a.state.as_str() {
                        "firing" => State::Firing,
                        "pending" => State::Pending,
                        _ => State::Inactive,
                    };
                    let labels = Labels::from_pairs(a.labels.clone());
                    rule.active.insert(
                        labels.clone(),
                        Alert {
                            labels,
                            annotations: a.annotations.clone(),
                            state,
                            value: a.value,
                            active_at: a.active_at,
                            fired_at: a.fired_at,
                            resolved_at: a.resolved_at,
                            keep_firing_since: a.keep_firing_since,
                            last_sent_at: a.last_sent_at,
                            returned_in: 0,
                        },
                    );
                    restored += 1;
                }
            }
        }
    }
    tracing::info!(alerts = restored, "alert state restored");
}
