//! Alerting rules: the inactive → pending → firing → resolved state machine with `for` and
//! `keep_firing_for`, templated labels and annotations, and the `ALERTS` /
//! `ALERTS_FOR_STATE` series that make state visible and restorable.

pub mod template;

use std::collections::BTreeMap;

use vigie_promql::{Labels, METRIC_NAME, Sample};

use crate::rules::file::{Rule, RuleKind};

/// How long a resolved alert is still reported (so receivers hear that it resolved).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Inactive,
    Pending,
    Firing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub state: State,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub keep_firing_since: Option<i64>,
    /// When this alert was last sent to external Alertmanagers.
    pub last_sent_at: Option<i64>,
    /// The number of the last evaluation whose result held this alert (see
    /// [`AlertingRule::evaluations`]): the ones an evaluation no longer holds are found
    /// without a set of its label sets.
    pub returned_in: u64,
}

/// One alerting rule and its active alerts, keyed by label set.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    pub rule: Rule,
    pub active: BTreeMap<Labels, Alert>,
    /// Evaluations so far; the first is number 1.
    pub evaluations: u64,
}

/// What the templates of a rule can see besides the sample.
pub struct Context<'a> {
    pub external_labels: &'a [(String, String)],
    pub external_url: &'a str,
}

impl AlertingRule {
    pub fn new(rule: Rule) -> Self {
        AlertingRule {
            rule,
            active: BTreeMap::new(),
            evaluations: 0,
        }
    }

    fn durations(&self) -> (i64, i64) {
        match &self.rule.kind {
            RuleKind::Alerting {
                for_ms,
                keep_firing_for_ms,
                ..
            } => (*for_ms, *keep_firing_for_ms),
            RuleKind::Recording => (0, 0),
        }
    }

    /// Advances the state machine with the expression's result at `ts`; returns the `ALERTS`
    /// and `ALERTS_FOR_STATE` samples of this evaluation.
    pub fn eval(
        &mut self,
        ts: i64,
        result: Vec<Sample>,
        group_labels: &[(String, String)],
        limit: u64,
        ctx: &Context,
        query: Option<template::QueryFn>,
    ) -> Result<Vec<Sample>, String> {
        let (hold, keep_firing_for) = self.durations();
        let annotations_tmpl = match &self.rule.kind {
            RuleKind::Alerting { annotations, .. } => annotations.clone(),
            RuleKind::Recording => Vec::new(),
        };
        let tmpl_name = format!("__alert_{}", self.rule.name);
        self.evaluations += 1;
        let this = self.evaluations;
        let mut current: BTreeMap<Labels, Alert> = BTreeMap::new();
        for s in result {
            let sample_labels: Vec<(String, String)> = s
                .metric
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let data = template::Data {
                labels: &sample_labels,
                external_labels: ctx.external_labels,
                external_url: ctx.external_url,
                value: s.v,
                query,
            };
            let expander = template::Expander::new(&tmpl_name, &data);
            let mut labels = s.metric.without_name();
            for (k, v) in group_labels.iter().chain(&self.rule.labels) {
                labels.set(k, expander.expand_or_error(v));
            }
            labels.set("alertname", self.rule.name.clone());
            let annotations = annotations_tmpl
                .iter()
                .map(|(k, v)| (k.clone(), expander.expand_or_error(v)))
                .collect();
            if current.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            current.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations,
                    state: State::Pending,
                    value: s.v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    keep_firing_since: None,
                    last_sent_at: None,
                    returned_in: this,
                },
            );
        }
        for (k, a) in current {
            match self.active.get_mut(&k) {
                Some(existing) if existing.state != State::Inactive => {
                    existing.value = a.value;
                    existing.annotations = a.annotations;
                    existing.returned_in = this;
                }
                _ => {
                    self.active.insert(k, a);
                }
            }
        }
        let mut out = Vec::new();
        let mut active_count = 0u64;
        let mut remove = Vec::new();
        for (k, a) in self.active.iter_mut() {
            if a.returned_in != this {
                let mut keep_firing = false;
                if a.state == State::Firing && keep_firing_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_firing_for;
                }
                if a.state == State::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    remove.push(k.clone());
                }
                if a.state != State::Inactive && !keep_firing {
                    a.state = State::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else if a.state == State::Firing {
                a.keep_firing_since = None;
            }
            active_count += 1;
            if a.state == State::Pending && ts - a.active_at >= hold {
                a.state = State::Firing;
                a.fired_at = Some(ts);
            }
            let mut alerts = a.labels.clone();
            alerts.set(METRIC_NAME, "ALERTS".into());
            alerts.set("alertstate", a.state.as_str().into());
            out.push(Sample {
                metric: alerts,
                t: ts,
                v: 1.0,
            });
            let mut for_state = a.labels.clone();
            for_state.set(METRIC_NAME, "ALERTS_FOR_STATE".into());
            out.push(Sample {
                metric: for_state,
                t: ts,
                v: a.active_at as f64 / 1000.0,
            });
        }
        for k in remove {
            self.active.remove(&k);
        }
        if limit > 0 && active_count > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {active_count} alerts"
            ));
        }
        Ok(out)
    }

    /// Alerts currently firing.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().filter(|a| a.state == State::Firing)
    }
}
