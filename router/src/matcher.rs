//! Alertmanager's label matchers (`name op value`, op one of `=`, `!=`, `=~`, `!~`): the syntax
//! used by routes, inhibit rules, silences, `amtool` and the API's `filter` parameter. Regexes
//! are fully anchored; a missing label matches as the empty string.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

use crate::labelset::LabelSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Regex => "=~",
            Op::NotRegex => "!~",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Eq for Matcher {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatcherError(pub String);

impl Matcher {
    pub fn new(name: &str, op: Op, value: &str) -> Result<Matcher, MatcherError> {
        let re = match op {
            Op::Regex | Op::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        MatcherError(format!("invalid regular expression {value:?}: {e}"))
                    })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Whether a value (the empty string for a missing label) satisfies the matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            Op::Equal => v == self.value,
            Op::NotEqual => v != self.value,
            Op::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            Op::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        self.matches_value(labels.label(&self.name).unwrap_or(""))
    }

    pub fn is_regex(&self) -> bool {
        matches!(self.op, Op::Regex | Op::NotRegex)
    }

    pub fn is_equal(&self) -> bool {
        matches!(self.op, Op::Equal | Op::Regex)
    }

    /// Parses one `name op value` matcher; the value may be double-quoted with escapes.
    pub fn parse(s: &str) -> Result<Matcher, MatcherError> {
        let s = s.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(s.len());
        let name = &s[..name_end];
        if !valid_name(name) {
            return Err(MatcherError(format!("bad matcher format: {s}")));
        }
        let rest = s[name_end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (Op::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (Op::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (Op::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (Op::Equal, r)
        } else {
            return Err(MatcherError(format!("bad matcher format: {s}")));
        };
        let raw = rest.trim();
        let value = if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
            unquote(&raw[1..raw.len() - 1])
                .ok_or_else(|| MatcherError(format!("invalid escape sequence in {raw}")))?
        } else {
            raw.to_string()
        };
        Matcher::new(name, op, &value)
    }
}

impl fmt::Display for Matcher {
    /// `name="value"` with Go's `%q` quoting: this text is part of Alertmanager's group keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            go_quote(&self.value)
        )
    }
}

/// Parses `{a="1", b=~"x|y"}` or `a=1,b=~x|y`: braces optional, commas inside quotes kept, a
/// trailing comma allowed.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    let mut body = s.trim();
    if let Some(inner) = body.strip_prefix('{') {
        body = inner
            .strip_suffix('}')
            .ok_or_else(|| MatcherError(format!("missing closing brace in {s}")))?;
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in body.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ',' && !quoted {
            if !cur.trim().is_empty() {
                out.push(Matcher::parse(&cur)?);
            }
            cur.clear();
            continue;
        }
        cur.push(c);
    }
    if quoted {
        return Err(MatcherError(format!("unterminated quoted string in {s}")));
    }
    if !cur.trim().is_empty() {
        out.push(Matcher::parse(&cur)?);
    }
    Ok(out)
}

pub fn matches_all<L: LabelSource + ?Sized>(ms: &[Matcher], labels: &L) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

/// `{a="1", b=~"x"}`, as Alertmanager prints a matcher list in route keys.
pub fn matchers_string(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

/// `{a="1", b="2"}`, Go's `LabelSet.String()` (sorted, `%q` values).
pub fn labels_string(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

pub use crate::rules::file::valid_label_name as valid_name;

fn unquote(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            _ => return None,
        }
    }
    Some(out)
}

/// Go's `strconv.Quote` for the characters label values carry.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A label map from pairs, for tests across the crate.
    pub(crate) fn ls(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_documented_forms() {
        let ms = parse_matchers(r#"{a="1", b=~"x|y" , c!="q,\"r", d!~z,}"#).expect("valid");
        let got: Vec<String> = ms.iter().map(Matcher::to_string).collect();
        assert_eq!(
            got,
            [r#"a="1""#, r#"b=~"x|y""#, r#"c!="q,\"r""#, r#"d!~"z""#]
        );
        assert!(parse_matchers("foo").is_err());
        assert!(parse_matchers("1a=b").is_err());
        assert!(parse_matchers(r#"a=~"(""#).is_err());
        assert!(parse_matchers(r#"{a="1""#).is_err());
    }

    #[test]
    fn anchored_and_missing_as_empty() {
        let m = Matcher::parse("job=~node").expect("valid");
        assert!(m.matches(&ls(&[("job", "node")])));
        assert!(!m.matches(&ls(&[("job", "node2")])));
        assert!(
            Matcher::parse(r#"foo!="bar""#)
                .expect("valid")
                .matches(&ls(&[]))
        );
        assert!(
            Matcher::parse(r#"foo="""#)
                .expect("valid")
                .matches(&ls(&[]))
        );
        assert!(!Matcher::parse("foo=~.+").expect("valid").matches(&ls(&[])));
    }

    #[test]
    fn go_label_set_string() {
        assert_eq!(
            labels_string(&ls(&[("job", "node"), ("alertname", "A\"b")])),
            r#"{alertname="A\"b", job="node"}"#
        );
    }
}
