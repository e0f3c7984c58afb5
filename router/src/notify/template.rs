//! Notification templates: Go's `text/template` (and `html/template` for mail) over
//! Alertmanager's data model, so a user's existing template files and `{{ template
//! "slack.default.title" . }}` references keep working.
//!
//! Alertmanager's model has Go methods that `gotmpl` values cannot carry (`.Alerts.Firing`,
//! `.CommonLabels.SortedPairs`, `.Labels.Remove .GroupLabels.Names`, `.StartsAt.Format`).
//! Every parsed tree is rewritten once so that such a field access calls a function instead.
//! Label and annotation values enter as data, escaped for the target markup by the caller,
//! and are never parsed as templates.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, PipeNode, SmolStr};
use gotmpl::{Template, Value};
use regex::Regex;

use super::Data;
use crate::alerting::template::{err, go_time_string, humanize_duration, s, str_arg};

/// Alertmanager's defaults under Alertmanager's names, with Vigie's text.
const DEFAULTS: &str = include_str!("default.tmpl");

/// Methods of Alertmanager's template types, rewritten into `__m_<name>` calls.
const METHODS: &[&str] = &[
    "Firing",
    "Resolved",
    "SortedPairs",
    "Names",
    "Values",
    "Remove",
    "Format",
    "Unix",
];

/// A compiled field template: its name in the set.
#[derive(Debug, Clone)]
pub struct Field(Arc<str>);

/// Parses the defaults, the `templates:` files, then each integration's field templates.
pub struct Builder {
    text: Template,
    html: gotmpl::html::Template,
    next: usize,
}

/// The frozen set every notification renders with.
pub struct Templates {
    text: Template,
    html: gotmpl::html::Template,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Builder {
    /// The defaults plus the user's files (already expanded from their globs).
    pub fn new(files: &[PathBuf]) -> Result<Builder, String> {
        let mut sources = vec![("default.tmpl".to_string(), DEFAULTS.to_string())];
        for f in files {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            sources.push((f.display().to_string(), text));
        }
        let mut text = text_functions(Template::new("vigie"));
        // html/template needs a root to escape from.
        let mut html = html_functions(gotmpl::html::Template::new("vigie"))
            .parse("vigie")
            .map_err(|e| e.to_string())?;
        let known: Vec<String> = common().0.into_keys().collect();
        for (name, src) in &sources {
            let parsed = text_functions(Template::new(name))
                .parse(src)
                .map_err(|e| format!("{name}: {e}"))?;
            for t in parsed.templates() {
                if let Some(tree) = parsed.lookup(t) {
                    undefined_function(tree, &known).map_err(|e| format!("{name}: {t}: {e}"))?;
                    let mut tree = tree.clone();
                    rewrite_list(&mut tree);
                    text = text.add_parse_tree(t, tree.clone());
                    html = html
                        .add_parse_tree(t, tree)
                        .map_err(|e| format!("{name}: {e}"))?;
                }
            }
        }
        Ok(Builder {
            text,
            html,
            next: 0,
        })
    }

    /// Compiles one configured template string; the error names what fails to parse.
    pub fn field(&mut self, src: &str) -> Result<Field, String> {
        self.next += 1;
        let name = format!("__vigie_field_{}", self.next);
        let parsed = text_functions(Template::new(&name))
            .parse(src)
            .map_err(|e| e.to_string())?;
        let mut tree = parsed.lookup(&name).cloned().unwrap_or_else(|| ListNode {
            pos: gotmpl::parse::Pos::new(0, 1),
            nodes: Vec::new(),
        });
        let known: Vec<String> = common().0.into_keys().collect();
        undefined_function(&tree, &known)?;
        rewrite_list(&mut tree);
        let text = std::mem::replace(&mut self.text, Template::new(""));
        self.text = text.add_parse_tree(&name, tree.clone());
        let html = std::mem::replace(&mut self.html, gotmpl::html::Template::new(""));
        self.html = html
            .add_parse_tree(&name, tree)
            .map_err(|e| e.to_string())?;
        Ok(Field(name.into()))
    }

    pub fn finish(self) -> Templates {
        Templates {
            text: self.text,
            html: self.html,
        }
    }
}

impl Templates {
    /// Defaults only: for tests and for a configuration without `templates:`.
    pub fn defaults() -> Builder {
        Builder::new(&[]).unwrap_or_else(|e| panic!("default.tmpl does not parse: {e}"))
    }

