//! Alert label and annotation templates in Prometheus' dialect of Go's `text/template`: the
//! `$labels` / `$value` / `$externalLabels` / `$externalURL` header, `missingkey=zero`, Go's
//! float spelling, and Prometheus' template functions (`humanize*`, `printf`, `match`, …).
//!
//! `gotmpl` runs the language. Two Go behaviours it lacks are restored here without patching
//! it: every printing action gets a final `__vigie_print` stage that spells floats as Go does
//! and renders a missing label as the empty string.

use std::collections::BTreeMap;
use std::sync::{Arc, mpsc};

use gotmpl::parse::{CommandNode, Expr as TExpr, ListNode, Node, SmolStr};
use gotmpl::{Template, TemplateError, Value};
use regex::Regex;
use vigie_exposition::float::go_string;

/// A query result as templates see it: each sample's labels and value.
pub type QueryResult = Result<Vec<(Vec<(String, String)>, f64)>, String>;

/// Runs a PromQL query for the template `query` function.
pub type QueryFn<'a> = &'a dyn Fn(&str) -> QueryResult;

/// What a template sees.
pub struct Data<'a> {
    pub labels: &'a [(String, String)],
    pub external_labels: &'a [(String, String)],
    pub external_url: &'a str,
    pub value: f64,
    /// The data source for `query`; without one, `query` is an error.
    pub query: Option<QueryFn<'a>>,
}

const HEADER: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";
const PRINT: &str = "__vigie_print";
const ENTRY: &str = "__vigie_entry";

/// Go's builtin template functions.
pub(crate) const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// Prometheus' template functions implemented here.
const FUNCTIONS: &[&str] = &[
    PRINT,
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toUpper",
    "toLower",
    "title",
    "match",
    "reReplaceAll",
    "safeHtml",
    "stripPort",
    "stripDomain",
    "urlQueryEscape",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "parseDuration",
    "toTime",
    "now",
    "query",
];

/// Parses a template as Prometheus does at rule-load time: syntax, and every function defined.
pub fn check(name: &str, text: &str) -> Result<(), String> {
    let t = build(name, text)?;
    let tree = t
        .lookup(ENTRY)
        .ok_or_else(|| format!("template {name} did not parse"))?;
    let mut undefined = None;
    visit_functions(tree, &mut |f| {
        if undefined.is_none() && !BUILTINS.contains(&f) && !FUNCTIONS.contains(&f) {
            undefined = Some(f.to_string());
        }
    });
    match undefined {
        Some(f) => Err(format!("template: {name}: function \"{f}\" not defined")),
        None => Ok(()),
    }
}

pub(crate) fn visit_functions(list: &ListNode, f: &mut impl FnMut(&str)) {
    fn pipe(p: &gotmpl::parse::PipeNode, f: &mut impl FnMut(&str)) {
        for c in &p.commands {
            for a in &c.args {
                match a {
                    TExpr::Identifier(_, name) => f(name),
                    TExpr::Pipe(_, inner) => pipe(inner, f),
                    _ => {}
                }
            }
        }
    }
    for node in &list.nodes {
        match node {
            Node::Action(a) => pipe(&a.pipe, f),
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                pipe(&b.pipe, f);
                visit_functions(&b.body, f);
                if let Some(e) = &b.else_body {
                    visit_functions(e, f);
                }
            }
            Node::List(l) => visit_functions(l, f),
            _ => {}
        }
    }
}

/// Expands `text`; an error is what Prometheus puts in its place.
pub fn expand(name: &str, text: &str, data: &Data) -> Result<String, String> {
    Expander::new(name, data).expand(text)
}

/// Expands several texts (an alert's labels and annotations) against the same data, which is
/// turned into template values once rather than once per text.
pub struct Expander<'a, 'd> {
    name: &'a str,
    data: &'a Data<'d>,
    value: std::cell::OnceCell<Value>,
}

impl<'a, 'd> Expander<'a, 'd> {
    pub fn new(name: &'a str, data: &'a Data<'d>) -> Self {
        Expander {
            name,
            data,
            value: std::cell::OnceCell::new(),
        }
    }

