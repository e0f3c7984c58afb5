//! Pipeline stages in Promtail's configuration shape. A pipeline runs each entry through its
//! stages in order; a stage may change the entry, drop it (counted by reason), or hold it
//! (`multiline`) until a later line or a deadline releases it.

pub mod parse;
pub mod select;
pub mod timestamp;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_saphyr::Spanned;

use super::config::{ConfigError, OneOrMany, StageConfig};
use super::entry::{Entry, Labels, valid_label_name};
use super::stats::{CustomSeries, Stats};
use crate::cli::parse_duration;
use parse::JsonPath;
use select::Selector;
use timestamp::Format;

/// Where the stage's input comes from: the line, or a value of the extracted map.
fn source_value<'a>(e: &'a Entry, source: &Option<String>) -> Option<&'a str> {
    match source {
        None => Some(e.line.as_str()),
        Some(s) => e.extracted.get(s).map(String::as_str),
    }
}

enum Stage {
    Regex {
        re: Regex,
        source: Option<String>,
    },
    Json {
        exprs: Vec<(String, JsonPath)>,
        source: Option<String>,
        drop_malformed: bool,
    },
    Logfmt {
        mapping: Vec<(String, String)>,
        source: Option<String>,
    },
    Replace {
        re: Regex,
        source: Option<String>,
        replace: gotmpl::Template,
    },
    Labels(Vec<(String, String)>),
    StaticLabels(Vec<(String, String)>),
    LabelDrop(Vec<String>),
    LabelAllow(Vec<String>),
    Metadata(Vec<(String, String)>),
    Timestamp {
        source: String,
        formats: Vec<Format>,
        tz: Option<jiff::tz::TimeZone>,
        fudge: bool,
        last: i64,
    },
    Output(String),
    Drop {
        source: Vec<String>,
        separator: String,
        expression: Option<Regex>,
        value: Option<String>,
        older_than: Option<Duration>,
        longer_than: Option<u64>,
        reason: String,
    },
    Multiline(Multiline),
    Limit {
        rate: f64,
        burst: f64,
        drop: bool,
        by_label: Option<String>,
        max_distinct: usize,
        buckets: HashMap<String, (f64, Instant)>,
    },
    Match {
        selector: Selector,
        drop: Option<String>,
        stages: Vec<Stage>,
    },
    Template {
        source: String,
        template: gotmpl::Template,
    },
    Metrics(Vec<Metric>),
    Tenant {
        source: Option<String>,
        value: Option<String>,
        label: Option<String>,
    },
    Docker,
    Cri {
        max_partial: usize,
        partial: HashMap<Labels, String>,
    },
    Decolorize,
}

struct Multiline {
    first: Regex,
    max_wait: Duration,
    max_lines: usize,
    /// Per stream: the entry being assembled, its line count and when it started.
    pending: HashMap<Labels, (Entry, usize, Instant)>,
}

struct Metric {
    name: String,
    kind: MetricKind,
    source: Option<String>,
    value: Option<String>,
    action: String,
    match_all: bool,
    count_bytes: bool,
    buckets: Vec<f64>,
}

#[derive(Clone, Copy, PartialEq)]
enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

pub struct Pipeline {
    stages: Vec<Stage>,
    stats: Arc<Stats>,
}

fn label_pairs(m: &std::collections::BTreeMap<String, Option<String>>) -> Vec<(String, String)> {
    m.iter()
        .map(|(k, v)| {
            let src = v
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| k.clone());
            (k.clone(), src)
        })
        .collect()
}