    pub fn text(&self, f: &Field, data: &Value) -> Result<String, String> {
        self.text
            .execute_template_to_string(&f.0, data)
            .map_err(|e| e.to_string())
    }

    /// With `html/template`'s contextual escaping (mail bodies).
    pub fn html(&self, f: &Field, data: &Value) -> Result<String, String> {
        self.html
            .execute_template_to_string(&f.0, data)
            .map_err(|e| e.to_string())
    }
}

/// Go refuses a template that calls an unknown function when it is parsed; so does this.
fn undefined_function(tree: &ListNode, known: &[String]) -> Result<(), String> {
    let mut bad = None;
    crate::alerting::template::visit_functions(tree, &mut |f| {
        if bad.is_none()
            && !crate::alerting::template::BUILTINS.contains(&f)
            && !known.iter().any(|k| k == f)
            && f != "safeHtml"
            && f != "safeUrl"
        {
            bad = Some(f.to_string());
        }
    });
    match bad {
        Some(f) => Err(format!("function {f:?} not defined")),
        None => Ok(()),
    }
}

/// Alertmanager's data model as a template value; `esc` prepares label and annotation values
/// (and generator URLs) for the target markup.
pub fn value(d: &Data, esc: &dyn Fn(&str) -> String) -> Value {
    let kv = |m: &BTreeMap<String, String>| -> Value {
        Value::Map(Arc::new(
            m.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), s(esc(v))))
                .collect(),
        ))
    };
    let alerts: Vec<Value> = d
        .alerts
        .iter()
        .map(|a| {
            let mut m: BTreeMap<Arc<str>, Value> = BTreeMap::new();
            m.insert("Status".into(), s(a.status));
            m.insert("Labels".into(), kv(&a.labels));
            m.insert("Annotations".into(), kv(&a.annotations));
            m.insert("StartsAt".into(), s(go_time(a.starts_ns)));
            m.insert("EndsAt".into(), s(go_time(a.ends_ns)));
            m.insert("GeneratorURL".into(), s(esc(&a.generator_url)));
            m.insert("Fingerprint".into(), s(a.fingerprint.as_str()));
            Value::Map(Arc::new(m))
        })
        .collect();
    let mut top: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    top.insert("Receiver".into(), s(esc(&d.receiver)));
    top.insert("Status".into(), s(d.status));
    top.insert("Alerts".into(), Value::List(alerts.into()));
    top.insert("GroupLabels".into(), kv(&d.group_labels));
    top.insert("CommonLabels".into(), kv(&d.common_labels));
    top.insert("CommonAnnotations".into(), kv(&d.common_annotations));
    top.insert("ExternalURL".into(), s(d.external_url.as_str()));
    top.insert("GroupKey".into(), s(d.group_key.as_str()));
    top.insert("GroupURL".into(), s(esc(&d.group_url())));
    Value::Map(Arc::new(top))
}

/// Go's `time.Time.String()`; the zero time for 0.
fn go_time(ns: i64) -> String {
    if ns == 0 {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    }
    go_time_string(ns as f64 / 1e9)
}

/// Back from `go_time`'s spelling (or RFC 3339) to a timestamp.
fn parse_go_time(t: &str) -> Option<jiff::Timestamp> {
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    let core = t.strip_suffix(" +0000 UTC")?;
    let iso = core.replacen(' ', "T", 1) + "Z";
    iso.parse().ok()
}

// ---- the method rewrite ----

fn rewrite_list(list: &mut ListNode) {
    for node in &mut list.nodes {
        match node {
            Node::Action(a) => rewrite_pipe(&mut a.pipe),
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                rewrite_pipe(&mut b.pipe);
                rewrite_list(&mut b.body);
                if let Some(e) = &mut b.else_body {
                    rewrite_list(e);
                }
            }
            Node::Template(t) => {
                if let Some(p) = &mut t.pipe {
                    rewrite_pipe(p);
                }
            }
            Node::Define(d) => rewrite_list(&mut d.body),
            Node::List(l) => rewrite_list(l),
            _ => {}
        }
    }
}

fn rewrite_pipe(p: &mut PipeNode) {
    for c in &mut p.commands {
        rewrite_command(c);
    }
}