    pub fn expand(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        let name = self.name;
        let v = self.value.get_or_init(|| data_value(self.data));
        let exec = |t: &Template| {
            t.execute_template_to_string(ENTRY, v)
                .map_err(|e| format!("error executing template {name}: {e}"))
        };
        match self.data.query {
            Some(query) if text.contains("query") => with_query(name, text, query, exec),
            _ => exec(cached(name, text)?.as_ref()),
        }
    }

    /// [`Expander::expand`], with an error in place of the text as Prometheus does.
    pub fn expand_or_error(&self, text: &str) -> String {
        self.expand(text)
            .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
    }
}

/// Parsed templates by name and text: an alert's annotations are expanded at every evaluation
/// for every alert, and parsing dominates expanding.
fn cached(name: &str, text: &str) -> Result<Arc<Template>, String> {
    type Cache =
        std::collections::HashMap<String, std::collections::HashMap<String, Arc<Template>>>;
    static CACHE: std::sync::LazyLock<std::sync::Mutex<Cache>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(t) = CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .and_then(|texts| texts.get(text))
    {
        return Ok(Arc::clone(t));
    }
    let t = Arc::new(build(name, text)?);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    // Reloads leave old texts behind; a bound keeps them from piling up.
    if cache.values().map(|texts| texts.len()).sum::<usize>() > 10_000 {
        cache.clear();
    }
    cache
        .entry(name.to_string())
        .or_default()
        .insert(text.to_string(), Arc::clone(&t));
    Ok(t)
}

type Request = (String, mpsc::Sender<Result<Value, String>>);

/// Template functions must be `'static`, but the data source is borrowed for one evaluation:
/// the template runs on a scoped thread and asks this thread, which holds the data source,
/// for each query over a channel.
fn with_query(
    name: &str,
    text: &str,
    query: QueryFn,
    exec: impl FnOnce(&Template) -> Result<String, String> + Send,
) -> Result<String, String> {
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let t = build_with(name, text, move |t| {
                t.func("query", move |args| {
                    let (reply, answer) = mpsc::channel();
                    tx.send((str_arg(args, 0), reply))
                        .map_err(|_| err("query() is not available"))?;
                    answer
                        .recv()
                        .map_err(|_| err("query() is not available"))?
                        .map_err(err)
                })
            })?;
            exec(&t)
        });
        // Serve queries until the template is done and its functions (the senders) are gone.
        while let Ok((q, reply)) = rx.recv() {
            let result = query(&q).map(|samples| {
                let list: Vec<Value> = samples
                    .into_iter()
                    .map(|(labels, v)| {
                        let mut m: BTreeMap<Arc<str>, Value> = BTreeMap::new();
                        m.insert("Labels".into(), string_map(&labels));
                        m.insert("Value".into(), Value::Float(v));
                        Value::Map(Arc::new(m))
                    })
                    .collect();
                Value::List(list.into())
            });
            let _ = reply.send(result);
        }
        worker
            .join()
            .unwrap_or_else(|_| Err("template execution panicked".into()))
    })
}

fn string_map(pairs: &[(String, String)]) -> Value {
    let m: BTreeMap<Arc<str>, Value> = pairs
        .iter()
        .map(|(k, v)| (Arc::from(k.as_str()), Value::String(Arc::from(v.as_str()))))
        .collect();
    Value::Map(Arc::new(m))
}

/// Expands, and on failure yields Prometheus' `<error expanding template: …>` text.
pub fn expand_or_error(name: &str, text: &str, data: &Data) -> String {
    Expander::new(name, data).expand_or_error(text)
}

fn data_value(d: &Data) -> Value {
    let map = string_map;
    let mut top: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    top.insert("Labels".into(), map(d.labels));
    top.insert("ExternalLabels".into(), map(d.external_labels));
    top.insert(
        "ExternalURL".into(),
        Value::String(Arc::from(d.external_url)),
    );
    top.insert("Value".into(), Value::Float(d.value));
    Value::Map(Arc::new(top))
}

fn build(name: &str, text: &str) -> Result<Template, String> {
    build_with(name, text, |t| t)
}

