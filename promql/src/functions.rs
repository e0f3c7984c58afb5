//! PromQL functions over floats. Native-histogram functions see no histograms here and return
//! nothing, which is their answer on float data.

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};
use regex::Regex;

use crate::aggregate::valid_label_name;
use crate::engine::{Ctx, RangeArg};
use crate::error::{Error, Result, eval_err};
use crate::kahan::{self, Mean, go_max, go_min};
use crate::value::{Labels, METRIC_NAME, Sample, Series, Value};

pub(crate) fn call(ctx: &Ctx, c: &Call, ts: i64) -> Result<Value> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
    let arg = |i: usize| -> Result<&Expr> {
        args.get(i)
            .copied()
            .ok_or_else(|| Error::Eval(format!("missing argument {} to {name}", i + 1)))
    };
    let vector = |i: usize| ctx.vector(arg(i)?, ts);
    let scalar = |i: usize| ctx.scalar(arg(i)?, ts);
    let string = |i: usize| -> Result<String> {
        match ctx.eval(arg(i)?, ts)? {
            Value::String(s) => Ok(s),
            other => eval_err(format!("expected string, got {}", other.type_name())),
        }
    };

    let out = match name {
        "time" => return Ok(Value::Scalar(ts as f64 / 1000.0)),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "scalar" => {
            let v = vector(0)?;
            return Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "vector" => vec![Sample {
            metric: Labels::new(),
            t: ts,
            v: scalar(0)?,
        }],
        "abs" => map(vector(0)?, ts, f64::abs),
        "ceil" => map(vector(0)?, ts, f64::ceil),
        "floor" => map(vector(0)?, ts, f64::floor),
        "exp" => map(vector(0)?, ts, f64::exp),
        "sqrt" => map(vector(0)?, ts, f64::sqrt),
        "ln" => map(vector(0)?, ts, f64::ln),
        "log2" => map(vector(0)?, ts, f64::log2),
        "log10" => map(vector(0)?, ts, f64::log10),
        "sin" => map(vector(0)?, ts, f64::sin),
        "cos" => map(vector(0)?, ts, f64::cos),
        "tan" => map(vector(0)?, ts, f64::tan),
        "asin" => map(vector(0)?, ts, f64::asin),
        "acos" => map(vector(0)?, ts, f64::acos),
        "atan" => map(vector(0)?, ts, f64::atan),
        "sinh" => map(vector(0)?, ts, f64::sinh),
        "cosh" => map(vector(0)?, ts, f64::cosh),
        "tanh" => map(vector(0)?, ts, f64::tanh),
        "asinh" => map(vector(0)?, ts, f64::asinh),
        "acosh" => map(vector(0)?, ts, f64::acosh),
        "atanh" => map(vector(0)?, ts, f64::atanh),
        "deg" => map(vector(0)?, ts, |v| v * 180.0 / std::f64::consts::PI),
        "rad" => map(vector(0)?, ts, |v| v * std::f64::consts::PI / 180.0),
        "sgn" => map(vector(0)?, ts, |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }),
        "round" => {
            let to = if args.len() > 1 { scalar(1)? } else { 1.0 };
            let inv = 1.0 / to;
            map(vector(0)?, ts, |v| (v * inv + 0.5).floor() / inv)
        }
        "clamp" => {
            let (lo, hi) = (scalar(1)?, scalar(2)?);
            if hi < lo {
                Vec::new()
            } else {
                map(vector(0)?, ts, |v| go_max(lo, go_min(hi, v)))
            }
        }
        "clamp_min" => {
            let lo = scalar(1)?;
            map(vector(0)?, ts, |v| go_max(lo, v))
        }
        "clamp_max" => {
            let hi = scalar(1)?;
            map(vector(0)?, ts, |v| go_min(hi, v))
        }
        "timestamp" => {
            // Straight over a selector, the stored sample's time; otherwise the evaluation time.
            let direct = matches!(unparen(arg(0)?), Expr::VectorSelector(_));
            vector(0)?
                .into_iter()
                .map(|s| Sample {
                    metric: s.metric.without_name(),
                    t: ts,
                    v: if direct { s.t } else { ts } as f64 / 1000.0,
                })
                .collect()
        }
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            let input = if args.is_empty() {
                vec![Sample {
                    metric: Labels::new(),
                    t: ts,
                    v: ts as f64 / 1000.0,
                }]
            } else {
                vector(0)?
            };
            input
                .into_iter()
                .map(|s| Sample {
                    metric: s.metric.without_name(),
                    t: ts,
                    v: date_part(name, s.v),
                })
                .collect()
        }
        "sort" | "sort_desc" => {
            let mut v = vector(0)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.v.total_cmp(&a.v),
                _ => a.v.total_cmp(&b.v),
            });
            v
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = vector(0)?;
            let mut names = Vec::new();
            for i in 1..args.len() {
                names.push(string(i)?);
            }
            v.sort_by(|a, b| {
                for n in &names {
                    let o = natural_cmp(a.metric.get(n), b.metric.get(n));
                    if o != std::cmp::Ordering::Equal {
                        return o;
                    }
                }
                a.metric.cmp(&b.metric)
            });
            if name == "sort_by_label_desc" {
                v.reverse();
            }
            v
        }
        "label_replace" => {
            let v = vector(0)?;
            let (dst, repl, src, re) = (string(1)?, string(2)?, string(3)?, string(4)?);
            let regex = Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
                Error::Eval(format!(
                    "invalid regular expression in label_replace(): {re}: {e}"
                ))
            })?;
            if !valid_label_name(&dst) {
                return eval_err(format!(
                    "invalid destination label name in label_replace(): {dst}"
                ));
            }
            v.into_iter()
                .map(|mut s| {
                    if let Some(caps) = regex.captures(s.metric.get(&src)) {
                        let mut res = String::new();
                        caps.expand(&repl, &mut res);
                        s.metric.set(&dst, res);
                    }
                    s.t = ts;
                    s
                })
                .collect()
        }
        "label_join" => {
            let v = vector(0)?;
            let (dst, sep) = (string(1)?, string(2)?);
            let mut srcs = Vec::new();
            for i in 3..args.len() {
                srcs.push(string(i)?);
            }
            if !valid_label_name(&dst) {
                return eval_err(format!(
                    "invalid destination label name in label_join(): {dst}"
                ));
            }
            for s in &srcs {
                if !valid_label_name(s) {
                    return eval_err(format!("invalid source label name in label_join(): {s}"));
                }
            }
            v.into_iter()
                .map(|mut s| {
                    let joined: Vec<&str> = srcs.iter().map(|n| s.metric.get(n)).collect();
                    let joined = joined.join(&sep);
                    s.metric.set(&dst, joined);
                    s.t = ts;
                    s
                })
                .collect()
        }
        "absent" => {
            if vector(0)?.is_empty() {
                vec![Sample {
                    metric: absent_labels(arg(0)?),
                    t: ts,
                    v: 1.0,
                }]
            } else {
                Vec::new()
            }
        }
        "histogram_quantile" => {
            let q = scalar(0)?;
            histogram_quantile(q, vector(1)?, ts)
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" | "histogram_fraction" => {
            // These read native histograms only; float samples yield nothing.
            vector(0)?;
            Vec::new()
        }
        "info" => return Err(Error::Unsupported("info() (experimental)".into())),
        _ => return range_function(ctx, name, &args, ts),
    };
    Ok(Value::Vector(out))
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

