//! Parsing stages: `regex`, `json` (JMESPath paths), `logfmt`, `replace`, `docker`, `cri`,
//! `decolorize`. They fill the extracted map; later stages turn values into labels, timestamps
//! or the line.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

/// A JMESPath subset that covers what log pipelines use: `a.b`, `"odd key".c`, `a[0]`, `a[-1]`.
#[derive(Debug, Clone)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(i64),
}

impl JsonPath {
    pub fn new(expr: &str) -> Result<JsonPath, String> {
        let mut steps = Vec::new();
        let b = expr.trim();
        let mut rest = b;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('"') {
                let end = r
                    .find('"')
                    .ok_or_else(|| format!("JMESPath {expr:?}: unterminated quoted key"))?;
                steps.push(Step::Key(r[..end].to_string()));
                rest = &r[end + 1..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| format!("JMESPath {expr:?}: unterminated index"))?;
                let i: i64 = r[..end].trim().parse().map_err(|_| {
                    format!("JMESPath {expr:?}: only numeric indexes are supported")
                })?;
                steps.push(Step::Index(i));
                rest = &r[end + 1..];
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                let key = &rest[..end];
                if key.is_empty()
                    || !key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '@')
                {
                    return Err(format!(
                        "JMESPath {expr:?}: vigie-agent supports dotted keys, quoted keys and [n]"
                    ));
                }
                steps.push(Step::Key(key.to_string()));
                rest = &rest[end..];
            }
            rest = rest.strip_prefix('.').unwrap_or(rest);
        }
        if steps.is_empty() {
            return Err("empty JMESPath expression".into());
        }
        Ok(JsonPath(steps))
    }

    pub fn get<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for s in &self.0 {
            v = match s {
                Step::Key(k) => v.get(k)?,
                Step::Index(i) => {
                    let a = v.as_array()?;
                    let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                    a.get(usize::try_from(idx).ok()?)?
                }
            };
        }
        Some(v)
    }
}

/// A JSON value as Promtail renders it into the extracted map: strings bare, everything else
/// as compact JSON; `null` is absent.
pub fn json_to_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if n.is_f64() => vigie_exposition::float::go_string(f),
            _ => n.to_string(),
        }),
        other => Some(other.to_string()),
    }
}

/// logfmt pairs: `key=value`, `key="quoted \" value"`, bare `key` (empty value).
pub fn logfmt(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] <= b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i == start {
            i += 1;
            continue;
        }
        let key = line[start..i].to_string();
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                        match b[i] {
                            b'n' => value.push('\n'),
                            b't' => value.push('\t'),
                            b'r' => value.push('\r'),
                            c => value.push(c as char),
                        }
                        i += 1;
                        continue;
                    }
                    let ch = line[i..].chars().next().unwrap_or(' ');
                    value.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && b[i] > b' ' {
                    i += 1;
                }
                value.push_str(&line[vs..i]);
            }
        }
        out.push((key, value));
    }
    out
}

/// Removes ANSI colour and cursor escape sequences.
pub fn decolorize(line: &str) -> String {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
            .unwrap_or_else(|_| Regex::new("$^").expect("trivial regex"))
    });
    re.replace_all(line, "").into_owned()
}

/// The CRI log format: `<time> <stream> <flags> <content>`.
pub fn cri(line: &str) -> Option<(&str, &str, &str, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let (flags, content) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((time, stream, flags, content))
}

/// Docker's json-file format: `{"log":"…\n","stream":"stdout","time":"…"}`.
pub fn docker(line: &str) -> Option<(String, String, String)> {
    let v: HashMap<String, Value> = serde_json::from_str(line).ok()?;
    let log = v.get("log")?.as_str()?.to_string();
    let stream = v
        .get("stream")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let time = v
        .get("time")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((log, stream, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jmespath_subset_and_logfmt() {
        let v: Value = serde_json::from_str(r#"{"a":{"b":[1,{"c":"x"}]},"@t":"n","n":1.5,"i":3}"#)
            .expect("json");
        assert_eq!(
            JsonPath::new("a.b[1].c").expect("p").get(&v),
            Some(&Value::from("x"))
        );
        assert_eq!(
            JsonPath::new("a.b[-1].c").expect("p").get(&v),
            Some(&Value::from("x"))
        );
        assert_eq!(
            JsonPath::new("\"@t\"").expect("p").get(&v),
            Some(&Value::from("n"))
        );
        assert_eq!(json_to_string(&v["n"]).as_deref(), Some("1.5"));
        assert_eq!(json_to_string(&v["i"]).as_deref(), Some("3"));
        assert!(JsonPath::new("a | b").is_err());
        assert_eq!(
            logfmt(r#"level=info msg="hello \"w\"" bare dur=3ms"#),
            vec![
                ("level".into(), "info".into()),
                ("msg".into(), "hello \"w\"".into()),
                ("bare".into(), String::new()),
                ("dur".into(), "3ms".into())
            ]
        );
        assert_eq!(decolorize("\x1b[31merror\x1b[0m x"), "error x");
        assert_eq!(
            cri("2026-11-24T10:00:00Z stdout F hi there"),
            Some(("2026-11-24T10:00:00Z", "stdout", "F", "hi there"))
        );
    }
}
