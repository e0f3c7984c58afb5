//! Prometheus' PromQL test-script format (`promql/promqltest`): `load`, `clear`, `eval instant`,
//! `eval range`, expectations and expected results. Each eval yields one [`Outcome`].

use std::collections::HashSet;

use promql_parser::parser::Expr;
use regex::Regex;

use crate::engine::Engine;
use crate::error::Error;
use crate::notation::{SeqValue, parse_duration, parse_values, split_series};
use crate::storage::MemoryStorage;
use crate::value::{Labels, Value};

/// The verdict on one `eval` statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    Fail(String),
    /// A feature this engine does not implement (native histograms, annotations, …).
    Skip(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 1-based line of the `eval` statement.
    pub line: usize,
    pub verdict: Verdict,
}

/// What an eval expects besides its result lines.
#[derive(Debug, Default)]
struct Expect {
    fail: Option<FailMatch>,
    ordered: bool,
    annotations: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
}

#[derive(Debug)]
enum FailMatch {
    Any,
    Msg(String),
    Regex(String),
}

/// One expected series (or scalar, when `labels` is `None`).
#[derive(Debug)]
struct Expected {
    labels: Option<Labels>,
    values: Vec<SeqValue>,
}

enum Query {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

/// Runs a whole script; a malformed command is reported as a failure at its line.
pub fn run(script: &str, engine: &Engine) -> Vec<Outcome> {
    let lines: Vec<&str> = script.lines().collect();
    let mut storage = MemoryStorage::new();
    // Metric names whose samples are native histograms: evals that read them are skipped.
    let mut histogram_names: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut i = 0;
    let is_blank = |l: &str| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    };
    while i < lines.len() {
        let line = lines[i].trim();
        if is_blank(line) {
            i += 1;
            continue;
        }
        let lineno = i + 1;
        let lower = line.to_ascii_lowercase();
        // The block: this command's following non-blank lines.
        let mut j = i + 1;
        while j < lines.len() && !is_blank(lines[j]) {
            j += 1;
        }
        let block: Vec<(usize, &str)> = (i + 1..j).map(|k| (k + 1, lines[k].trim())).collect();
        if lower == "clear" {
            // A one-line command: the next line may start another.
            i += 1;
            storage.clear();
            histogram_names.clear();
            continue;
        }
        i = j;
        if lower.starts_with("load") {
            if let Err(e) = load(line, &block, &mut storage, &mut histogram_names) {
                out.push(Outcome {
                    line: lineno,
                    verdict: Verdict::Fail(format!("load: {e}")),
                });
            }
        } else if lower.starts_with("eval") {
            let verdict =
                eval(line, &block, &storage, &histogram_names, engine).unwrap_or_else(|e| e);
            out.push(Outcome {
                line: lineno,
                verdict,
            });
        } else {
            out.push(Outcome {
                line: lineno,
                verdict: Verdict::Fail(format!("unknown command {line:?}")),
            });
        }
    }
    out
}

fn load(
    cmd: &str,
    block: &[(usize, &str)],
    storage: &mut MemoryStorage,
    histograms: &mut HashSet<String>,
) -> Result<(), String> {
    let mut words = cmd.split_whitespace();
    let kind = words.next().unwrap_or_default().to_ascii_lowercase();
    let step =
        parse_duration(words.next().ok_or("load needs a step")?).map_err(|e| e.to_string())?;
    for &(lineno, line) in block {
        let (labels, values) = split_series(line).map_err(|e| format!("line {lineno}: {e}"))?;
        if let Some(base) = labels.name().strip_suffix("_bucket")
            && kind == "load_with_nhcb"
        {
            histograms.insert(base.to_string());
        }
        let values = match parse_values(values) {
            Ok(v) => v,
            Err(Error::Unsupported(_)) => {
                histograms.insert(labels.name().to_string());
                continue;
            }
            Err(e) => return Err(format!("line {lineno}: {e}")),
        };
        for (k, v) in values.into_iter().enumerate() {
            if let Some(v) = v {
                storage.append(&labels, k as i64 * step, v);
            }
        }
    }
    Ok(())
}

fn selects_histogram(expr: &Expr, names: &HashSet<String>) -> bool {
    if names.is_empty() {
        return false;
    }
    let text = expr.to_string();
    names.iter().any(|n| {
        text.match_indices(n.as_str()).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + n.len()..].chars().next();
            let ident =
                |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            !ident(before) && !ident(after)
        })
    })
}