/// A method at the end of a command's head takes the command's other arguments (Go's method
/// call `.CommonLabels.Remove .GroupLabels.Names`); anywhere else it is called without any.
fn rewrite_command(c: &mut CommandNode) {
    for a in c.args.iter_mut().skip(1) {
        rewrite_expr(a);
    }
    let Some(head) = c.args.first_mut() else {
        return;
    };
    if let Some((base, method)) = split_last_method(head) {
        let pos = c.pos;
        let mut args = vec![Expr::Identifier(pos, method_fn(&method)), base];
        args.extend(c.args.drain(1..));
        c.args = args;
    } else {
        rewrite_expr(head);
    }
}

fn method_fn(m: &str) -> SmolStr {
    SmolStr::new(format!("__m_{m}"))
}

/// `(receiver, method)` when the expression's last field is a method.
fn split_last_method(e: &Expr) -> Option<(Expr, SmolStr)> {
    let (pos, chain) = match e {
        Expr::Field(p, c) | Expr::Variable(p, _, c) | Expr::Chain(p, _, c) => (*p, c),
        _ => return None,
    };
    let last = chain.last()?;
    if !METHODS.contains(&last.as_str()) {
        return None;
    }
    let mut base = with_chain(e, pos, chain[..chain.len() - 1].to_vec());
    rewrite_expr(&mut base);
    Some((base, last.clone()))
}

fn with_chain(e: &Expr, pos: gotmpl::parse::Pos, chain: Vec<SmolStr>) -> Expr {
    match e {
        Expr::Field(..) if chain.is_empty() => Expr::Dot(pos),
        Expr::Field(..) => Expr::Field(pos, chain),
        Expr::Variable(_, name, _) => Expr::Variable(pos, name.clone(), chain),
        Expr::Chain(_, inner, _) if chain.is_empty() => (**inner).clone(),
        Expr::Chain(_, inner, _) => Expr::Chain(pos, inner.clone(), chain),
        other => other.clone(),
    }
}

fn rewrite_expr(e: &mut Expr) {
    if let Expr::Pipe(_, p) = e {
        rewrite_pipe(p);
        return;
    }
    if let Expr::Chain(_, inner, _) = e {
        rewrite_expr(inner);
    }
    let (pos, chain) = match e {
        Expr::Field(p, c) | Expr::Variable(p, _, c) | Expr::Chain(p, _, c) => (*p, c.clone()),
        _ => return,
    };
    let Some(i) = chain.iter().position(|f| METHODS.contains(&f.as_str())) else {
        return;
    };
    let base = with_chain(e, pos, chain[..i].to_vec());
    let call = Expr::Pipe(
        pos,
        PipeNode {
            pos,
            decl: Vec::new(),
            commands: vec![CommandNode {
                pos,
                args: vec![Expr::Identifier(pos, method_fn(&chain[i])), base],
            }],
            is_assign: false,
        },
    );
    let rest = chain[i + 1..].to_vec();
    *e = if rest.is_empty() {
        call
    } else {
        let mut next = Expr::Chain(pos, Box::new(call), rest);
        rewrite_expr(&mut next);
        next
    };
}

// ---- functions ----

type TResult = gotmpl::Result<Value>;

fn map_arg(args: &[Value], i: usize) -> Arc<BTreeMap<Arc<str>, Value>> {
    match args.get(i) {
        Some(Value::Map(m)) => m.clone(),
        _ => Arc::new(BTreeMap::new()),
    }
}

fn list_of_strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(l)) => l
            .iter()
            .map(|x| str_arg(std::slice::from_ref(x), 0))
            .collect(),
        _ => Vec::new(),
    }
}

fn filter_status(args: &[Value], want: &str) -> TResult {
    match args.first() {
        Some(Value::List(l)) => Ok(Value::List(
            l.iter()
                .filter(|a| a.field("Status").and_then(Value::as_str) == Some(want))
                .cloned()
                .collect::<Vec<_>>()
                .into(),
        )),
        Some(Value::Map(m)) => Ok(m
            .get(if want == "firing" {
                "Firing"
            } else {
                "Resolved"
            })
            .cloned()
            .unwrap_or(Value::Nil)),
        _ => Err(err(
            "Firing/Resolved called on something that is not a list of alerts",
        )),
    }
}

/// A `KV` method, or the field of that name when called on something else (a label map has
/// no methods to shadow then).
fn kv_pairs(m: &BTreeMap<Arc<str>, Value>) -> Value {
    Value::List(
        m.iter()
            .map(|(k, v)| {
                let mut p: BTreeMap<Arc<str>, Value> = BTreeMap::new();
                p.insert("Name".into(), Value::String(k.clone()));
                p.insert("Value".into(), v.clone());
                Value::Map(Arc::new(p))
            })
            .collect::<Vec<_>>()
            .into(),
    )
}