fn template(name: &str, text: &str) -> Result<gotmpl::Template, String> {
    use gotmpl::{TemplateError, Value};
    let s = |a: &[Value], i: usize| a.get(i).map(|v| v.to_string()).unwrap_or_default();
    let re_replace = |literal: bool| {
        move |a: &[Value]| -> gotmpl::Result<Value> {
            let re = Regex::new(&s(a, 0)).map_err(|e| TemplateError::Exec(e.to_string()))?;
            let src = s(a, 1);
            let repl = s(a, 2);
            Ok(Value::from(if literal {
                re.replace_all(&src, regex::NoExpand(&repl)).into_owned()
            } else {
                re.replace_all(&src, repl.as_str()).into_owned()
            }))
        }
    };
    gotmpl::Template::new(name)
        .func("ToLower", move |a| Ok(Value::from(s(a, 0).to_lowercase())))
        .func("ToUpper", move |a| Ok(Value::from(s(a, 0).to_uppercase())))
        .func("TrimSpace", move |a| {
            Ok(Value::from(s(a, 0).trim().to_string()))
        })
        .func("TrimPrefix", move |a| {
            let v = s(a, 0);
            let p = s(a, 1);
            Ok(Value::from(
                v.strip_prefix(p.as_str()).unwrap_or(&v).to_string(),
            ))
        })
        .func("TrimSuffix", move |a| {
            let v = s(a, 0);
            let p = s(a, 1);
            Ok(Value::from(
                v.strip_suffix(p.as_str()).unwrap_or(&v).to_string(),
            ))
        })
        .func("Trim", move |a| {
            let cut = s(a, 1);
            Ok(Value::from(
                s(a, 0).trim_matches(|c| cut.contains(c)).to_string(),
            ))
        })
        .func("TrimLeft", move |a| {
            let cut = s(a, 1);
            Ok(Value::from(
                s(a, 0).trim_start_matches(|c| cut.contains(c)).to_string(),
            ))
        })
        .func("TrimRight", move |a| {
            let cut = s(a, 1);
            Ok(Value::from(
                s(a, 0).trim_end_matches(|c| cut.contains(c)).to_string(),
            ))
        })
        .func("Replace", move |a| {
            let n: i64 = s(a, 3).parse().unwrap_or(-1);
            let v = s(a, 0);
            Ok(Value::from(if n < 0 {
                v.replace(&s(a, 1), &s(a, 2))
            } else {
                v.replacen(&s(a, 1), &s(a, 2), n as usize)
            }))
        })
        .func("regexReplaceAll", re_replace(false))
        .func("regexReplaceAllLiteral", re_replace(true))
        .parse(text)
        .map_err(|e| e.to_string())
}

fn render(t: &gotmpl::Template, e: &Entry, value: &str) -> Result<String, String> {
    let mut m: std::collections::BTreeMap<String, gotmpl::Value> = e
        .extracted
        .iter()
        .map(|(k, v)| (k.clone(), gotmpl::Value::from(v.as_str())))
        .collect();
    m.insert("Value".into(), gotmpl::Value::from(value));
    m.insert("Entry".into(), gotmpl::Value::from(e.line.as_str()));
    t.execute_to_string(&gotmpl::Value::from(m))
        .map_err(|e| e.to_string())
}

