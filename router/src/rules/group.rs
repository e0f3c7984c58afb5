//! Evaluating one rule group at one timestamp: rules run in order, so a recording rule's output
//! is visible to the rules after it in the same evaluation; alerting rules advance their state
//! machine and write `ALERTS`; series a rule stops producing are marked stale.

use std::collections::HashSet;

use vigie_promql::{Engine, Labels, METRIC_NAME, MemoryStorage, Sample, Storage, Value, stale_nan};

use crate::alerting::{AlertingRule, Context};
use crate::rules::file::{Group, Rule, RuleKind};

/// Where rule output goes (the embedded store, or a test's in-memory data).
pub trait Appender {
    fn append(&mut self, labels: &Labels, t: i64, v: f64);
}

impl Appender for MemoryStorage {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        MemoryStorage::append(self, labels, t, v);
    }
}

/// A rule with its evaluation state.
#[derive(Debug, Clone)]
pub enum RuleState {
    Recording {
        rule: Rule,
        last_error: Option<String>,
    },
    Alerting {
        rule: AlertingRule,
        last_error: Option<String>,
    },
}

impl RuleState {
    pub fn name(&self) -> &str {
        match self {
            RuleState::Recording { rule, .. } => &rule.name,
            RuleState::Alerting { rule, .. } => &rule.rule.name,
        }
    }

    pub fn last_error(&self) -> Option<&str> {
        match self {
            RuleState::Recording { last_error, .. } | RuleState::Alerting { last_error, .. } => {
                last_error.as_deref()
            }
        }
    }
}

/// A group with its rules' state and the series each rule wrote last time.
#[derive(Debug, Clone)]
pub struct GroupState {
    pub group: Group,
    pub rules: Vec<RuleState>,
    written: Vec<HashSet<Labels>>,
}

impl GroupState {
    pub fn new(group: Group) -> Self {
        let rules: Vec<RuleState> = group
            .rules
            .iter()
            .cloned()
            .map(|r| match r.kind {
                RuleKind::Recording => RuleState::Recording {
                    rule: r,
                    last_error: None,
                },
                RuleKind::Alerting { .. } => RuleState::Alerting {
                    rule: AlertingRule::new(r),
                    last_error: None,
                },
            })
            .collect();
        let written = vec![HashSet::new(); rules.len()];
        GroupState {
            group,
            rules,
            written,
        }
    }

    /// Evaluates every rule at `ts` against `storage`, writing results back into it.
    pub fn eval<S: Storage + Appender>(
        &mut self,
        engine: &Engine,
        storage: &mut S,
        ts: i64,
        ctx: &Context,
    ) {
        let query_ts = ts - self.group.query_offset.unwrap_or(0);
        for (i, state) in self.rules.iter_mut().enumerate() {
            let (expr, rule_labels, name) = match state {
                RuleState::Recording { rule, .. } => {
                    (rule.expr.clone(), rule.labels.clone(), rule.name.clone())
                }
                RuleState::Alerting { rule, .. } => (
                    rule.rule.expr.clone(),
                    rule.rule.labels.clone(),
                    rule.rule.name.clone(),
                ),
            };
            let result = match engine.instant(&*storage, &expr, query_ts) {
                Ok(Value::Vector(v)) => Ok(v),
                Ok(Value::Scalar(v)) => Ok(vec![Sample {
                    metric: Labels::new(),
                    t: query_ts,
                    v,
                }]),
                Ok(_) => Err("rule result is not a vector or scalar".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let output: Result<Vec<Sample>, String> = result.and_then(|samples| match state {
                RuleState::Recording { .. } => record(
                    samples,
                    &name,
                    &self.group.labels,
                    &rule_labels,
                    self.group.limit,
                ),
                RuleState::Alerting { rule, .. } => {
                    rule.eval(ts, samples, &self.group.labels, self.group.limit, ctx)
                }
            });
            let (samples, error) = match output {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            match state {
                RuleState::Recording { last_error, .. }
                | RuleState::Alerting { last_error, .. } => *last_error = error,
            }
            let mut now: HashSet<Labels> = HashSet::with_capacity(samples.len());
            for s in samples {
                storage.append(&s.metric, query_ts, s.v);
                now.insert(s.metric);
            }
            for gone in self.written[i].difference(&now) {
                storage.append(gone, query_ts, stale_nan());
            }
            self.written[i] = now;
        }
    }
}

/// A recording rule's output: the samples renamed, with group and rule labels applied.
fn record(
    samples: Vec<Sample>,
    name: &str,
    group_labels: &[(String, String)],
    rule_labels: &[(String, String)],
    limit: u64,
) -> Result<Vec<Sample>, String> {
    let mut seen = HashSet::with_capacity(samples.len());
    let mut out = Vec::with_capacity(samples.len());
    for mut s in samples {
        s.metric.set(METRIC_NAME, name.to_string());
        for (k, v) in group_labels.iter().chain(rule_labels) {
            s.metric.set(k, v.clone());
        }
        if !seen.insert(s.metric.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push(s);
    }
    if limit > 0 && out.len() as u64 > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}