/// Parses with Prometheus' functions plus what `extra` registers (before parsing, as gotmpl
/// requires).
fn build_with(
    name: &str,
    text: &str,
    extra: impl FnOnce(Template) -> Template,
) -> Result<Template, String> {
    let source = format!("{HEADER}{text}");
    let t = extra(with_functions(Template::new(name)))
        .parse(&source)
        .map_err(|e| without_header_offset(name, &e.to_string()))?;
    let mut tree = t
        .lookup(name)
        .cloned()
        .ok_or_else(|| format!("template {name} did not parse"))?;
    add_print_stage(&mut tree);
    Ok(t.add_parse_tree(ENTRY, tree))
}

/// Positions on the first line count the invisible header; report them as the user wrote them.
fn without_header_offset(name: &str, msg: &str) -> String {
    let marker = format!("{name}:1:");
    let Some(at) = msg.find(&marker) else {
        return msg.to_string();
    };
    let rest = &msg[at + marker.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    match rest[..digits].parse::<usize>() {
        Ok(col) if col > HEADER.len() => format!(
            "{}{marker}{}{}",
            &msg[..at],
            col - HEADER.len(),
            &rest[digits..]
        ),
        _ => msg.to_string(),
    }
}

/// Appends `| __vigie_print` to every action that prints.
fn add_print_stage(list: &mut ListNode) {
    for node in &mut list.nodes {
        match node {
            Node::Action(a) if a.pipe.decl.is_empty() => {
                let pos = a.pos;
                a.pipe.commands.push(CommandNode {
                    pos,
                    args: vec![TExpr::Identifier(pos, SmolStr::new(PRINT))],
                });
            }
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                add_print_stage(&mut b.body);
                if let Some(e) = &mut b.else_body {
                    add_print_stage(e);
                }
            }
            Node::List(l) => add_print_stage(l),
            _ => {}
        }
    }
}

type TResult = gotmpl::Result<Value>;

pub(crate) fn err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Exec(msg.into())
}

pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(Arc::from(v.into().as_str()))
}

/// A template argument as a float: numbers, or strings that parse (Prometheus' convertToFloat).
pub(crate) fn float_arg(args: &[Value], i: usize) -> gotmpl::Result<f64> {
    match args.get(i) {
        Some(Value::Float(f)) => Ok(*f),
        Some(Value::Int(n)) => Ok(*n as f64),
        Some(Value::Uint(n)) => Ok(*n as f64),
        Some(Value::String(t)) => {
            vigie_promql_float(t).ok_or_else(|| err(format!("can't convert {t:?} to float")))
        }
        Some(other) => Err(err(format!("can't convert {} to float", other.type_name()))),
        None => Err(err("missing argument")),
    }
}