impl Stage {
    fn new(cfg: &StageConfig, stats: &Arc<Stats>) -> Result<Stage, String> {
        Ok(match cfg {
            StageConfig::Regex(r) => {
                let re = Regex::new(&r.expression)
                    .map_err(|e| format!("regex stage: expression {:?}: {e}", r.expression))?;
                if re.capture_names().flatten().next().is_none() {
                    return Err("regex stage: expression has no named capture groups".into());
                }
                Stage::Regex {
                    re,
                    source: r.source.clone(),
                }
            }
            StageConfig::Json(j) => {
                if j.expressions.is_empty() {
                    return Err("json stage: expressions is required".into());
                }
                let mut exprs = Vec::new();
                for (k, v) in &j.expressions {
                    let path = v
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| k.clone());
                    exprs.push((
                        k.clone(),
                        JsonPath::new(&path).map_err(|e| format!("json stage: {k}: {e}"))?,
                    ));
                }
                Stage::Json {
                    exprs,
                    source: j.source.clone(),
                    drop_malformed: j.drop_malformed,
                }
            }
            StageConfig::Logfmt(l) => {
                if l.mapping.is_empty() {
                    return Err("logfmt stage: mapping is required".into());
                }
                Stage::Logfmt {
                    mapping: label_pairs(&l.mapping),
                    source: l.source.clone(),
                }
            }
            StageConfig::Replace(r) => Stage::Replace {
                re: Regex::new(&r.expression)
                    .map_err(|e| format!("replace stage: expression {:?}: {e}", r.expression))?,
                source: r.source.clone(),
                replace: template("replace", &r.replace)
                    .map_err(|e| format!("replace stage: {e}"))?,
            },
            StageConfig::Labels(m) => {
                let pairs = label_pairs(m);
                if let Some((n, _)) = pairs.iter().find(|(n, _)| !valid_label_name(n)) {
                    return Err(format!("labels stage: invalid label name {n:?}"));
                }
                Stage::Labels(pairs)
            }
            StageConfig::StaticLabels(m) => {
                let pairs: Vec<_> = m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                    .collect();
                if let Some((n, _)) = pairs.iter().find(|(n, _)| !valid_label_name(n)) {
                    return Err(format!("static_labels stage: invalid label name {n:?}"));
                }
                Stage::StaticLabels(pairs)
            }
            StageConfig::Labeldrop(v) => Stage::LabelDrop(v.clone()),
            StageConfig::Labelallow(v) => Stage::LabelAllow(v.clone()),
            StageConfig::StructuredMetadata(m) | StageConfig::NonIndexedLabels(m) => {
                Stage::Metadata(label_pairs(m))
            }
            StageConfig::Timestamp(t) => {
                let mut formats =
                    vec![Format::new(&t.format).map_err(|e| format!("timestamp stage: {e}"))?];
                for f in &t.fallback_formats {
                    formats.push(Format::new(f).map_err(|e| format!("timestamp stage: {e}"))?);
                }
                let tz = match &t.location {
                    Some(l) => Some(
                        jiff::tz::TimeZone::get(l)
                            .map_err(|e| format!("timestamp stage: location {l:?}: {e}"))?,
                    ),
                    None => None,
                };
                let fudge = match t.action_on_failure.as_deref().unwrap_or("fudge") {
                    "fudge" => true,
                    "skip" => false,
                    a => {
                        return Err(format!(
                            "timestamp stage: action_on_failure {a:?}: must be fudge or skip"
                        ));
                    }
                };
                Stage::Timestamp {
                    source: t.source.clone(),
                    formats,
                    tz,
                    fudge,
                    last: 0,
                }
            }
            StageConfig::Output(o) => Stage::Output(o.source.clone()),
            StageConfig::Drop(d) => {
                let source = match &d.source {
                    None => Vec::new(),
                    Some(OneOrMany::One(s)) => vec![s.clone()],
                    Some(OneOrMany::Many(v)) => v.clone(),
                };
                if d.expression.is_some() && d.value.is_some() {
                    return Err("drop stage: expression and value are mutually exclusive".into());
                }
                if d.value.is_some() && source.is_empty() {
                    return Err("drop stage: value requires source".into());
                }
                Stage::Drop {
                    source,
                    separator: d.separator.clone().unwrap_or_else(|| ";".into()),
                    expression: match &d.expression {
                        Some(x) => Some(
                            Regex::new(x)
                                .map_err(|e| format!("drop stage: expression {x:?}: {e}"))?,
                        ),
                        None => None,
                    },
                    value: d.value.clone(),
                    older_than: match &d.older_than {
                        Some(x) => Some(
                            parse_duration(x)
                                .map_err(|e| format!("drop stage: older_than: {e}"))?,
                        ),
                        None => None,
                    },
                    longer_than: match &d.longer_than {
                        Some(x) => Some(
                            x.bytes()
                                .map_err(|e| format!("drop stage: longer_than: {e}"))?,
                        ),
                        None => None,
                    },
                    reason: d
                        .drop_counter_reason
                        .clone()
                        .unwrap_or_else(|| "drop_stage".into()),
                }
            }
            StageConfig::Multiline(m) => Stage::Multiline(Multiline {
                first: Regex::new(&m.firstline)
                    .map_err(|e| format!("multiline stage: firstline {:?}: {e}", m.firstline))?,
                max_wait: match &m.max_wait_time {
                    Some(d) => parse_duration(d)
                        .map_err(|e| format!("multiline stage: max_wait_time: {e}"))?,
                    None => Duration::from_secs(3),
                },
                max_lines: m.max_lines.unwrap_or(128).max(1) as usize,
                pending: HashMap::new(),
            }),
            StageConfig::Limit(l) => {
                if l.by_label_name.is_some() && !l.drop {
                    return Err("limit stage: by_label_name requires drop: true".into());
                }
                Stage::Limit {
                    rate: l.rate,
                    burst: l.burst as f64,
                    drop: l.drop,
                    by_label: l.by_label_name.clone(),
                    max_distinct: l.max_distinct_labels.unwrap_or(10_000).max(10_000) as usize,
                    buckets: HashMap::new(),
                }
            }
            StageConfig::Match(m) => {
                let selector =
                    Selector::parse(&m.selector).map_err(|e| format!("match stage: {e}"))?;
                let drop = match m.action.as_deref().unwrap_or("keep") {
                    "keep" => None,
                    "drop" => Some(
                        m.drop_counter_reason
                            .clone()
                            .unwrap_or_else(|| "match_stage".into()),
                    ),
                    a => return Err(format!("match stage: action {a:?}: must be keep or drop")),
                };
                if drop.is_none() && m.stages.is_empty() {
                    return Err("match stage: stages are required unless action is drop".into());
                }
                let mut stages = Vec::new();
                for s in &m.stages {
                    stages.push(Stage::new(&s.value, stats)?);
                }
                Stage::Match {
                    selector,
                    drop,
                    stages,
                }
            }
            StageConfig::Template(t) => Stage::Template {
                source: t.source.clone(),
                template: template(&t.source, &t.template)
                    .map_err(|e| format!("template stage: {e}"))?,
            },
            StageConfig::Metrics(m) => {
                let mut metrics = Vec::new();
                let mut custom = stats.custom.lock().unwrap_or_else(|p| p.into_inner());
                for (name, c) in m {
                    let kind = match c.kind.to_ascii_lowercase().as_str() {
                        "counter" => MetricKind::Counter,
                        "gauge" => MetricKind::Gauge,
                        "histogram" => MetricKind::Histogram,
                        k => {
                            return Err(format!(
                                "metrics stage: {name}: type {k:?}: must be Counter, Gauge or Histogram"
                            ));
                        }
                    };
                    let action = c
                        .config
                        .action
                        .clone()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    let ok = match kind {
                        MetricKind::Counter => matches!(action.as_str(), "inc" | "add"),
                        MetricKind::Gauge => {
                            matches!(action.as_str(), "set" | "inc" | "dec" | "add" | "sub")
                        }
                        MetricKind::Histogram => true,
                    };
                    if !ok {
                        return Err(format!(
                            "metrics stage: {name}: action {action:?} is not valid for {}",
                            c.kind
                        ));
                    }
                    if kind == MetricKind::Histogram && c.config.buckets.is_empty() {
                        return Err(format!("metrics stage: {name}: histogram needs buckets"));
                    }
                    let full = format!(
                        "{}{name}",
                        c.prefix.as_deref().unwrap_or("promtail_custom_")
                    );
                    if !vigie_exposition::parse::is_metric_name(&full) {
                        return Err(format!(
                            "metrics stage: {full:?} is not a valid metric name"
                        ));
                    }
                    let idle = match &c.max_idle_duration {
                        Some(d) => parse_duration(d).map_err(|e| {
                            format!("metrics stage: {name}: max_idle_duration: {e}")
                        })?,
                        None => Duration::from_secs(300),
                    };
                    let fam = custom.families.entry(full.clone()).or_default();
                    fam.kind = Some(match kind {
                        MetricKind::Counter => vigie_exposition::Kind::Counter,
                        MetricKind::Gauge => vigie_exposition::Kind::Gauge,
                        MetricKind::Histogram => vigie_exposition::Kind::Histogram,
                    });
                    fam.help = c.description.clone().unwrap_or_default();
                    fam.buckets = c.config.buckets.clone();
                    fam.max_idle_secs = idle.as_secs_f64();
                    metrics.push(Metric {
                        name: full,
                        kind,
                        source: c.source.clone().or_else(|| Some(name.clone())),
                        value: c.config.value.clone(),
                        action,
                        match_all: c.config.match_all,
                        count_bytes: c.config.count_entry_bytes,
                        buckets: c.config.buckets.clone(),
                    });
                }
                Stage::Metrics(metrics)
            }
            StageConfig::Tenant(t) => {
                if [t.source.is_some(), t.value.is_some(), t.label.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count()
                    != 1
                {
                    return Err("tenant stage: exactly one of source, value and label".into());
                }
                Stage::Tenant {
                    source: t.source.clone(),
                    value: t.value.clone(),
                    label: t.label.clone(),
                }
            }
            StageConfig::Docker(_) => Stage::Docker,
            StageConfig::Cri(c) => Stage::Cri {
                max_partial: c.as_ref().and_then(|c| c.max_partial_lines).unwrap_or(100) as usize,
                partial: HashMap::new(),
            },
            StageConfig::Decolorize(_) => Stage::Decolorize,
        })
    }
}

