//! The Prometheus rule-file format (`groups:` of recording and alerting rules), read strictly:
//! unknown keys are errors, and every error names the file, line and field.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use promql_parser::parser::Expr;
use serde::Deserialize;
use serde_saphyr::Spanned;
use vigie_promql::notation::parse_duration;

use crate::alerting::template;

/// A rule file that loaded and validated.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: String,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub file: String,
    /// Evaluation interval in milliseconds; `None` takes the global one.
    pub interval: Option<i64>,
    pub query_offset: Option<i64>,
    /// Maximum series a rule may produce (0: no limit).
    pub limit: u64,
    pub labels: Vec<(String, String)>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// `record` or `alert` name.
    pub name: String,
    pub expr_text: String,
    pub expr: Expr,
    pub labels: Vec<(String, String)>,
    pub kind: RuleKind,
    pub line: u64,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Recording,
    Alerting {
        for_ms: i64,
        keep_firing_for_ms: i64,
        annotations: Vec<(String, String)>,
    },
}

impl Group {
    /// `file;name`: identifies a group across reloads, in saved state and in metrics.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }
}

impl RuleFile {
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }
}

/// Any YAML scalar read as text (`expr: 1`, `severity: 2` are valid in Prometheus).
#[derive(Debug, Clone, Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    interval: Option<Spanned<Text>>,
    query_offset: Option<Spanned<Text>>,
    #[serde(default)]
    limit: u64,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<Spanned<Text>>,
    alert: Option<Spanned<Text>>,
    expr: Option<Spanned<Text>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<Text>>,
    keep_firing_for: Option<Spanned<Text>>,
    labels: Option<Spanned<BTreeMap<String, Text>>>,
    annotations: Option<Spanned<BTreeMap<String, Text>>>,
}

/// A YAML map of texts as name/value pairs (empty when absent).
fn pairs(m: &Option<Spanned<BTreeMap<String, Text>>>) -> Vec<(String, String)> {
    m.as_ref()
        .map(|l| {
            l.value
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything wrong with one file, each message already prefixed with `file: line:col:`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct FileErrors(pub Vec<String>);

/// Whether `s` is a valid metric name (recording-rule names).
pub fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `s` is a valid label name.
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands a glob in the last path component; a plain path is returned as is.
pub fn expand_glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let s = pattern.display().to_string();
    if !s.contains(['*', '?', '[']) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = glob_dir(pattern)?;
    out.sort();
    Ok(out)
}

/// Globs in the last path component only (`rules/*.yml`), like most rule_files entries.
fn glob_dir(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut re = String::from("^");
    for c in name.chars() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    let re = Regex::new(&re).map_err(|e| e.to_string())?;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| re.is_match(&n.to_string_lossy()))
        })
        .collect())
}