/// `KV.Names`/`KV.Values` (sorted by name) and `Pairs.Names`/`Pairs.Values` (in order).
fn names_or_values(a: &[Value], which: &str) -> Value {
    let out: Vec<Value> = match a.first() {
        Some(Value::List(pairs)) => pairs
            .iter()
            .map(|p| p.field(which).cloned().unwrap_or(Value::Nil))
            .collect(),
        _ => {
            let m = map_arg(a, 0);
            if which == "Name" {
                m.keys().map(|k| Value::String(k.clone())).collect()
            } else {
                m.values().cloned().collect()
            }
        }
    };
    Value::List(out.into())
}

fn text_functions(t: Template) -> Template {
    let f = common()
        .func("safeHtml", |a| Ok(s(str_arg(a, 0))))
        .func("safeUrl", |a| Ok(s(str_arg(a, 0))));
    t.funcs(f.0)
}

fn html_functions(t: gotmpl::html::Template) -> gotmpl::html::Template {
    let f = common()
        .func("safeHtml", |a| {
            Ok(gotmpl::html::HTML::from(str_arg(a, 0).as_str()).into())
        })
        .func("safeUrl", |a| {
            Ok(gotmpl::html::URL::from(str_arg(a, 0).as_str()).into())
        });
    t.funcs(f.0)
}

/// A function map built by chaining, usable for both template flavours.
struct Funcs(gotmpl::FuncMap);

impl Funcs {
    fn func(
        mut self,
        name: &str,
        f: impl Fn(&[Value]) -> gotmpl::Result<Value> + Send + Sync + 'static,
    ) -> Funcs {
        self.0.insert(name.to_string(), Arc::new(f));
        self
    }
}

/// Alertmanager's `DefaultFuncs` and the methods of its types.
fn common() -> Funcs {
    Funcs(gotmpl::FuncMap::new())
        .func("__m_Firing", |a| filter_status(a, "firing"))
        .func("__m_Resolved", |a| filter_status(a, "resolved"))
        .func("__m_SortedPairs", |a| Ok(kv_pairs(&map_arg(a, 0))))
        .func("__m_Names", |a| Ok(names_or_values(a, "Name")))
        .func("__m_Values", |a| Ok(names_or_values(a, "Value")))
        .func("__m_Remove", |a| {
            let drop = list_of_strings(a.get(1));
            let mut m = (*map_arg(a, 0)).clone();
            m.retain(|k, _| !drop.iter().any(|d| d.as_str() == &**k));
            Ok(Value::Map(Arc::new(m)))
        })
        .func("__m_Format", |a| match a.first() {
            Some(Value::Map(m)) => Ok(m.get("Format").cloned().unwrap_or(Value::Nil)),
            _ => {
                let t = time_arg(a, 0)?;
                Ok(s(go_format(
                    &t.to_zoned(jiff::tz::TimeZone::UTC),
                    &str_arg(a, 1),
                )))
            }
        })
        .func("__m_Unix", |a| match a.first() {
            Some(Value::Map(m)) => Ok(m.get("Unix").cloned().unwrap_or(Value::Nil)),
            _ => Ok(Value::Int(time_arg(a, 0)?.as_second())),
        })
        .func("toUpper", |a| Ok(s(str_arg(a, 0).to_uppercase())))
        .func("toLower", |a| Ok(s(str_arg(a, 0).to_lowercase())))
        .func("title", |a| Ok(s(title(&str_arg(a, 0)))))
        .func("trimSpace", |a| Ok(s(str_arg(a, 0).trim())))
        .func("join", |a| {
            Ok(s(list_of_strings(a.get(1)).join(&str_arg(a, 0))))
        })
        .func("match", |a| {
            let re = anchored(&str_arg(a, 0))?;
            Ok(Value::Bool(re.is_match(&str_arg(a, 1))))
        })
        .func("reReplaceAll", |a| {
            let re = anchored(&str_arg(a, 0))?;
            Ok(s(re
                .replace_all(&str_arg(a, 2), str_arg(a, 1).as_str())
                .into_owned()))
        })
        .func("urlUnescape", |a| {
            let v = str_arg(a, 0);
            let out: String = form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            Ok(s(out))
        })
        .func("stringSlice", |a| {
            Ok(Value::List(
                a.iter()
                    .map(|v| s(str_arg(std::slice::from_ref(v), 0)))
                    .collect::<Vec<_>>()
                    .into(),
            ))
        })
        .func("list", |a| Ok(Value::List(a.to_vec().into())))
        .func("append", |a| {
            let mut out: Vec<Value> = match a.first() {
                Some(Value::List(l)) => l.to_vec(),
                _ => return Err(err("append: first argument must be a list")),
            };
            out.extend(a.iter().skip(1).cloned());
            Ok(Value::List(out.into()))
        })
        .func("dict", |a| {
            if a.len() % 2 != 0 {
                return Err(err("dict: odd number of arguments"));
            }
            let m: BTreeMap<Arc<str>, Value> = a
                .chunks(2)
                .map(|p| (Arc::from(str_arg(p, 0).as_str()), p[1].clone()))
                .collect();
            Ok(Value::Map(Arc::new(m)))
        })
        .func("toJson", |a| {
            let j = to_json(a.first().unwrap_or(&Value::Nil));
            Ok(s(j.to_string()))
        })
        .func("humanizeDuration", |a| {
            let v = match a.first() {
                Some(Value::Float(f)) => *f,
                Some(Value::Int(n)) => *n as f64,
                Some(Value::Uint(n)) => *n as f64,
                _ => str_arg(a, 0)
                    .parse::<f64>()
                    .map_err(|_| err("humanizeDuration: not a number"))?,
            };
            Ok(s(humanize_duration(v)))
        })
        .func("since", |a| {
            let t = time_arg(a, 0)?;
            let secs =
                (jiff::Timestamp::now().as_millisecond() - t.as_millisecond()) as f64 / 1000.0;
            Ok(Value::Float(secs.max(0.0).floor()))
        })
        .func("date", |a| {
            let t = time_arg(a, 1)?;
            Ok(s(go_format(
                &t.to_zoned(jiff::tz::TimeZone::UTC),
                &str_arg(a, 0),
            )))
        })
        .func("tz", |a| {
            let name = str_arg(a, 0);
            let t = time_arg(a, 1)?;
            let zone =
                jiff::tz::TimeZone::get(&name).map_err(|e| err(format!("tz {name}: {e}")))?;
            let z = t.to_zoned(zone);
            Ok(s(go_format(&z, "2006-01-02 15:04:05 -0700 MST")))
        })
}