fn parse_cmd(cmd: &str) -> Result<(Query, &str, Expect), Verdict> {
    let bad = |why: &str| Verdict::Fail(format!("invalid eval command {cmd:?}: {why}"));
    let (head, rest) = cmd
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("no expression"))?;
    let mut expect = Expect::default();
    match head.to_ascii_lowercase().as_str() {
        "eval" => {}
        "eval_fail" => expect.fail = Some(FailMatch::Any),
        "eval_ordered" => expect.ordered = true,
        "eval_warn" | "eval_info" => expect.annotations = true,
        _ => return Err(bad("unknown command")),
    }
    let rest = rest.trim_start();
    let dur = |s: &str| parse_duration(s).map_err(|e| bad(&e.to_string()));
    if let Some(r) = strip_word(rest, "instant") {
        let (t, expr) = match strip_word(r, "at") {
            Some(r) => {
                let (t, e) = r
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| bad("no expression"))?;
                (dur(t)?, e)
            }
            None => (0, r),
        };
        Ok((Query::Instant(t), expr.trim(), expect))
    } else if let Some(r) = strip_word(rest, "range") {
        let re = Regex::new(r"^from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$")
            .map_err(|e| bad(&e.to_string()))?;
        let c = re
            .captures(r)
            .ok_or_else(|| bad("expected 'from T to T step D EXPR'"))?;
        Ok((
            Query::Range {
                start: dur(&c[1])?,
                end: dur(&c[2])?,
                step: dur(&c[3])?,
            },
            c.get(4).map_or("", |m| m.as_str()).trim(),
            expect,
        ))
    } else {
        Err(bad("expected 'instant' or 'range'"))
    }
}

fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let r = s.strip_prefix(word)?;
    r.starts_with(char::is_whitespace).then(|| r.trim_start())
}

fn parse_block(block: &[(usize, &str)], expect: &mut Expect) -> Result<Vec<Expected>, Verdict> {
    let range_re = Regex::new(r"^vector\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$")
        .map_err(|e| Verdict::Fail(e.to_string()))?;
    let mut expected = Vec::new();
    for &(lineno, line) in block {
        let bad = |why: String| Verdict::Fail(format!("line {lineno}: {why}"));
        if let Some(r) = strip_word(line, "expect") {
            let (what, detail) = match r.split_once(char::is_whitespace) {
                Some((w, d)) => (w, d.trim()),
                None => (r, ""),
            };
            match what {
                "fail" => {
                    expect.fail = Some(if let Some(m) = detail.strip_prefix("msg:") {
                        FailMatch::Msg(m.trim().to_string())
                    } else if let Some(m) = detail.strip_prefix("regex:") {
                        FailMatch::Regex(m.trim().to_string())
                    } else {
                        FailMatch::Any
                    })
                }
                "ordered" => expect.ordered = true,
                "warn" | "info" => expect.annotations = true,
                "no_warn" | "no_info" => {}
                "string" => {
                    let s = detail.trim();
                    let unq = s
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .ok_or_else(|| bad(format!("expected a quoted string, got {s}")))?;
                    expect.string = Some(unescape(unq));
                }
                "range" => {
                    let c = range_re
                        .captures(detail)
                        .ok_or_else(|| bad("expected 'range vector from T to T step D'".into()))?;
                    let d = |s: &str| parse_duration(s).map_err(|e| bad(e.to_string()));
                    expect.range_vector = Some((d(&c[1])?, d(&c[2])?, d(&c[3])?));
                }
                other => return Err(bad(format!("unknown expectation {other:?}"))),
            }
            continue;
        }
        if line.contains("{{") {
            return Err(Verdict::Skip("expects native histogram samples".into()));
        }
        // A bare number is an expected scalar.
        if !line.contains(char::is_whitespace)
            && let Ok(values) = parse_values(line)
        {
            expected.push(Expected {
                labels: None,
                values,
            });
            continue;
        }
        let (labels, values) = split_series(line).map_err(|e| bad(e.to_string()))?;
        let values = parse_values(values).map_err(|e| bad(e.to_string()))?;
        expected.push(Expected {
            labels: Some(labels),
            values,
        });
    }
    Ok(expected)
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn eval(
    cmd: &str,
    block: &[(usize, &str)],
    storage: &MemoryStorage,
    histograms: &HashSet<String>,
    engine: &Engine,
) -> Result<Verdict, Verdict> {
    let (query, text, mut expect) = parse_cmd(cmd)?;
    let expected = parse_block(block, &mut expect)?;
    let expr = match crate::parse::parse(text) {
        Ok(e) => e,
        Err(e) => {
            return Ok(match &expect.fail {
                Some(_) => Verdict::Pass,
                None => Verdict::Skip(format!("expression not accepted by the parser: {e}")),
            });
        }
    };
    if selects_histogram(&expr, histograms) {
        return Ok(Verdict::Skip("reads native histogram samples".into()));
    }
    let result = match query {
        Query::Instant(t) => engine.instant(storage, &expr, t),
        Query::Range { start, end, step } => engine
            .range(storage, &expr, start, end, step)
            .map(Value::Matrix),
    };
    let result = match (result, &expect.fail) {
        (Err(Error::Unsupported(why)), _) => return Ok(Verdict::Skip(why)),
        (Err(e), None) => return Ok(Verdict::Fail(format!("unexpected error: {e}"))),
        (Err(e), Some(m)) => {
            let msg = e.to_string();
            return Ok(match m {
                FailMatch::Any => Verdict::Pass,
                FailMatch::Msg(want) if *want == msg => Verdict::Pass,
                FailMatch::Msg(want) => {
                    Verdict::Fail(format!("expected error {want:?}, got {msg:?}"))
                }
                FailMatch::Regex(re) => match Regex::new(re) {
                    Ok(r) if r.is_match(&msg) => Verdict::Pass,
                    _ => Verdict::Fail(format!("expected error matching {re:?}, got {msg:?}")),
                },
            });
        }
        (Ok(_), Some(_)) => {
            return Ok(Verdict::Fail(
                "expected an error, evaluation succeeded".into(),
            ));
        }
        (Ok(v), None) => v,
    };
    let verdict = compare(&query, &expect, &expected, &result);
    Ok(match verdict {
        Verdict::Pass if expect.annotations => Verdict::Skip(
            "result matches, but the eval expects annotations, which are not produced".into(),
        ),
        v => v,
    })
}

fn floats_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let (abs_sum, diff) = (a.abs() + b.abs(), (a - b).abs());
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < 1e-6 * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < 1e-6
}