/// Applies `f` to every sample; the result is no longer the same metric, so the name goes.
fn map(v: Vec<Sample>, ts: i64, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    v.into_iter()
        .map(|s| Sample {
            metric: s.metric.without_name(),
            t: ts,
            v: f(s.v),
        })
        .collect()
}

/// The labels `absent(x{a="b"})` reports: equality matchers, except names matched twice.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut l = Labels::new();
    let mut has = crate::hash::HashSet::default();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name) {
            l.set(&m.name, m.value.clone());
            has.insert(m.name.clone());
        } else {
            l.remove(&m.name);
        }
    }
    l
}

fn date_part(name: &str, v: f64) -> f64 {
    if !v.is_finite() {
        return f64::NAN;
    }
    let secs = v.floor() as i64;
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let (y, m, d) = civil::from_days(days);
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_month" => d as f64,
        "day_of_year" => (days - civil::to_days(y, 1, 1) + 1) as f64,
        "days_in_month" => civil::days_in_month(y, m) as f64,
        "month" => m as f64,
        _ => y as f64,
    }
}

/// Compares strings with runs of digits ordered by value ("a2" < "a10").
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i])
                .unwrap_or("")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j])
                .unwrap_or("")
                .trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[derive(Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// `histogram_quantile` over classic buckets: series grouped by their labels without `le`.
fn histogram_quantile(q: f64, v: Vec<Sample>, ts: i64) -> Vec<Sample> {
    let mut index: crate::hash::HashMap<Labels, usize> = Default::default();
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    for s in v {
        let le = s.metric.get("le");
        if le.is_empty() {
            continue;
        }
        let Ok(upper) = parse_go_float(le) else {
            continue;
        };
        let mut key = s.metric.without_name();
        key.remove("le");
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(Bucket { upper, count: s.v });
    }
    groups
        .into_iter()
        .map(|(metric, mut b)| Sample {
            metric,
            t: ts,
            v: bucket_quantile(q, &mut b),
        })
        .collect()
}

/// Parses a float the way Go's `strconv.ParseFloat` reads `le` values (`+Inf`, `1e3`, …).
pub(crate) fn parse_go_float(s: &str) -> std::result::Result<f64, ()> {
    match s.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Ok(f64::INFINITY),
        "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| ()),
    }
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn bucket_quantile(q: f64, buckets: &mut [Bucket]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with the same bound (e.g. "1" and "1.0") are one bucket.
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(*b),
        }
    }
    // Counts must not decrease; tiny decreases are floating-point noise.
    let mut prev = merged[0].count;
    for b in merged.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) || curr < prev {
            b.count = prev;
            continue;
        }
        prev = curr;
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = merged.len();
    let b = merged[..n - 1]
        .iter()
        .position(|x| x.count >= rank)
        .unwrap_or(n - 1);
    if b == n - 1 {
        return merged[n - 2].upper;
    }
    if b == 0 && merged[0].upper <= 0.0 {
        return merged[0].upper;
    }
    let mut start = 0.0;
    let end = merged[b].upper;
    let mut count = merged[b].count;
    if b > 0 {
        start = merged[b - 1].upper;
        count -= merged[b - 1].count;
        rank -= merged[b - 1].count;
    }
    start + (end - start) * (rank / count)
}