fn title(text: &str) -> String {
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
    out
}

/// Alertmanager anchors `match` and `reReplaceAll` patterns like Prometheus does.
fn anchored(re: &str) -> gotmpl::Result<Regex> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| err(e.to_string()))
}

fn time_arg(a: &[Value], i: usize) -> gotmpl::Result<jiff::Timestamp> {
    let t = str_arg(a, i);
    // `tz` returns a zoned spelling: read its instant back.
    if let Some(ts) = parse_go_time(&t) {
        return Ok(ts);
    }
    if let Ok(z) = jiff::fmt::strtime::parse(
        "%Y-%m-%d %H:%M:%S %z",
        t.rsplit_once(' ').map(|(a, _)| a).unwrap_or(&t),
    )
    .and_then(|p| p.to_timestamp())
    {
        return Ok(z);
    }
    Err(err(format!("{t:?} is not a time")))
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(n) => J::from(*n),
        Value::Uint(n) => J::from(*n),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        Value::String(t) => J::String(t.to_string()),
        Value::List(l) => J::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        other => J::String(other.to_string()),
    }
}

/// Go's `time.Format` for the layout elements real templates use.
pub fn go_format(z: &jiff::Zoned, layout: &str) -> String {
    const TOKENS: &[(&str, &str)] = &[
        ("2006", "%Y"),
        ("Z07:00", "Z07"),
        ("-07:00", "%:z"),
        ("-0700", "%z"),
        ("January", "%B"),
        ("Monday", "%A"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".000", "%.3f"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("01", "%m"),
        ("02", "%d"),
        ("_2", "%e"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("1", "%-m"),
        ("2", "%-d"),
        ("3", "%-I"),
        ("4", "%-M"),
        ("5", "%-S"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, st) in TOKENS {
            if let Some(after) = rest.strip_prefix(go) {
                if *st == "Z07" {
                    if z.offset().seconds() == 0 {
                        out.push('Z');
                    } else {
                        out.push_str(&z.strftime("%:z").to_string());
                    }
                } else {
                    out.push_str(&z.strftime(st).to_string());
                }
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests;

/// A sample notification for other modules' tests.
#[cfg(test)]
pub(crate) fn tests_data() -> Data {
    tests::sample()
}