/// Loads every rule file the patterns match; all errors of all files, or all their groups.
pub fn load_all<P: AsRef<Path>>(patterns: &[P]) -> Result<Vec<Group>, Vec<String>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        match expand_glob(pattern.as_ref()) {
            Ok(paths) => {
                for p in paths {
                    match load(&p) {
                        Ok(f) => groups.extend(f.groups),
                        Err(e) => errors.extend(e.0),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Reads and validates a rule file.
pub fn load(path: &Path) -> Result<RuleFile, FileErrors> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| FileErrors(vec![format!("{file}: {e}")]))?;
    parse(&file, &text)
}

/// Validates rule-file text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<RuleFile, FileErrors> {
    // Only the first YAML document counts, as in Prometheus.
    let first = first_document(text);
    let raw: RawFile = if first.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        serde_saphyr::from_str(first).map_err(|e| FileErrors(vec![yaml_error(file, &e)]))?
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    for g in raw.groups {
        let at = |l: &serde_saphyr::Location| format!("{file}: {}:{}:", l.line(), l.column());
        let gname = g.name.value.clone();
        if gname.is_empty() {
            errors.push(format!(
                "{} Groupname must not be empty",
                at(&g.name.referenced)
            ));
        } else if !names.insert(gname.clone()) {
            errors.push(format!(
                "{} groupname: \"{gname}\" is repeated in the same file",
                at(&g.name.referenced)
            ));
        }
        let duration =
            |d: &Option<Spanned<Text>>, field: &str, errors: &mut Vec<String>| -> Option<i64> {
                let d = d.as_ref()?;
                match parse_duration(&d.value.0) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        errors.push(format!(
                            "{} group \"{gname}\": field {field}: {e}",
                            at(&d.referenced)
                        ));
                        None
                    }
                }
            };
        let interval = duration(&g.interval, "interval", &mut errors);
        let query_offset = duration(&g.query_offset, "query_offset", &mut errors);
        let mut labels = Vec::new();
        for (k, v) in g.labels {
            if !valid_label_name(&k) {
                errors.push(format!(
                    "{} group \"{gname}\": invalid label name: {k}",
                    at(&g.name.referenced)
                ));
            }
            labels.push((k, v.0));
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.into_iter().enumerate() {
            let loc = r.referenced;
            let r = r.value;
            let name = r
                .record
                .as_ref()
                .or(r.alert.as_ref())
                .map(|n| n.value.0.clone())
                .unwrap_or_default();
            let prefix = |l: &serde_saphyr::Location| {
                format!("{} group \"{gname}\", rule {}, \"{name}\":", at(l), i + 1)
            };
            let mut fail = |l: &serde_saphyr::Location, msg: String| {
                errors.push(format!("{} {msg}", prefix(l)))
            };
            match (&r.record, &r.alert) {
                (Some(_), Some(_)) => {
                    fail(&loc, "only one of 'record' and 'alert' must be set".into())
                }
                (None, None) => fail(&loc, "one of 'record' or 'alert' must be set".into()),
                _ => {}
            }
            let expr = match &r.expr {
                Some(e) if !e.value.0.trim().is_empty() => match vigie_promql::parse(&e.value.0) {
                    Ok(x) => Some(x),
                    Err(err) => {
                        fail(&e.referenced, format!("could not parse expression: {err}"));
                        None
                    }
                },
                _ => {
                    fail(&loc, "field 'expr' must be set in rule".into());
                    None
                }
            };
            let durations =
                [("for", &r.for_), ("keep_firing_for", &r.keep_firing_for)].map(|(field, d)| {
                    d.as_ref().map_or(0, |d| match parse_duration(&d.value.0) {
                        Ok(v) => v,
                        Err(e) => {
                            fail(&d.referenced, format!("field {field}: {e}"));
                            0
                        }
                    })
                });
            let labels = pairs(&r.labels);
            let labels_at = r.labels.as_ref().map_or(loc, |l| l.referenced);
            for (k, v) in &labels {
                if !valid_label_name(k) {
                    fail(&labels_at, format!("invalid label name: {k}"));
                }
                if r.alert.is_some()
                    && let Err(e) = template::check(&format!("__alert_{name}"), v)
                {
                    fail(&labels_at, format!("msg={e}"));
                }
            }
            let annotations = pairs(&r.annotations);
            let kind = if let Some(rec) = &r.record {
                if !valid_metric_name(&rec.value.0) {
                    fail(
                        &rec.referenced,
                        format!("invalid recording rule name: {}", rec.value.0),
                    );
                }
                if let Some(a) = &r.annotations {
                    fail(
                        &a.referenced,
                        "invalid field 'annotations' in recording rule".into(),
                    );
                }
                if let Some(f) = &r.for_ {
                    fail(
                        &f.referenced,
                        "invalid field 'for' in recording rule".into(),
                    );
                }
                if let Some(f) = &r.keep_firing_for {
                    fail(
                        &f.referenced,
                        "invalid field 'keep_firing_for' in recording rule".into(),
                    );
                }
                RuleKind::Recording
            } else {
                let annotations_at = r.annotations.as_ref().map_or(loc, |a| a.referenced);
                for (k, v) in &annotations {
                    if !valid_label_name(k) {
                        fail(&annotations_at, format!("invalid annotation name: {k}"));
                    }
                    if let Err(e) = template::check(&format!("__alert_{name}"), v) {
                        fail(&annotations_at, format!("msg={e}"));
                    }
                }
                RuleKind::Alerting {
                    for_ms: durations[0],
                    keep_firing_for_ms: durations[1],
                    annotations,
                }
            };
            if let Some(expr) = expr {
                rules.push(Rule {
                    name,
                    expr_text: r.expr.map(|e| e.value.0).unwrap_or_default(),
                    expr,
                    labels,
                    kind,
                    line: loc.line(),
                });
            }
        }
        groups.push(Group {
            name: gname,
            file: file.to_string(),
            interval,
            query_offset,
            limit: g.limit,
            labels,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(RuleFile {
            path: file.to_string(),
            groups,
        })
    } else {
        Err(FileErrors(errors))
    }
}

/// The text up to a second `---` document marker, if any.
fn first_document(text: &str) -> &str {
    let mut offset = 0;
    let mut seen_content = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            if seen_content {
                return &text[..offset];
            }
        } else if !t.trim().is_empty() && !t.trim_start().starts_with('#') {
            seen_content = true;
        }
        offset += line.len();
    }
    text
}

/// A YAML error as `file: line:col: message`, without serde-saphyr's source snippet.
pub fn yaml_error(file: &str, e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let head = text.lines().next().unwrap_or_default().trim();
    let head = head.strip_prefix("error: ").unwrap_or(head);
    if let Some(rest) = head.strip_prefix("line ")
        && let Some((line, rest)) = rest.split_once(" column ")
        && let Some((col, msg)) = rest.split_once(": ")
    {
        return format!("{file}: {line}:{col}: {msg}");
    }
    format!("{file}: {head}")
}

/// serde-saphyr renders errors with a source snippet; the first line carries the message.
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
