//! `vigie-router test rules`: promtool's rule unit-test format. Input series are loaded in the
//! series notation, the rule groups are evaluated every `evaluation_interval` from 0 to the
//! last `eval_time`, firing alerts are compared at each alert test's time, then PromQL
//! expressions are checked against the resulting data.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use vigie_promql::notation::{parse_duration, parse_labels, parse_values, split_series};
use vigie_promql::{Engine, Labels, MemoryStorage, Value, format_go_float};

use crate::alerting::Context;
use crate::rules::file;
use std::cell::RefCell;

use crate::rules::group::{GroupState, Local, RuleState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    fuzzy_compare: bool,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: String,
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    start_timestamp: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: String,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// Options of `test rules`.
#[derive(Debug, Default)]
pub struct Options {
    /// Only test groups whose name matches one of these.
    pub run: Vec<Regex>,
}

/// Runs one test file; returns the report text and whether it passed.
pub fn run_file(path: &Path, opts: &Options) -> (String, bool) {
    let mut out = format!("Unit Testing:  {}\n", path.display());
    match run(path, opts) {
        Ok(errors) if errors.is_empty() => {
            out.push_str("  SUCCESS\n");
            (out, true)
        }
        Ok(errors) => {
            out.push_str("  FAILED:\n");
            for e in errors {
                out.push_str(&e);
                out.push('\n');
            }
            (out, false)
        }
        Err(e) => {
            let _ = writeln!(out, "  FAILED:\n    {e}");
            (out, false)
        }
    }
}

fn duration(s: &str, field: &str) -> Result<i64, String> {
    parse_duration(s).map_err(|e| format!("{field}: {e}"))
}

/// Go's `model.Duration.String()`: `1h5m`, `30s`, `0s`.
fn show_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("y", 31_536_000_000),
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

fn run(path: &Path, opts: &Options) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let tf: TestFile = serde_saphyr::from_str(&text)
        .map_err(|e| file::yaml_error(&path.display().to_string(), &e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let eval_interval = match &tf.evaluation_interval {
        Some(s) => duration(s, "evaluation_interval")?,
        None => 60_000,
    };
    if eval_interval <= 0 {
        return Err("evaluation_interval must be positive".into());
    }
    // Rule files, relative to the test file, globs expanded.
    let patterns: Vec<PathBuf> = tf.rule_files.iter().map(|p| base.join(p)).collect();
    let mut groups = file::load_all(&patterns).map_err(|e| e.join("\n"))?;
    if !tf.group_eval_order.is_empty() {
        let order: HashMap<&str, usize> = tf
            .group_eval_order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        for g in &groups {
            if !order.contains_key(g.name.as_str()) {
                return Err(format!("group {:?} is missing in group_eval_order", g.name));
            }
        }
        groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(usize::MAX));
    }
    let mut errors = Vec::new();
    for tg in &tf.tests {
        if !opts.run.is_empty() && !opts.run.iter().any(|r| r.is_match(&tg.name)) {
            continue;
        }
        errors.extend(run_group(tg, &groups, eval_interval, tf.fuzzy_compare)?);
    }
    Ok(errors)
}

type AlertSet = Vec<(Labels, Labels)>;

fn show_alerts(v: &AlertSet) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|(l, a)| {
            format!(
                "\n    0:\n      Labels:{}\n      Annotations:{}\n",
                l.go_string(),
                a.go_string()
            )
        })
        .collect();
    format!("[{}]", parts.join(""))
}

