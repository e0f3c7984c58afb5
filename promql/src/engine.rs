//! The evaluator: walks the `promql-parser` AST at one timestamp at a time. A range query is an
//! instant query at every step, which is what Prometheus' semantics define (its step-wise
//! optimisations do not change results).

use crate::hash::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::error::{Error, Result, eval_err};
use crate::storage::Storage;
use crate::value::{Labels, METRIC_NAME, Sample, Series, Value, is_stale_nan};
use crate::{aggregate, binary, functions};

/// Evaluation settings shared by every query.
#[derive(Debug, Clone, Copy)]
pub struct Engine {
    /// How far back an instant selector looks for the latest sample (Prometheus: 5m).
    pub lookback_ms: i64,
    /// Step of a subquery written without one (`x[5m:]`): the evaluation interval.
    pub subquery_step_ms: i64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            lookback_ms: 5 * 60 * 1000,
            subquery_step_ms: 60 * 1000,
        }
    }
}

impl Engine {
    /// Evaluates `expr` at time `t` (Unix milliseconds).
    pub fn instant(&self, storage: &dyn Storage, expr: &Expr, t: i64) -> Result<Value> {
        let ctx = Ctx {
            engine: self,
            storage,
            start: t,
            end: t,
            filter: None,
        };
        ctx.eval(expr, t)
    }

    /// Evaluates `expr` at every step from `start` to `end`; series come back sorted by labels.
    pub fn range(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>> {
        if step <= 0 {
            return eval_err("zero or negative query resolution step widths are not accepted");
        }
        let ctx = Ctx {
            engine: self,
            storage,
            start,
            end,
            filter: None,
        };
        let mut index: HashMap<Labels, usize> = HashMap::default();
        let mut out: Vec<Series> = Vec::new();
        let mut push = |metric: Labels, t: i64, v: f64| {
            let i = *index.entry(metric.clone()).or_insert_with(|| {
                out.push(Series {
                    metric,
                    points: Vec::new(),
                });
                out.len() - 1
            });
            out[i].points.push((t, v));
        };
        let mut t = start;
        while t <= end {
            match ctx.eval(expr, t)? {
                Value::Scalar(v) => push(Labels::new(), t, v),
                Value::Vector(samples) => {
                    for s in samples {
                        push(s.metric, t, s.v);
                    }
                }
                other => {
                    return eval_err(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        range_type_name(&other)
                    ));
                }
            }
            t += step;
        }
        out.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(out)
    }
}

fn range_type_name(v: &Value) -> &'static str {
    match v {
        Value::Matrix(_) => "range vector",
        other => other.type_name(),
    }
}

/// A range vector with the window it was selected over, which `rate` and friends extrapolate to.
pub(crate) struct RangeArg {
    pub series: Vec<Series>,
    /// Start (exclusive) and end (inclusive) of the window, Unix milliseconds.
    pub start: i64,
    pub end: i64,
}

/// One query: the store and the query's own start and end (what `@ start()` / `@ end()` mean).
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub engine: &'a Engine,
    pub storage: &'a dyn Storage,
    pub start: i64,
    pub end: i64,
    /// Series of one range selector that may be left out because nothing would use them.
    pub filter: Option<SeriesFilter<'a>>,
}

/// Set by `a and b` / `a unless b` for the range selector whose series `b`'s result comes
/// from one for one (see [`crate::binary`]): a series whose matching signature is not among
/// `a`'s cannot change the result, so its window is not read.
#[derive(Clone, Copy)]
pub(crate) struct SeriesFilter<'a> {
    pub target: &'a VectorSelector,
    pub keep: &'a dyn Fn(&Labels) -> bool,
}

pub(crate) fn millis(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => millis(d),
        Some(Offset::Neg(d)) => -millis(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => millis(&d),
        Err(e) => -millis(&e.duration()),
    }
}