impl Pipeline {
    pub fn new(
        job: &str,
        cfgs: &[Spanned<StageConfig>],
        file: &str,
        stats: &Arc<Stats>,
    ) -> Result<Pipeline, ConfigError> {
        let mut stages = Vec::new();
        let mut errors = Vec::new();
        for c in cfgs {
            match Stage::new(&c.value, stats) {
                Ok(s) => stages.push(s),
                Err(e) => errors.push(format!(
                    "{file}: {}:{}: scrape_configs {job:?}: pipeline_stages: {e}",
                    c.referenced.line(),
                    c.referenced.column()
                )),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Pipeline {
            stages,
            stats: stats.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs one entry; what comes out (zero, one or, after a multiline flush, more) goes to `out`.
    /// The entry's labels start its extracted map, as in Promtail.
    pub fn process(&mut self, mut e: Entry, out: &mut Vec<Entry>) {
        for (k, v) in &e.labels.0 {
            e.extracted.insert(k.clone(), v.clone());
        }
        run(&mut self.stages, e, out, &self.stats);
    }

    /// Whether a stage holds a partial entry (then reading progress must not be committed past it).
    pub fn has_pending(&self) -> bool {
        fn any(stages: &[Stage]) -> bool {
            stages.iter().any(|s| match s {
                Stage::Multiline(m) => !m.pending.is_empty(),
                Stage::Cri { partial, .. } => !partial.is_empty(),
                Stage::Match { stages, .. } => any(stages),
                _ => false,
            })
        }
        any(&self.stages)
    }

    /// Releases multiline entries whose `max_wait_time` passed (or all of them, at shutdown).
    pub fn flush_due(&mut self, now: Instant, all: bool, out: &mut Vec<Entry>) {
        flush(&mut self.stages, now, all, out, &self.stats);
    }
}

fn flush(stages: &mut [Stage], now: Instant, all: bool, out: &mut Vec<Entry>, stats: &Arc<Stats>) {
    for i in 0..stages.len() {
        let (head, tail) = stages.split_at_mut(i + 1);
        let mut released = Vec::new();
        match &mut head[i] {
            Stage::Multiline(m) => {
                let due: Vec<Labels> = m
                    .pending
                    .iter()
                    .filter(|(_, (_, _, t))| all || now.duration_since(*t) >= m.max_wait)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in due {
                    if let Some((e, _, _)) = m.pending.remove(&k) {
                        released.push(e);
                    }
                }
            }
            Stage::Match { stages, .. } => {
                let mut inner = Vec::new();
                flush(stages, now, all, &mut inner, stats);
                released = inner;
            }
            _ => {}
        }
        for e in released {
            run(tail, e, out, stats);
        }
    }
}

/// What the docker and cri stages take from the runtime's wrapper: the `stream` label and the
/// runtime's timestamp.
fn container_meta(e: &mut Entry, stream: String, time: String) {
    e.labels.set("stream", &stream);
    if let Some(ts) = Format::new("RFC3339Nano")
        .ok()
        .and_then(|f| f.parse(&time, None, 2000))
    {
        e.ts = ts;
    }
    e.extracted.insert("stream".into(), stream);
    e.extracted.insert("timestamp".into(), time);
}

fn run(stages: &mut [Stage], mut e: Entry, out: &mut Vec<Entry>, stats: &Arc<Stats>) {
    let Some((stage, rest)) = stages.split_first_mut() else {
        out.push(e);
        return;
    };
    match stage {
        Stage::Regex { re, source } => {
            if let Some(v) = source_value(&e, source)
                && let Some(caps) = re.captures(v)
            {
                let found: Vec<(String, String)> = re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| Some((n?.to_string(), caps.get(i)?.as_str().to_string())))
                    .collect();
                e.extracted.extend(found);
            }
        }
        Stage::Json {
            exprs,
            source,
            drop_malformed,
        } => {
            let parsed = source_value(&e, source).map(serde_json::from_str::<serde_json::Value>);
            match parsed {
                Some(Ok(v)) => {
                    for (name, path) in exprs.iter() {
                        if let Some(s) = path.get(&v).and_then(parse::json_to_string) {
                            e.extracted.insert(name.clone(), s);
                        }
                    }
                }
                Some(Err(_)) if *drop_malformed => {
                    stats.drop_lines("malformed_json", 1, e.line.len() as u64);
                    return;
                }
                _ => {}
            }
        }
        Stage::Logfmt { mapping, source } => {
            if let Some(v) = source_value(&e, source) {
                let pairs = parse::logfmt(v);
                for (name, key) in mapping.iter() {
                    if let Some((_, val)) = pairs.iter().find(|(k, _)| k == key) {
                        e.extracted.insert(name.clone(), val.clone());
                    }
                }
            }
        }
        Stage::Replace {
            re,
            source,
            replace,
        } => {
            if let Some(v) = source_value(&e, source).map(str::to_string) {
                let mut result = String::new();
                let mut last = 0;
                for caps in re.captures_iter(&v) {
                    for (i, name) in re.capture_names().enumerate().skip(1) {
                        let Some(m) = caps.get(i) else { continue };
                        if let Some(n) = name {
                            e.extracted.insert(n.to_string(), m.as_str().to_string());
                        }
                        if m.start() < last {
                            continue;
                        }
                        result.push_str(&v[last..m.start()]);
                        result.push_str(&render(replace, &e, m.as_str()).unwrap_or_default());
                        last = m.end();
                    }
                }
                result.push_str(&v[last..]);
                match source {
                    None => e.line = result,
                    Some(s) => {
                        e.extracted.insert(s.clone(), result);
                    }
                }
            }
        }
        Stage::Labels(pairs) => {
            for (name, src) in pairs.iter() {
                if let Some(v) = e.extracted.get(src).cloned() {
                    e.labels.set(name, &v);
                }
            }
        }
        Stage::StaticLabels(pairs) => {
            for (name, v) in pairs.iter() {
                e.labels.set(name, v);
            }
        }
        Stage::LabelDrop(names) => e.labels.0.retain(|(n, _)| !names.contains(n)),
        Stage::LabelAllow(names) => e.labels.0.retain(|(n, _)| names.contains(n)),
        Stage::Metadata(pairs) => {
            for (name, src) in pairs.iter() {
                let v = e
                    .extracted
                    .get(src)
                    .cloned()
                    .or_else(|| e.labels.get(src).map(str::to_string));
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    e.metadata.retain(|(n, _)| n != name);
                    e.metadata.push((name.clone(), v));
                }
            }
        }
        Stage::Timestamp {
            source,
            formats,
            tz,
            fudge,
            last,
        } => {
            let year = jiff::Zoned::now().year();
            let parsed = e
                .extracted
                .get(source.as_str())
                .and_then(|v| formats.iter().find_map(|f| f.parse(v, tz.as_ref(), year)));
            match parsed {
                Some(ts) => {
                    e.ts = ts;
                    *last = ts;
                }
                None if *fudge && *last != 0 => {
                    *last += 1;
                    e.ts = *last;
                }
                None => {}
            }
        }
        Stage::Output(src) => {
            if let Some(v) = e.extracted.get(src.as_str()) {
                e.line = v.clone();
            }
        }
        Stage::Drop {
            source,
            separator,
            expression,
            value,
            older_than,
            longer_than,
            reason,
        } => {
            let mut drop = true;
            let mut any = false;
            if expression.is_some()
                || value.is_some()
                || (!source.is_empty() && expression.is_none())
            {
                any = true;
                let subject = if source.is_empty() {
                    Some(e.line.clone())
                } else {
                    let vals: Option<Vec<&str>> = source
                        .iter()
                        .map(|s| e.extracted.get(s).map(String::as_str))
                        .collect();
                    vals.map(|v| v.join(separator))
                };
                drop &= match (&subject, expression.as_ref(), value.as_ref()) {
                    (None, _, _) => false,
                    (Some(s), Some(re), _) => re.is_match(s),
                    (Some(s), None, Some(v)) => s == v,
                    (Some(_), None, None) => true,
                };
            }
            if let Some(age) = older_than {
                any = true;
                let now = super::now_ns();
                drop &= e.ts < now - age.as_nanos() as i64;
            }
            if let Some(n) = longer_than {
                any = true;
                drop &= e.line.len() as u64 > *n;
            }
            if any && drop {
                stats.drop_lines(reason, 1, e.line.len() as u64);
                return;
            }
        }
        Stage::Multiline(m) => {
            let key = e.labels.clone();
            let now = Instant::now();
            if m.first.is_match(&e.line) {
                let prev = m.pending.insert(key, (e, 1, now));
                if let Some((p, _, _)) = prev {
                    run(rest, p, out, stats);
                }
                return;
            }
            // A continuation with no first line goes on alone, as in Promtail.
            if let Some((p, n, _)) = m.pending.get_mut(&key) {
                p.line.push('\n');
                p.line.push_str(&e.line);
                p.checkpoint = e.checkpoint;
                *n += 1;
                if *n >= m.max_lines
                    && let Some((p, _, _)) = m.pending.remove(&key)
                {
                    run(rest, p, out, stats);
                }
                return;
            }
        }
        Stage::Limit {
            rate,
            burst,
            drop,
            by_label,
            max_distinct,
            buckets,
        } => {
            let key = match by_label {
                Some(l) => match e.labels.get(l) {
                    Some(v) => v.to_string(),
                    None => String::new(),
                },
                None => String::new(),
            };
            if buckets.len() >= *max_distinct && !buckets.contains_key(&key) {
                buckets.clear();
            }
            let now = Instant::now();
            let b = buckets.entry(key).or_insert((*burst, now));
            loop {
                let elapsed = now.max(Instant::now()).duration_since(b.1).as_secs_f64();
                b.0 = (b.0 + elapsed * *rate).min(*burst);
                b.1 = Instant::now();
                if b.0 >= 1.0 {
                    b.0 -= 1.0;
                    break;
                }
                if *drop {
                    stats.drop_lines("limit_stage", 1, e.line.len() as u64);
                    return;
                }
                let wait = ((1.0 - b.0) / rate.max(1e-9)).min(1.0);
                std::thread::sleep(Duration::from_secs_f64(wait));
            }
        }
        Stage::Match {
            selector,
            drop,
            stages,
        } => {
            if selector.matches(&e.labels, &e.line) {
                if let Some(reason) = drop {
                    stats.drop_lines(reason, 1, e.line.len() as u64);
                    return;
                }
                let mut inner = Vec::new();
                run(stages, e, &mut inner, stats);
                for x in inner {
                    run(rest, x, out, stats);
                }
                return;
            }
        }
        Stage::Template { source, template } => {
            let v = e
                .extracted
                .get(source.as_str())
                .cloned()
                .unwrap_or_default();
            if let Ok(s) = render(template, &e, &v) {
                e.extracted.insert(source.clone(), s);
            }
        }
        Stage::Metrics(metrics) => {
            let labels: Vec<(String, String)> = e.labels.0.clone();
            let mut custom = stats.custom.lock().unwrap_or_else(|p| p.into_inner());
            for m in metrics.iter() {
                let v = if m.match_all {
                    Some(e.line.clone())
                } else {
                    m.source.as_ref().and_then(|s| e.extracted.get(s).cloned())
                };
                let Some(v) = v else { continue };
                if let Some(want) = &m.value
                    && &v != want
                {
                    continue;
                }
                let Some(fam) = custom.families.get_mut(&m.name) else {
                    continue;
                };
                let s = fam
                    .series
                    .entry(labels.clone())
                    .or_insert_with(|| CustomSeries {
                        value: 0.0,
                        counts: vec![0; m.buckets.len() + 1],
                        count: 0,
                        sum: 0.0,
                        touched: Instant::now(),
                    });
                s.touched = Instant::now();
                let num = || v.trim().parse::<f64>().ok();
                match m.kind {
                    MetricKind::Counter => match m.action.as_str() {
                        "inc" if m.match_all && m.count_bytes => s.value += e.line.len() as f64,
                        "inc" => s.value += 1.0,
                        _ => {
                            if let Some(n) = num().filter(|n| *n >= 0.0) {
                                s.value += n;
                            }
                        }
                    },
                    MetricKind::Gauge => match m.action.as_str() {
                        "inc" => s.value += 1.0,
                        "dec" => s.value -= 1.0,
                        a => {
                            if let Some(n) = num() {
                                match a {
                                    "set" => s.value = n,
                                    "add" => s.value += n,
                                    _ => s.value -= n,
                                }
                            }
                        }
                    },
                    MetricKind::Histogram => {
                        if let Some(n) = num() {
                            let idx = m
                                .buckets
                                .iter()
                                .position(|b| n <= *b)
                                .unwrap_or(m.buckets.len());
                            if let Some(c) = s.counts.get_mut(idx) {
                                *c += 1;
                            }
                            s.count += 1;
                            s.sum += n;
                        }
                    }
                }
            }
        }
        Stage::Tenant {
            source,
            value,
            label,
        } => {
            let t = if let Some(v) = value {
                Some(v.clone())
            } else if let Some(s) = source {
                e.extracted.get(s).cloned()
            } else {
                label
                    .as_ref()
                    .and_then(|l| e.labels.get(l).map(str::to_string))
            };
            if let Some(t) = t.filter(|t| !t.is_empty()) {
                e.tenant = Some(t);
            }
        }
        Stage::Docker => {
            if let Some((log, stream, time)) = parse::docker(&e.line) {
                e.line = log.strip_suffix('\n').unwrap_or(&log).to_string();
                container_meta(&mut e, stream, time);
                e.extracted.insert("output".into(), e.line.clone());
            } else {
                stats.drop_lines("docker_parse_error", 1, e.line.len() as u64);
                return;
            }
        }
        Stage::Cri {
            max_partial,
            partial,
        } => {
            let Some((time, stream, flags, content)) = parse::cri(&e.line) else {
                // Promtail passes lines it cannot parse through unchanged.
                run(rest, e, out, stats);
                return;
            };
            let (time, stream, flags, content) = (
                time.to_string(),
                stream.to_string(),
                flags.to_string(),
                content.to_string(),
            );
            container_meta(&mut e, stream, time);
            let key = e.labels.clone();
            if flags.starts_with('P') {
                let buf = partial.entry(key.clone()).or_default();
                buf.push_str(&content);
                if partial.len() <= *max_partial {
                    return;
                }
            }
            let mut line = partial.remove(&key).unwrap_or_default();
            line.push_str(&content);
            e.line = line;
            e.extracted.insert("content".into(), e.line.clone());
        }
        Stage::Decolorize => e.line = parse::decolorize(&e.line),
    }
    run(rest, e, out, stats);
}

#[cfg(test)]
mod tests;