fn compare(query: &Query, expect: &Expect, expected: &[Expected], result: &Value) -> Verdict {
    let fail = |s: String| Verdict::Fail(s);
    match result {
        Value::String(s) => match &expect.string {
            Some(want) if want == s => Verdict::Pass,
            Some(want) => fail(format!("expected string {want:?}, got {s:?}")),
            None => fail(format!("unexpected string result {s:?}")),
        },
        _ if expect.string.is_some() => {
            fail(format!("expected a string, got {}", result.type_name()))
        }
        Value::Scalar(v) => match expected {
            [
                Expected {
                    labels: None,
                    values,
                },
            ] if values.len() == 1 => match values[0] {
                Some(want) if floats_equal(want, *v) => Verdict::Pass,
                want => fail(format!("expected scalar {want:?}, got {v}")),
            },
            _ => fail(format!("unexpected scalar result {v}")),
        },
        Value::Vector(samples) => {
            if let Some(e) = expected.iter().find(|e| e.labels.is_none()) {
                return fail(format!("expected scalar {:?}, got a vector", e.values));
            }
            if samples.len() != expected.len() {
                return fail(format!(
                    "expected {} samples, got {}: {}",
                    expected.len(),
                    samples.len(),
                    show_vector(samples)
                ));
            }
            for (k, e) in expected.iter().enumerate() {
                let labels = e.labels.as_ref().expect("scalars handled above");
                let want = match e.values.as_slice() {
                    [Some(v)] => *v,
                    _ => return fail(format!("expected sample for {labels} must have one value")),
                };
                let found = if expect.ordered {
                    samples.get(k).filter(|s| s.metric == *labels)
                } else {
                    samples.iter().find(|s| s.metric == *labels)
                };
                match found {
                    None if expect.ordered => {
                        return fail(format!(
                            "expected {labels} at position {k}: {}",
                            show_vector(samples)
                        ));
                    }
                    None => return fail(format!("missing {labels}; got {}", show_vector(samples))),
                    Some(s) if !floats_equal(want, s.v) => {
                        return fail(format!("{labels}: expected {want}, got {}", s.v));
                    }
                    Some(_) => {}
                }
            }
            Verdict::Pass
        }
        Value::Matrix(series) => {
            let (start, step) = match (query, expect.range_vector) {
                (Query::Range { start, step, .. }, _) => (*start, *step),
                (Query::Instant(_), Some((from, _, step))) => (from, step),
                (Query::Instant(_), None) => (0, 0),
            };
            if series.len() != expected.len() {
                return fail(format!(
                    "expected {} series, got {}",
                    expected.len(),
                    series.len()
                ));
            }
            for e in expected {
                let Some(labels) = &e.labels else {
                    return fail("expected a scalar, got a matrix".into());
                };
                let Some(s) = series.iter().find(|s| s.metric == *labels) else {
                    return fail(format!("missing series {labels}"));
                };
                let want: Vec<(usize, f64)> = e
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect();
                if want.len() != s.points.len() {
                    return fail(format!(
                        "{labels}: expected {} points, got {}: {:?}",
                        want.len(),
                        s.points.len(),
                        s.points
                    ));
                }
                for ((k, v), (t, got)) in want.iter().zip(&s.points) {
                    let at = start + *k as i64 * step;
                    if (step != 0 && at != *t) || !floats_equal(*v, *got) {
                        return fail(format!(
                            "{labels}: expected {v} at {}s, got {got} at {}s",
                            at as f64 / 1000.0,
                            *t as f64 / 1000.0
                        ));
                    }
                }
            }
            Verdict::Pass
        }
    }
}

fn show_vector(samples: &[crate::value::Sample]) -> String {
    let parts: Vec<String> = samples
        .iter()
        .map(|s| format!("{} {}", s.metric, s.v))
        .collect();
    format!("[{}]", parts.join(", "))
}