/// The selector's matchers, the metric name included as an equality matcher.
pub fn selector_matchers(vs: &VectorSelector) -> Vec<Vec<Matcher>> {
    let name = vs
        .name
        .as_ref()
        .map(|n| Matcher::new(MatchOp::Equal, METRIC_NAME, n));
    let mut alternatives = Vec::new();
    let mut base = vs.matchers.matchers.clone();
    if vs.matchers.or_matchers.is_empty() {
        base.extend(name);
        alternatives.push(base);
    } else {
        for alt in &vs.matchers.or_matchers {
            let mut m = alt.clone();
            m.extend(name.clone());
            alternatives.push(m);
        }
    }
    alternatives
}

impl Ctx<'_> {
    /// The reference time of a selector or subquery: its `@` time (or the step's), minus offset.
    fn reference_time(&self, at: &Option<AtModifier>, offset: &Option<Offset>, ts: i64) -> i64 {
        let base = match at {
            None => ts,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(t)) => system_time_ms(t),
        };
        base - offset_ms(offset)
    }

    /// Runs a storage query once per alternative of the selector (`{a="1" or b="2"}`),
    /// keeping the first result for each series.
    fn per_alternative<T>(
        &self,
        vs: &VectorSelector,
        query: impl Fn(&[Matcher]) -> Vec<T>,
        labels: impl Fn(&T) -> &Labels,
    ) -> Vec<T> {
        let alternatives = selector_matchers(vs);
        if alternatives.len() == 1 {
            return query(&alternatives[0]);
        }
        let mut seen = crate::hash::HashSet::default();
        let mut out = Vec::new();
        for alt in alternatives {
            for s in query(&alt) {
                if seen.insert(labels(&s).clone()) {
                    out.push(s);
                }
            }
        }
        out
    }

    fn select_latest(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Vec<(Labels, i64, f64)> {
        self.per_alternative(vs, |m| self.storage.select_latest(m, mint, maxt), |s| &s.0)
    }

    fn select(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Vec<Series> {
        self.per_alternative(vs, |m| self.storage.select(m, mint, maxt), |s| &s.metric)
    }

    pub fn eval(&self, expr: &Expr, ts: i64) -> Result<Value> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(samples) => {
                    let out: Vec<Sample> = samples
                        .into_iter()
                        .map(|s| Sample {
                            metric: s.metric.without_name(),
                            t: ts,
                            v: -s.v,
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Value::Vector(out))
                }
                other => eval_err(format!(
                    "unary expression only allowed on expressions of type scalar or vector, got {}",
                    other.type_name()
                )),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant_selector(vs, ts))),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                Ok(Value::Matrix(self.range_arg(expr, ts)?.series))
            }
            Expr::Aggregate(a) => aggregate::eval(self, a, ts),
            Expr::Binary(b) => binary::eval(self, b, ts),
            Expr::Call(c) => {
                let out = functions::call(self, c, ts)?;
                if let Value::Vector(v) = &out
                    && !keeps_labels_distinct(c)
                {
                    check_unique(v)?;
                }
                Ok(out)
            }
            Expr::Extension(_) => Err(Error::Unsupported("extension expressions".into())),
        }
    }

    /// The latest non-stale sample of each matching series within the lookback window.
    pub fn instant_selector(&self, vs: &VectorSelector, ts: i64) -> Vec<Sample> {
        let t = self.reference_time(&vs.at, &vs.offset, ts);
        let mint = t.saturating_sub(self.engine.lookback_ms) + 1;
        self.select_latest(vs, mint, t)
            .into_iter()
            .filter_map(|(metric, pt, v)| (!is_stale_nan(v)).then_some(Sample { metric, t: pt, v }))
            .collect()
    }

    /// Evaluates a range selector or subquery at `ts`: the window `(t - range, t]`.
    pub fn range_arg(&self, expr: &Expr, ts: i64) -> Result<RangeArg> {
        match expr {
            Expr::MatrixSelector(ms) => {
                let end = self.reference_time(&ms.vs.at, &ms.vs.offset, ts);
                let start = end - millis(&ms.range);
                let series = match self.filter {
                    Some(f) if std::ptr::eq(f.target, &ms.vs) => self.per_alternative(
                        &ms.vs,
                        |m| self.storage.select_where(m, start + 1, end, f.keep),
                        |s| &s.metric,
                    ),
                    _ => self.select(&ms.vs, start + 1, end),
                };
                let series = series
                    .into_iter()
                    .filter_map(|mut s| {
                        s.points.retain(|p| !is_stale_nan(p.1));
                        (!s.points.is_empty()).then_some(s)
                    })
                    .collect();
                Ok(RangeArg { series, start, end })
            }
            Expr::Subquery(sq) => {
                let end = self.reference_time(&sq.at, &sq.offset, ts);
                let range = millis(&sq.range);
                let start = end - range;
                let step = sq
                    .step
                    .as_ref()
                    .map(millis)
                    .unwrap_or(self.engine.subquery_step_ms);
                if step <= 0 {
                    return eval_err("subquery step must be positive");
                }
                // Steps are aligned to multiples of the step, and the window is left-open.
                let mut t = start.div_euclid(step) * step;
                if t <= start {
                    t += step;
                }
                let mut index: HashMap<Labels, usize> = HashMap::default();
                let mut series: Vec<Series> = Vec::new();
                while t <= end {
                    let samples = match self.eval(&sq.expr, t)? {
                        Value::Vector(v) => v,
                        Value::Scalar(v) => vec![Sample {
                            metric: Labels::new(),
                            t,
                            v,
                        }],
                        other => {
                            return eval_err(format!(
                                "subquery is only allowed on vector, got {} instead",
                                other.type_name()
                            ));
                        }
                    };
                    for s in samples {
                        let i = *index.entry(s.metric.clone()).or_insert_with(|| {
                            series.push(Series {
                                metric: s.metric,
                                points: Vec::new(),
                            });
                            series.len() - 1
                        });
                        series[i].points.push((t, s.v));
                    }
                    t += step;
                }
                Ok(RangeArg { series, start, end })
            }
            Expr::Paren(p) => self.range_arg(&p.expr, ts),
            other => eval_err(format!(
                "expected a range vector, got {}",
                other.value_type()
            )),
        }
    }

    /// Evaluates an argument that must be a scalar.
    pub fn scalar(&self, expr: &Expr, ts: i64) -> Result<f64> {
        match self.eval(expr, ts)? {
            Value::Scalar(v) => Ok(v),
            other => eval_err(format!("expected scalar, got {}", other.type_name())),
        }
    }

    /// Evaluates an argument that must be an instant vector.
    pub fn vector(&self, expr: &Expr, ts: i64) -> Result<Vec<Sample>> {
        match self.eval(expr, ts)? {
            Value::Vector(v) => Ok(v),
            other => eval_err(format!(
                "expected instant vector, got {}",
                other.type_name()
            )),
        }
    }
}