fn run_group(
    tg: &TestGroup,
    groups: &[file::Group],
    eval_interval: i64,
    fuzzy: bool,
) -> Result<Vec<String>, String> {
    let interval = match &tg.interval {
        Some(s) => duration(s, "interval")?,
        None => eval_interval,
    };
    let start = (tg.start_timestamp.unwrap_or(0.0) * 1000.0) as i64;
    let mut storage = MemoryStorage::new();
    for s in &tg.input_series {
        let (labels, rest) =
            split_series(&s.series).map_err(|e| format!("series {:?}: {e}", s.series))?;
        if !rest.is_empty() {
            return Err(format!("series {:?}: unexpected text {rest:?}", s.series));
        }
        let values = parse_values(&s.values).map_err(|e| format!("values {:?}: {e}", s.values))?;
        for (k, v) in values.into_iter().enumerate() {
            if let Some(v) = v {
                storage.append(&labels, start + k as i64 * interval, v);
            }
        }
    }
    let engine = Engine {
        subquery_step_ms: eval_interval,
        ..Engine::default()
    };
    let external: Vec<(String, String)> = tg.external_labels.clone().into_iter().collect();
    let ctx = Context {
        external_labels: &external,
        external_url: &tg.external_url,
    };
    let mut states: Vec<GroupState> = groups.iter().cloned().map(GroupState::new).collect();

    let mut alert_times: Vec<(i64, usize)> = Vec::new();
    for (i, t) in tg.alert_rule_test.iter().enumerate() {
        if t.alertname.is_empty() {
            return Err("alertname can't be empty".into());
        }
        alert_times.push((duration(&t.eval_time, "eval_time")?, i));
    }
    alert_times.sort();
    let mut max_eval = alert_times.last().map_or(0, |t| t.0);
    for t in &tg.promql_expr_test {
        max_eval = max_eval.max(duration(&t.eval_time, "eval_time")?);
    }

    let name_line = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let mut errors = Vec::new();
    let mut next_alert = 0;
    let mut ts = 0;
    while ts <= max_eval {
        let mut eval_errors = Vec::new();
        let backend = Local {
            engine: &engine,
            storage: RefCell::new(&mut storage),
        };
        for g in states.iter_mut() {
            g.eval(&backend, start + ts, &ctx);
            for r in &g.rules {
                if let Some(e) = r.last_error() {
                    eval_errors.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name(),
                        show_duration(ts)
                    ));
                }
            }
        }
        if !eval_errors.is_empty() {
            errors.extend(eval_errors);
            return Ok(errors);
        }
        while next_alert < alert_times.len()
            && ts <= alert_times[next_alert].0
            && alert_times[next_alert].0 < ts + eval_interval
        {
            let (t, i) = alert_times[next_alert];
            let test = &tg.alert_rule_test[i];
            let mut got: AlertSet = Vec::new();
            for g in &states {
                for r in &g.rules {
                    if let RuleState::Alerting { rule, .. } = r
                        && rule.rule.name == test.alertname
                    {
                        for a in rule.firing() {
                            got.push((a.labels.clone(), Labels::from_pairs(a.annotations.clone())));
                        }
                    }
                }
            }
            let mut exp: AlertSet = test
                .exp_alerts
                .iter()
                .map(|a| {
                    let mut l = Labels::from_pairs(a.exp_labels.clone());
                    l.set("alertname", test.alertname.clone());
                    (l, Labels::from_pairs(a.exp_annotations.clone()))
                })
                .collect();
            got.sort();
            exp.sort();
            if got != exp {
                errors.push(format!(
                    "{name_line}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                    test.alertname,
                    show_duration(t),
                    show_alerts(&exp),
                    show_alerts(&got)
                ));
            }
            next_alert += 1;
        }
        ts += eval_interval;
    }

    'tests: for t in &tg.promql_expr_test {
        let at = duration(&t.eval_time, "eval_time")?;
        let shown = show_duration(at);
        let got = match vigie_promql::parse(&t.expr)
            .and_then(|e| engine.instant(&storage, &e, start + at))
        {
            Ok(Value::Vector(v)) => v.into_iter().map(|s| (s.metric, s.v)).collect::<Vec<_>>(),
            Ok(Value::Scalar(v)) => vec![(Labels::new(), v)],
            Ok(_) => {
                errors.push(format!("{name_line}    expr: {:?}, time: {shown}, err: rule result is not a vector or scalar", t.expr));
                continue;
            }
            Err(e) => {
                errors.push(format!(
                    "{name_line}    expr: {:?}, time: {shown}, err: {e}",
                    t.expr
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in &t.exp_samples {
            match parse_labels(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errors.push(format!(
                        "{name_line}    expr: {:?}, time: {shown}, err: labels {:?}: {e}",
                        t.expr, s.labels
                    ));
                    continue 'tests;
                }
            }
        }
        let mut got = got;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && (g.1 == e.1 || (fuzzy && ulps_apart(g.1, e.1) <= 1)));
        if !same {
            let show = |v: &[(Labels, f64)]| {
                let parts: Vec<String> = v
                    .iter()
                    .map(|(l, x)| format!("{} {}", l.go_string(), format_go_float(*x)))
                    .collect();
                parts.join(", ")
            };
            errors.push(format!(
                "{name_line}    expr: {:?}, time: {shown},\n        exp: {}\n        got: {}",
                t.expr,
                show(&exp),
                show(&got)
            ));
        }
    }
    Ok(errors)
}

fn ulps_apart(a: f64, b: f64) -> u64 {
    if a.is_sign_negative() != b.is_sign_negative() {
        return if a == b { 0 } else { u64::MAX };
    }
    a.to_bits().abs_diff(b.to_bits())
}
