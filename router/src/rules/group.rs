//! Evaluating one rule group at one timestamp: rules run in order, so a recording rule's output
//! is visible to the rules after it in the same evaluation; alerting rules advance their state
//! machine and write `ALERTS`; series a rule stops producing are marked stale.

use vigie_promql::hash::HashSet;

use std::cell::RefCell;

use promql_parser::parser::Expr;
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

/// What rules are evaluated against: a query, and a place for their output.
pub trait Backend {
    /// `text` is the expression as written, for backends that send it elsewhere.
    fn query(&self, expr: &Expr, text: &str, ts: i64) -> Result<Value, String>;
    /// Stores rule output (recording rules, `ALERTS`); a backend without storage drops it.
    fn append(&self, samples: &[(Labels, f64)], t: i64);
}

/// An in-process store evaluated with the embedded engine (rule unit tests, and the router's
/// embedded mode through its own locking wrapper).
pub struct Local<'a, S> {
    pub engine: &'a Engine,
    pub storage: RefCell<&'a mut S>,
}

impl<S: Storage + Appender> Backend for Local<'_, S> {
    fn query(&self, expr: &Expr, _text: &str, ts: i64) -> Result<Value, String> {
        let storage = self.storage.borrow();
        self.engine
            .instant(&**storage, expr, ts)
            .map_err(|e| e.to_string())
    }

    fn append(&self, samples: &[(Labels, f64)], t: i64) {
        let mut storage = self.storage.borrow_mut();
        for (l, v) in samples {
            storage.append(l, t, *v);
        }
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
        let written = vec![HashSet::default(); rules.len()];
        GroupState {
            group,
            rules,
            written,
        }
    }

    /// Takes over the state of `old` (the same group before a reload) for every rule with the
    /// same name and labels, as Prometheus does: alert timers keep running, an alert whose
    /// expression changed resolves properly, and stale markers still reach vanished series.
    pub fn adopt(&mut self, old: &GroupState) {
        for (i, new) in self.rules.iter_mut().enumerate() {
            for (j, prev) in old.rules.iter().enumerate() {
                match (&mut *new, prev) {
                    (RuleState::Alerting { rule: n, .. }, RuleState::Alerting { rule: p, .. })
                        if n.rule.name == p.rule.name && n.rule.labels == p.rule.labels =>
                    {
                        n.active = p.active.clone();
                        self.written[i] = old.written[j].clone();
                    }
                    (
                        RuleState::Recording { rule: n, .. },
                        RuleState::Recording { rule: p, .. },
                    ) if n.name == p.name && n.expr_text == p.expr_text && n.labels == p.labels => {
                        self.written[i] = old.written[j].clone();
                    }
                    _ => {}
                }
            }
        }
    }

    /// Evaluates every rule at `ts`, writing results through the backend.
    pub fn eval(&mut self, backend: &dyn Backend, ts: i64, ctx: &Context) {
        let query_ts = ts - self.group.query_offset.unwrap_or(0);
        for (i, state) in self.rules.iter_mut().enumerate() {
            let r = match state {
                RuleState::Recording { rule, .. } => rule,
                RuleState::Alerting { rule, .. } => &rule.rule,
            };
            let (expr, text, rule_labels, name) = (
                r.expr.clone(),
                r.expr_text.clone(),
                r.labels.clone(),
                r.name.clone(),
            );
            let result = match backend.query(&expr, &text, query_ts) {
                Ok(Value::Vector(v)) => Ok(v),
                Ok(Value::Scalar(v)) => Ok(vec![Sample {
                    metric: Labels::new(),
                    t: query_ts,
                    v,
                }]),
                Ok(_) => Err("rule result is not a vector or scalar".to_string()),
                Err(e) => Err(e),
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
                    // Templates' `query` runs against the same data, at the same time.
                    let query = |q: &str| -> crate::alerting::template::QueryResult {
                        let expr = vigie_promql::parse(q).map_err(|e| e.to_string())?;
                        match backend.query(&expr, q, query_ts)? {
                            Value::Vector(v) => Ok(v
                                .into_iter()
                                .map(|s| {
                                    let l = s
                                        .metric
                                        .iter()
                                        .map(|(k, v)| (k.to_string(), v.to_string()))
                                        .collect();
                                    (l, s.v)
                                })
                                .collect()),
                            Value::Scalar(v) => Ok(vec![(Vec::new(), v)]),
                            other => Err(format!("query returned a {}", other.type_name())),
                        }
                    };
                    rule.eval(
                        ts,
                        samples,
                        &self.group.labels,
                        self.group.limit,
                        ctx,
                        Some(&query),
                    )
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
            let mut out: Vec<(Labels, f64)> = Vec::with_capacity(samples.len());
            let mut now: HashSet<Labels> =
                HashSet::with_capacity_and_hasher(samples.len(), Default::default());
            for s in samples {
                now.insert(s.metric.clone());
                out.push((s.metric, s.v));
            }
            for gone in self.written[i].difference(&now) {
                out.push((gone.clone(), stale_nan()));
            }
            backend.append(&out, query_ts);
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
    let mut seen = HashSet::with_capacity_and_hasher(samples.len(), Default::default());
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