/// A range function applied to one series; `None` means no output for it.
type PerSeries = Box<dyn Fn(&Series) -> Option<f64>>;

/// Functions over a range vector (`rate`, `*_over_time`, …) and `absent_over_time`.
fn range_function(ctx: &Ctx, name: &str, args: &[&Expr], ts: i64) -> Result<Value> {
    // quantile_over_time(φ, range) is the one function whose range argument comes second.
    let matrix_index = usize::from(name == "quantile_over_time");
    let Some(m) = args.get(matrix_index) else {
        return eval_err(format!("missing range argument to {name}"));
    };
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let scalar_arg = |i: usize| -> Result<f64> {
        match args.get(i) {
            Some(e) => ctx.scalar(e, ts),
            None => eval_err(format!("missing argument {} to {name}", i + 1)),
        }
    };
    let RangeArg { series, start, end } = ctx.range_arg(m, ts)?;
    if name == "absent_over_time" {
        let out = if series.is_empty() {
            vec![Sample {
                metric: absent_labels(unparen(m)),
                t: ts,
                v: 1.0,
            }]
        } else {
            Vec::new()
        };
        return Ok(Value::Vector(out));
    }
    let range_secs = (end - start) as f64 / 1000.0;
    let f: PerSeries = match name {
        "rate" => Box::new(move |s| extrapolated(s, start, end, true, true, range_secs)),
        "increase" => Box::new(move |s| extrapolated(s, start, end, true, false, range_secs)),
        "delta" => Box::new(move |s| extrapolated(s, start, end, false, false, range_secs)),
        "irate" => Box::new(|s| instant_delta(s, true)),
        "idelta" => Box::new(|s| instant_delta(s, false)),
        "deriv" => Box::new(|s| {
            (s.points.len() >= 2).then(|| linear_regression(&s.points, s.points[0].0).0)
        }),
        "predict_linear" => {
            let d = scalar_arg(1)?;
            Box::new(move |s| {
                (s.points.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(&s.points, ts);
                    slope * d + intercept
                })
            })
        }
        "changes" => Box::new(|s| {
            let mut n = 0.0;
            for w in s.points.windows(2) {
                let (p, c) = (w[0].1, w[1].1);
                if !(c == p || (c.is_nan() && p.is_nan())) {
                    n += 1.0;
                }
            }
            Some(n)
        }),
        "resets" => {
            Box::new(|s| Some(s.points.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64))
        }
        "avg_over_time" => Box::new(|s| {
            let mut m = Mean::default();
            s.points.iter().for_each(|p| m.add(p.1));
            Some(m.value())
        }),
        "sum_over_time" => Box::new(|s| {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in &s.points {
                (sum, c) = kahan::sum_inc(p.1, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }),
        "count_over_time" => Box::new(|s| Some(s.points.len() as f64)),
        "min_over_time" => Box::new(|s| {
            let mut v = s.points[0].1;
            for p in &s.points[1..] {
                if p.1 < v || v.is_nan() {
                    v = p.1;
                }
            }
            Some(v)
        }),
        "max_over_time" => Box::new(|s| {
            let mut v = s.points[0].1;
            for p in &s.points[1..] {
                if p.1 > v || v.is_nan() {
                    v = p.1;
                }
            }
            Some(v)
        }),
        "last_over_time" => Box::new(|s| s.points.last().map(|p| p.1)),
        "first_over_time" => Box::new(|s| s.points.first().map(|p| p.1)),
        "ts_of_last_over_time" => Box::new(|s| s.points.last().map(|p| p.0 as f64 / 1000.0)),
        "ts_of_first_over_time" => Box::new(|s| s.points.first().map(|p| p.0 as f64 / 1000.0)),
        "ts_of_min_over_time" | "ts_of_max_over_time" => {
            let want_max = name == "ts_of_max_over_time";
            Box::new(move |s| {
                let mut best = s.points[0];
                for &p in &s.points[1..] {
                    let better = if want_max {
                        p.1 >= best.1
                    } else {
                        p.1 <= best.1
                    };
                    if better || best.1.is_nan() {
                        best = p;
                    }
                }
                Some(best.0 as f64 / 1000.0)
            })
        }
        "present_over_time" => Box::new(|_| Some(1.0)),
        "stddev_over_time" => Box::new(|s| Some(stdvar_over_time(s).sqrt())),
        "stdvar_over_time" => Box::new(|s| Some(stdvar_over_time(s))),
        "quantile_over_time" => {
            let q = scalar_arg(0)?;
            Box::new(move |s| {
                let mut v: Vec<f64> = s.points.iter().map(|p| p.1).collect();
                Some(kahan::quantile(q, &mut v))
            })
        }
        "mad_over_time" => Box::new(|s| {
            let mut v: Vec<f64> = s.points.iter().map(|p| p.1).collect();
            let median = kahan::quantile(0.5, &mut v);
            let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
            Some(kahan::quantile(0.5, &mut dev))
        }),
        "double_exponential_smoothing" | "holt_winters" => {
            let (sf, tf) = (scalar_arg(1)?, scalar_arg(2)?);
            if series.is_empty() {
                return Ok(Value::Vector(Vec::new()));
            }
            if sf <= 0.0 || sf >= 1.0 {
                return eval_err(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
                ));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return eval_err(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
                ));
            }
            Box::new(move |s| double_exponential_smoothing(s, sf, tf))
        }
        _ => return Err(Error::Unsupported(format!("function {name}"))),
    };
    let out = series
        .iter()
        .filter_map(|s| {
            f(s).map(|v| Sample {
                metric: if keep_name {
                    s.metric.clone()
                } else {
                    s.metric.without_name()
                },
                t: ts,
                v,
            })
        })
        .collect();
    Ok(Value::Vector(out))
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated to its edges
/// unless the series starts or ends well inside it, and never below a counter's zero.
fn extrapolated(
    s: &Series,
    range_start: i64,
    range_end: i64,
    counter: bool,
    rate: bool,
    range_secs: f64,
) -> Option<f64> {
    let p = &s.points;
    if p.len() < 2 {
        return None;
    }
    let (first_t, first_v) = p[0];
    let (last_t, last_v) = p[p.len() - 1];
    let mut result = last_v - first_v;
    if counter {
        let mut last = 0.0;
        for &(_, v) in p {
            if v < last {
                result += last;
            }
            last = v;
        }
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_interval = sampled / (p.len() - 1) as f64;
    let threshold = avg_interval * 1.1;
    if to_start >= threshold {
        to_start = avg_interval / 2.0;
    }
    if counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_interval / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if rate {
        factor /= range_secs;
    }
    Some(result * factor)
}

fn instant_delta(s: &Series, rate: bool) -> Option<f64> {
    let p = &s.points;
    if p.len() < 2 {
        return None;
    }
    let (prev_t, prev_v) = p[p.len() - 2];
    let (last_t, last_v) = p[p.len() - 1];
    let mut v = last_v - prev_v;
    if rate && last_v < prev_v {
        v = last_v;
    }
    let interval = last_t - prev_t;
    if interval == 0 {
        return None;
    }
    if rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit of value over time (seconds since `intercept_t`): slope and intercept.
fn linear_regression(points: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in points.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan::sum_inc(x, sx, cx);
        (sy, cy) = kahan::sum_inc(v, sy, cy);
        (sxy, cxy) = kahan::sum_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan::sum_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn stdvar_over_time(s: &Series) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in &s.points {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan::sum_inc(delta / count, mean, cmean);
        (aux, caux) = kahan::sum_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

fn double_exponential_smoothing(s: &Series, sf: f64, tf: f64) -> Option<f64> {
    let p = &s.points;
    if p.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, p[0].1);
    let mut b = p[1].1 - p[0].1;
    for (i, &(_, v)) in p.iter().enumerate().skip(1) {
        // The trend is smoothed from the second step on.
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let next = sf * v + (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = next;
    }
    Some(s1)
}

/// Proleptic Gregorian calendar arithmetic on day numbers since 1970-01-01.
mod civil {
    /// (year, month 1–12, day 1–31) of a day number.
    pub fn from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    /// The day number of a date.
    pub fn to_days(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = m as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn days_in_month(y: i64, m: u32) -> u32 {
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        (to_days(ny, nm, 1) - to_days(y, m, 1)) as u32
    }
}

/// (year, month, day) of a day number since 1970-01-01, proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    civil::from_days(days)
}

/// The day number since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    civil::to_days(y, m, d)
}