/// Whether a call's result cannot hold two samples with the same labels, so the check can be
/// skipped: its series come from one selector of a single metric name (series that differ in
/// other labels stay distinct once a function drops the name) and it does not rewrite labels.
fn keeps_labels_distinct(c: &promql_parser::parser::Call) -> bool {
    if matches!(c.func.name, "label_replace" | "label_join") {
        return false;
    }
    c.args.args.iter().all(|a| match a.as_ref() {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::VectorSelector(vs) => single_name(vs),
        Expr::MatrixSelector(ms) => single_name(&ms.vs),
        _ => false,
    })
}

/// Whether every series a selector returns has the same metric name.
pub(crate) fn single_name(vs: &VectorSelector) -> bool {
    vs.name.is_some()
        && vs.matchers.or_matchers.is_empty()
        && vs.matchers.matchers.iter().all(|m| m.name != METRIC_NAME)
}

/// Prometheus refuses a result in which two samples have the same labels (for instance two
/// metrics that differ only by name after a function dropped it).
pub(crate) fn check_unique(samples: &[Sample]) -> Result<()> {
    if samples.len() < 2 {
        return Ok(());
    }
    let mut seen =
        crate::hash::HashSet::with_capacity_and_hasher(samples.len(), Default::default());
    for s in samples {
        if !seen.insert(&s.metric) {
            return eval_err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}
