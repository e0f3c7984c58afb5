//! Binary operators: arithmetic, comparisons (filtering or `bool`), set operators, and vector
//! matching with `on`/`ignoring` and `group_left`/`group_right`.

use crate::hash::{HashMap, HashSet};

use promql_parser::parser::token::*;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use promql_parser::parser::{Expr, VectorSelector};

use crate::engine::{Ctx, SeriesFilter, check_unique, single_name};
use crate::error::{Result, eval_err};
use crate::value::{Labels, METRIC_NAME, Sample, Value};

pub(crate) fn eval(ctx: &Ctx, b: &BinaryExpr, ts: i64) -> Result<Value> {
    let op = b.op.id();
    let return_bool = b.return_bool();
    let lhs = ctx.eval(&b.lhs, ts)?;
    // `and` and `unless` of an empty left side are empty whatever the right side holds: skip
    // evaluating it (alert rules are mostly `condition and more conditions`, usually false).
    if matches!(op, T_LAND | T_LUNLESS) && matches!(&lhs, Value::Vector(v) if v.is_empty()) {
        return Ok(Value::Vector(Vec::new()));
    }
    let rhs = match (&lhs, op) {
        (Value::Vector(l), T_LAND | T_LUNLESS) => {
            let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
            match pushdown_target(&b.rhs, matching) {
                Some(target) => {
                    let matching = matching.cloned();
                    let wanted: HashSet<u64> =
                        l.iter().map(|s| sig_hash(&s.metric, &matching)).collect();
                    let keep = |labels: &Labels| wanted.contains(&sig_hash(labels, &matching));
                    let narrowed = Ctx {
                        filter: Some(SeriesFilter {
                            target,
                            keep: &keep,
                        }),
                        ..*ctx
                    };
                    narrowed.eval(&b.rhs, ts)?
                }
                None => ctx.eval(&b.rhs, ts)?,
            }
        }
        _ => ctx.eval(&b.rhs, ts)?,
    };
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = apply(op, l, r)?;
            if is_comparison(op) {
                // The parser only lets `bool` comparisons between scalars through.
                Ok(Value::Scalar(if keep { 1.0 } else { 0.0 }))
            } else {
                Ok(Value::Scalar(v))
            }
        }
        (Value::Vector(l), Value::Scalar(r)) => vector_scalar(op, l, r, false, return_bool, ts),
        (Value::Scalar(l), Value::Vector(r)) => vector_scalar(op, r, l, true, return_bool, ts),
        (Value::Vector(l), Value::Vector(r)) => {
            let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
            let card = b
                .modifier
                .as_ref()
                .map(|m| m.card.clone())
                .unwrap_or(VectorMatchCardinality::OneToOne);
            let out = match op {
                T_LAND => and(l, r, &matching),
                T_LOR => or(l, r, &matching),
                T_LUNLESS => unless(l, r, &matching),
                _ => vector_vector(op, l, r, &matching, &card, return_bool, ts)?,
            };
            Ok(Value::Vector(out))
        }
        (l, r) => eval_err(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        )),
    }
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Arithmetic drops the metric name: the result is no longer that metric.
fn drops_name(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW | T_ATAN2)
}

/// Applies an operator to two floats: the value and, for comparisons, whether the pair passes.
fn apply(op: TokenId, l: f64, r: f64) -> Result<(f64, bool)> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_MOD => (l % r, true),
        T_POW => (l.powf(r), true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => return eval_err(format!("operator {} not allowed here", TokenType::new(op))),
    })
}

fn vector_scalar(
    op: TokenId,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_left: bool,
    return_bool: bool,
    ts: i64,
) -> Result<Value> {
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (l, r) = if scalar_left {
            (scalar, s.v)
        } else {
            (s.v, scalar)
        };
        let (mut v, mut keep) = apply(op, l, r)?;
        // A comparison keeps the vector's own value, whichever side it is on.
        if is_comparison(op) {
            v = s.v;
        }
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let metric = if drops_name(op) || return_bool {
                s.metric.without_name()
            } else {
                s.metric
            };
            out.push(Sample { metric, t: ts, v });
        }
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// The range selector that the right side of `and`/`unless` takes its series from one for one,
/// keeping every label but the name: `rate(x[5m]) > 0`, `predict_linear(x[6h], 3600) < 0`,
/// `-deriv(x[1h])`. Its series whose signature the left side lacks can then be skipped before
/// their windows are read. Only for a selector of one metric name, so that skipping cannot
/// hide a "same labelset" error Prometheus would raise, and never when `on` lists the name.
fn pushdown_target<'e>(
    expr: &'e Expr,
    matching: Option<&LabelModifier>,
) -> Option<&'e VectorSelector> {
    if let Some(LabelModifier::Include(on)) = matching
        && on.labels.iter().any(|l| l == METRIC_NAME)
    {
        return None;
    }
    series_source(expr)
}

