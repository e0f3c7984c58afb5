//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `count_values`, …) with `by` and
//! `without` grouping.

use crate::hash::HashMap;

use promql_parser::parser::token::*;
use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::engine::Ctx;
use crate::error::{Error, Result, eval_err};
use crate::kahan::{self, Mean};
use crate::value::{Labels, Sample, Value};

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: what `count_values` writes into its label.
pub fn format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn group_key(l: &Labels, m: &Option<LabelModifier>) -> Labels {
    match m {
        None => Labels::new(),
        Some(LabelModifier::Include(by)) => l.project(&by.labels, true),
        Some(LabelModifier::Exclude(without)) => l.project(&without.labels, false),
    }
}

fn group_hash(l: &Labels, m: &Option<LabelModifier>) -> u64 {
    match m {
        None => 0,
        Some(LabelModifier::Include(by)) => l.project_hash(&by.labels, true),
        Some(LabelModifier::Exclude(without)) => l.project_hash(&without.labels, false),
    }
}

/// Groups samples in the order their group first appears (the order Prometheus returns).
/// Groups are found by a hash of the grouping labels; the label set is built once per group.
fn groups(samples: Vec<Sample>, m: &Option<LabelModifier>) -> Vec<(Labels, Vec<Sample>)> {
    let mut index: HashMap<u64, usize> = HashMap::default();
    let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
    for s in samples {
        let h = group_hash(&s.metric, m);
        match index.get(&h) {
            Some(&i) => out[i].1.push(s),
            None => {
                index.insert(h, out.len());
                out.push((group_key(&s.metric, m), vec![s]));
            }
        }
    }
    out
}

pub(crate) fn eval(ctx: &Ctx, a: &AggregateExpr, ts: i64) -> Result<Value> {
    let op = a.op.id();
    let samples = ctx.vector(&a.expr, ts)?;
    let m = &a.modifier;
    let param = |what: &str| -> Result<&promql_parser::parser::Expr> {
        a.param
            .as_deref()
            .ok_or_else(|| Error::Eval(format!("{what} needs a parameter")))
    };
    let out = match op {
        T_TOPK | T_BOTTOMK => {
            let k = ctx.scalar(param("topk")?, ts)?;
            if k.is_nan() {
                return eval_err("Parameter value is NaN");
            }
            if k >= 9.223_372_036_854_776e18 || k <= -9.223_372_036_854_776e18 {
                return eval_err(format!("Scalar value {k} overflows int64"));
            }
            let k = k as i64;
            if k < 1 {
                return Ok(Value::Vector(Vec::new()));
            }
            let mut out = Vec::new();
            for (_, mut g) in groups(samples, m) {
                let top = op == T_TOPK;
                // NaN sorts as the least wanted value either way.
                g.sort_by(|x, y| match (x.v.is_nan(), y.v.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if top => y.v.total_cmp(&x.v),
                    _ => x.v.total_cmp(&y.v),
                });
                g.truncate(k as usize);
                out.extend(g.into_iter().map(|s| Sample { t: ts, ..s }));
            }
            out
        }
        T_LIMITK | T_LIMIT_RATIO => {
            return Err(Error::Unsupported(format!("{} (experimental)", a.op)));
        }
        T_COUNT_VALUES => {
            let label = match ctx.eval(param("count_values")?, ts)? {
                Value::String(s) => s,
                other => {
                    return eval_err(format!("expected string, got {}", other.type_name()));
                }
            };
            if !valid_label_name(&label) {
                return eval_err(format!("invalid label name {label:?}"));
            }
            let mut index: HashMap<Labels, usize> = HashMap::default();
            let mut out: Vec<Sample> = Vec::new();
            for s in samples {
                let mut key = group_key(&s.metric, m);
                key.set(&label, format_f(s.v));
                match index.get(&key) {
                    Some(&i) => out[i].v += 1.0,
                    None => {
                        index.insert(key.clone(), out.len());
                        out.push(Sample {
                            metric: key,
                            t: ts,
                            v: 1.0,
                        });
                    }
                }
            }
            out
        }
        T_QUANTILE => {
            let q = ctx.scalar(param("quantile")?, ts)?;
            groups(samples, m)
                .into_iter()
                .map(|(metric, g)| {
                    let mut vals: Vec<f64> = g.iter().map(|s| s.v).collect();
                    Sample {
                        metric,
                        t: ts,
                        v: kahan::quantile(q, &mut vals),
                    }
                })
                .collect()
        }
        _ => {
            let f: fn(&[Sample]) -> f64 = match op {
                T_SUM => sum,
                T_AVG => avg,
                T_COUNT => |g| g.len() as f64,
                T_GROUP => |_| 1.0,
                T_MIN => min,
                T_MAX => max,
                T_STDDEV => |g| stdvar(g).sqrt(),
                T_STDVAR => stdvar,
                _ => return Err(Error::Unsupported(format!("aggregation {}", a.op))),
            };
            groups(samples, m)
                .into_iter()
                .map(|(metric, g)| Sample {
                    metric,
                    t: ts,
                    v: f(&g),
                })
                .collect()
        }
    };
    Ok(Value::Vector(out))
}

fn sum(g: &[Sample]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for x in g {
        (s, c) = kahan::sum_inc(x.v, s, c);
    }
    s + c
}

fn avg(g: &[Sample]) -> f64 {
    let mut m = Mean::default();
    for x in g {
        m.add(x.v);
    }
    m.value()
}

fn min(g: &[Sample]) -> f64 {
    let mut v = g[0].v;
    for x in &g[1..] {
        if v > x.v || v.is_nan() {
            v = x.v;
        }
    }
    v
}

fn max(g: &[Sample]) -> f64 {
    let mut v = g[0].v;
    for x in &g[1..] {
        if v < x.v || v.is_nan() {
            v = x.v;
        }
    }
    v
}

fn stdvar(g: &[Sample]) -> f64 {
    let (mut count, mut mean, mut value) = (0.0, 0.0, 0.0);
    for x in g {
        count += 1.0;
        let delta = x.v - mean;
        mean += delta / count;
        value += delta * (x.v - mean);
    }
    value / count
}

pub(crate) fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