fn vigie_promql_float(t: &str) -> Option<f64> {
    match t.trim() {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

pub(crate) fn str_arg(args: &[Value], i: usize) -> String {
    match args.get(i) {
        Some(Value::String(t)) => t.to_string(),
        Some(Value::Nil) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Go's `%.4g`: four significant digits, exponent outside [1e-4, 1e4), trailing zeros trimmed.
pub fn g4(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{v:.3e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..4).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (3 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        (v, prefix) = submultiple(v);
    }
    format!("{}{prefix}", g4(v))
}

/// Scales a value below 1 up by thousands: (scaled value, SI prefix).
fn submultiple(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", g4(v))
        };
    }
    let (v, prefix) = submultiple(v);
    format!("{}{prefix}s", g4(v))
}

/// Go's `time.Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(crate) fn go_time_string(secs: f64) -> String {
    let whole = secs.floor() as i64;
    let nanos = ((secs - secs.floor()) * 1e9).round() as i64;
    let days = whole.div_euclid(86400);
    let sod = whole.rem_euclid(86400);
    let (y, m, d) = vigie_promql::civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

fn sample_label(v: &Value, name: &str) -> String {
    v.field("Labels")
        .and_then(|l| l.field(name))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn with_functions(t: Template) -> Template {
    t.func(PRINT, |args| {
        Ok(match args.first() {
            Some(Value::Float(f)) => s(go_string(*f)),
            Some(Value::Nil) | None => s(""),
            Some(other) => other.clone(),
        })
    })
    .func("humanize", |a| Ok(s(humanize(float_arg(a, 0)?))))
    .func("humanize1024", |a| Ok(s(humanize1024(float_arg(a, 0)?))))
    .func("humanizeDuration", |a| {
        Ok(s(humanize_duration(float_arg(a, 0)?)))
    })
    .func("humanizePercentage", |a| {
        Ok(s(format!("{}%", g4(float_arg(a, 0)? * 100.0))))
    })
    .func("humanizeTimestamp", |a| {
        let v = float_arg(a, 0)?;
        Ok(s(if v.is_finite() {
            go_time_string(v)
        } else {
            g4(v)
        }))
    })
    .func("toUpper", |a| Ok(s(str_arg(a, 0).to_uppercase())))
    .func("toLower", |a| Ok(s(str_arg(a, 0).to_lowercase())))
    .func("title", |a| {
        let text = str_arg(a, 0);
        let mut out = String::with_capacity(text.len());
        let mut start = true;
        for c in text.chars() {
            if start && c.is_alphabetic() {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            start = !c.is_alphanumeric() && c != '_' && c != '\'';
        }
        Ok(s(out))
    })
    .func("match", |a| {
        let re = Regex::new(&str_arg(a, 0)).map_err(|e| err(e.to_string()))?;
        Ok(Value::Bool(re.is_match(&str_arg(a, 1))))
    })
    .func("reReplaceAll", |a| {
        let re = Regex::new(&str_arg(a, 0)).map_err(|e| err(e.to_string()))?;
        Ok(s(re
            .replace_all(&str_arg(a, 2), str_arg(a, 1).as_str())
            .into_owned()))
    })
    .func("safeHtml", |a| Ok(s(str_arg(a, 0))))
    .func("stripPort", |a| {
        let h = str_arg(a, 0);
        Ok(s(match h.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            _ => h,
        }))
    })
    .func("stripDomain", |a| {
        let h = str_arg(a, 0);
        let (host, port) = match h.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
                (host.to_string(), format!(":{port}"))
            }
            _ => (h.clone(), String::new()),
        };
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            return Ok(s(h));
        }
        Ok(s(format!("{}{port}", host.split('.').next().unwrap_or(""))))
    })
    .func("urlQueryEscape", |a| {
        Ok(s(gotmpl::url_encode(&str_arg(a, 0))))
    })
    .func("first", |a| match a.first() {
        Some(Value::List(l)) => l
            .first()
            .cloned()
            .ok_or_else(|| err("first() called on vector with no elements")),
        _ => Err(err("first() expects a query result")),
    })
    .func("label", |a| {
        Ok(s(a
            .get(1)
            .map(|v| sample_label(v, &str_arg(a, 0)))
            .unwrap_or_default()))
    })
    .func("value", |a| {
        Ok(a.first()
            .and_then(|v| v.field("Value").cloned())
            .unwrap_or(Value::Nil))
    })
    .func("strvalue", |a| {
        Ok(s(a
            .first()
            .map(|v| sample_label(v, "__value__"))
            .unwrap_or_default()))
    })
    .func("args", |a| {
        let m: BTreeMap<Arc<str>, Value> = a
            .iter()
            .enumerate()
            .map(|(i, v)| (Arc::from(format!("arg{i}").as_str()), v.clone()))
            .collect();
        Ok(Value::Map(Arc::new(m)))
    })
    .func("parseDuration", |a| {
        let d = vigie_promql::notation::parse_duration(&str_arg(a, 0))
            .map_err(|e| err(e.to_string()))?;
        Ok(Value::Float(d as f64 / 1000.0))
    })
    .func("toTime", |a| Ok(s(go_time_string(float_arg(a, 0)?))))
    .func("now", |_| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Ok(Value::Float(now))
    })
    .func("query", |_| -> TResult {
        Err(err("query() is not available in this context"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, value: f64) -> String {
        let labels = vec![
            ("__name__".to_string(), "up".to_string()),
            ("instance".to_string(), "host1:9100".to_string()),
            ("job".to_string(), "node".to_string()),
        ];
        let data = Data {
            labels: &labels,
            external_labels: &[("dc".to_string(), "par1".to_string())],
            external_url: "http://router:9093",
            value,
            query: None,
        };
        expand("t", text, &data).unwrap()
    }

    #[test]
    fn prometheus_spelling() {
        assert_eq!(run("{{ $value }}", 1e6), "1e+06");
        assert_eq!(run("{{ $value }}", 87.5), "87.5");
        assert_eq!(run("{{ .Value }}", f64::INFINITY), "+Inf");
        assert_eq!(
            run("{{ $labels.instance }} {{ $labels.missing }}.", 0.0),
            "host1:9100 ."
        );
        assert_eq!(
            run("{{ $labels }}", 0.0),
            "map[__name__:up instance:host1:9100 job:node]"
        );
        assert_eq!(
            run("{{ $externalLabels.dc }} {{ $externalURL }}", 0.0),
            "par1 http://router:9093"
        );
        assert_eq!(run(r#"{{ printf "%.2f" $value }}"#, 1e6), "1000000.00");
        assert_eq!(run(r#"{{ $value | printf "%.4g" }}"#, 87.123456), "87.12");
        assert_eq!(
            run("{{ if gt $value 80.0 }}high{{ else }}low{{ end }}", 90.0),
            "high"
        );
        assert_eq!(
            run("{{ $labels.instance | stripPort | toUpper }}", 0.0),
            "HOST1"
        );
    }

    #[test]
    fn humanizers() {
        assert_eq!(run("{{ $value | humanize }}", 1234567.0), "1.235M");
        assert_eq!(run("{{ $value | humanize }}", 0.001234), "1.234m");
        assert_eq!(run("{{ humanize $value }}", 0.0), "0");
        assert_eq!(run("{{ $value | humanize1024 }}", 1073741824.0), "1Gi");
        assert_eq!(
            run("{{ $value | humanizeDuration }}", 90061.0),
            "1d 1h 1m 1s"
        );
        assert_eq!(run("{{ $value | humanizeDuration }}", 1.5), "1.5s");
        assert_eq!(run("{{ $value | humanizeDuration }}", 0.0015), "1.5ms");
        assert_eq!(run("{{ $value | humanizePercentage }}", 0.8765), "87.65%");
        assert_eq!(
            run("{{ $value | humanizeTimestamp }}", 1.5),
            "1970-01-01 00:00:01.5 +0000 UTC"
        );
        assert_eq!(g4(12345.0), "1.234e+04");
        assert_eq!(g4(0.00001234), "1.234e-05");
        assert_eq!(g4(100.0), "100");
    }

    #[test]
    fn query_reaches_the_data_source() {
        let q = |expr: &str| -> super::QueryResult {
            assert_eq!(expr, "up{instance=\"host1:9100\"}");
            Ok(vec![(
                vec![("instance".to_string(), "host1:9100".to_string())],
                0.25,
            )])
        };
        let labels = vec![("instance".to_string(), "host1:9100".to_string())];
        let data = Data {
            labels: &labels,
            external_labels: &[],
            external_url: "",
            value: 0.0,
            query: Some(&q),
        };
        let text = r#"{{ with printf "up{instance=%q}" $labels.instance | query }}{{ . | first | value | humanizePercentage }} on {{ . | first | label "instance" }}{{ end }}"#;
        assert_eq!(expand("t", text, &data).unwrap(), "25% on host1:9100");
    }

    #[test]
    fn bad_templates_are_reported() {
        assert!(check("t", "{{ $value ").is_err());
        assert!(check("t", "{{ nosuchfunc $value }}").is_err());
        assert!(check("t", "plain text").is_ok());
    }
}

#[cfg(test)]
mod speed {
    #[test]
    #[ignore]
    fn expansion_cost() {
        let labels = vec![
            ("instance".to_string(), "host1:9100".to_string()),
            ("job".to_string(), "node".to_string()),
        ];
        let data = super::Data {
            labels: &labels,
            external_labels: &[],
            external_url: "",
            value: 512.3,
            query: None,
        };
        let t0 = std::time::Instant::now();
        for _ in 0..1000 {
            super::expand("t", "{{ printf \"%.0f\" $value }} major page faults per second on {{ $labels.instance }}.", &data).unwrap();
        }
        eprintln!("per expansion: {:?}", t0.elapsed() / 1000);
    }
}