fn series_source(expr: &Expr) -> Option<&VectorSelector> {
    match expr {
        Expr::Paren(p) => series_source(&p.expr),
        Expr::Unary(u) => series_source(&u.expr),
        Expr::Binary(b) if !matches!(b.op.id(), T_LAND | T_LOR | T_LUNLESS) => {
            if is_constant(&b.rhs) {
                series_source(&b.lhs)
            } else if is_constant(&b.lhs) {
                series_source(&b.rhs)
            } else {
                None
            }
        }
        Expr::Call(c) => {
            let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
            match c.func.name {
                "rate"
                | "irate"
                | "increase"
                | "delta"
                | "idelta"
                | "deriv"
                | "resets"
                | "changes"
                | "avg_over_time"
                | "min_over_time"
                | "max_over_time"
                | "sum_over_time"
                | "count_over_time"
                | "stddev_over_time"
                | "stdvar_over_time"
                | "last_over_time"
                | "present_over_time"
                | "mad_over_time"
                | "predict_linear"
                | "quantile_over_time"
                | "holt_winters"
                | "double_exponential_smoothing" => {
                    let mut ranges = args.iter().filter_map(|a| match a {
                        Expr::MatrixSelector(ms) => Some(&ms.vs),
                        _ => None,
                    });
                    match (ranges.next(), ranges.next()) {
                        (Some(vs), None) if single_name(vs) => Some(vs),
                        _ => None,
                    }
                }
                "abs" | "ceil" | "floor" | "round" | "exp" | "sqrt" | "ln" | "log2" | "log10"
                | "sgn" | "clamp" | "clamp_min" | "clamp_max" => {
                    args.first().and_then(|a| series_source(a))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A number that needs no data: `4 * 3600`, `(0.9)`, `-1`.
fn is_constant(expr: &Expr) -> bool {
    match expr {
        Expr::NumberLiteral(_) => true,
        Expr::Paren(p) => is_constant(&p.expr),
        Expr::Unary(u) => is_constant(&u.expr),
        Expr::Binary(b) => is_constant(&b.lhs) && is_constant(&b.rhs),
        _ => false,
    }
}

/// The labels two samples are matched on: the `on` list, or all but the `ignoring` list (and
/// the metric name, which never takes part unless named in `on`).
fn signature(l: &Labels, matching: &Option<LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => l.project(&on.labels, true),
        Some(LabelModifier::Exclude(ign)) => l.project(&ign.labels, false),
        None => l.project(&[], false),
    }
}

/// [`signature`] as a hash, which is what matching keys on (no label set is built).
fn sig_hash(l: &Labels, matching: &Option<LabelModifier>) -> u64 {
    match matching {
        Some(LabelModifier::Include(on)) => l.project_hash(&on.labels, true),
        Some(LabelModifier::Exclude(ign)) => l.project_hash(&ign.labels, false),
        None => l.project_hash(&[], false),
    }
}

fn and(l: Vec<Sample>, r: Vec<Sample>, m: &Option<LabelModifier>) -> Vec<Sample> {
    let right: HashSet<u64> = r.iter().map(|s| sig_hash(&s.metric, m)).collect();
    l.into_iter()
        .filter(|s| right.contains(&sig_hash(&s.metric, m)))
        .collect()
}

fn or(l: Vec<Sample>, r: Vec<Sample>, m: &Option<LabelModifier>) -> Vec<Sample> {
    let left: HashSet<u64> = l.iter().map(|s| sig_hash(&s.metric, m)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|s| !left.contains(&sig_hash(&s.metric, m))),
    );
    out
}

fn unless(l: Vec<Sample>, r: Vec<Sample>, m: &Option<LabelModifier>) -> Vec<Sample> {
    let right: HashSet<u64> = r.iter().map(|s| sig_hash(&s.metric, m)).collect();
    l.into_iter()
        .filter(|s| !right.contains(&sig_hash(&s.metric, m)))
        .collect()
}

fn vector_vector(
    op: TokenId,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: &Option<LabelModifier>,
    card: &VectorMatchCardinality,
    return_bool: bool,
    ts: i64,
) -> Result<Vec<Sample>> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    // The "one" side is looked up by signature; for group_right that is the left operand.
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let include: &[String] = match card {
        VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => &l.labels,
        _ => &[],
    };

    let mut one_by_sig: HashMap<u64, &Sample> =
        HashMap::with_capacity_and_hasher(one.len(), Default::default());
    for s in &one {
        let sig = sig_hash(&s.metric, matching);
        if let Some(prev) = one_by_sig.insert(sig, s) {
            let sig = signature(&s.metric, matching);
            let side = if one_to_many { "left" } else { "right" };
            return eval_err(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                sig.go_string(),
                s.metric.go_string(),
                prev.metric.go_string()
            ));
        }
    }

    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched: HashSet<u64> = HashSet::default();
    let mut inserted: HashSet<(u64, Labels)> = HashSet::default();
    let mut out = Vec::new();
    for s in &many {
        let sig = sig_hash(&s.metric, matching);
        let Some(o) = one_by_sig.get(&sig) else {
            continue;
        };
        let (l, r) = if one_to_many { (o.v, s.v) } else { (s.v, o.v) };
        let (mut v, keep) = apply(op, l, r)?;
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let metric = result_metric(
            &s.metric,
            &o.metric,
            op,
            matching,
            one_to_one,
            include,
            return_bool,
        );
        if one_to_one {
            if !matched.insert(sig) {
                return eval_err(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                );
            }
        } else if !inserted.insert((sig, metric.clone())) {
            return eval_err(
                "multiple matches for labels: grouping labels must ensure unique matches",
            );
        }
        out.push(Sample { metric, t: ts, v });
    }
    Ok(out)
}

fn result_metric(
    many: &Labels,
    one: &Labels,
    op: TokenId,
    matching: &Option<LabelModifier>,
    one_to_one: bool,
    include: &[String],
    return_bool: bool,
) -> Labels {
    let mut m = many.clone();
    if drops_name(op) || return_bool {
        m.remove(METRIC_NAME);
    }
    if one_to_one {
        match matching {
            Some(LabelModifier::Include(on)) => m = m.project(&on.labels, true),
            Some(LabelModifier::Exclude(ign)) => {
                for n in &ign.labels {
                    m.remove(n);
                }
            }
            None => {}
        }
    }
    for n in include {
        m.set(n, one.get(n).to_string());
    }
    m
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use promql_parser::label::Matcher;

    use crate::storage::{MemoryStorage, Storage};
    use crate::value::{Labels, Series, Value};
    use crate::{Engine, parse};

    /// Records which series a range selection read.
    struct Reads {
        data: MemoryStorage,
        read: RefCell<Vec<String>>,
    }

    impl Storage for Reads {
        fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
            self.select_where(matchers, mint, maxt, &|_| true)
        }

        fn select_where(
            &self,
            matchers: &[Matcher],
            mint: i64,
            maxt: i64,
            keep: &dyn Fn(&Labels) -> bool,
        ) -> Vec<Series> {
            let out = self.data.select_where(matchers, mint, maxt, keep);
            if maxt - mint > 10 * 60_000 {
                self.read
                    .borrow_mut()
                    .extend(out.iter().map(|s| s.metric.get("mount").to_string()));
            }
            out
        }
    }

    #[test]
    fn the_right_side_of_and_reads_only_what_the_left_side_matches() {
        let mut data = MemoryStorage::new();
        for (mount, avail) in [("/", 10.0), ("/boot", 90.0), ("/home", 80.0)] {
            let l = Labels::from_pairs([("__name__", "avail"), ("mount", mount)]);
            for i in 0..60 {
                data.append(&l, i * 60_000, avail - i as f64 * 0.1);
            }
        }
        let store = Reads {
            data,
            read: RefCell::new(Vec::new()),
        };
        let expr = parse("avail < 50 and predict_linear(avail[30m], 3600) < 0").expect("parses");
        let got = Engine::default()
            .instant(&store, &expr, 59 * 60_000)
            .expect("evaluates");
        let Value::Vector(v) = got else {
            panic!("vector expected")
        };
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].metric.get("mount"), "/");
        assert_eq!(*store.read.borrow(), vec!["/".to_string()]);

        // Without a single metric name the window is read whole (skipping could hide an error).
        store.read.borrow_mut().clear();
        let expr = parse(r#"avail < 50 and rate({__name__=~"avail"}[30m])"#).expect("parses");
        Engine::default()
            .instant(&store, &expr, 59 * 60_000)
            .expect("evaluates");
        assert_eq!(store.read.borrow().len(), 3);
    }
}
